/* libnest.so (LD_PRELOAD or linked first): malloc, calloc and free interposed, forwarding to libc's.
 * Built -z lazy, its own calls (__libc_free, helper) bind on first use: when ld.so itself allocates
 * inside a symbol lookup (the unique-symbol table of a library it relocates, dlopen of libstdc++),
 * that first use is a lookup made inside another: nested lookups, which glibc's LD_DEBUG lists as
 * ordinary bindings. nest_arm() makes the next allocation call helper() for the first time. */
#include <stddef.h>
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_malloc(size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void helper(void);
static volatile int armed;
void nest_arm(void) { armed = 1; }
static void maybe(void) { if (armed) { armed = 0; helper(); } }
void *calloc(size_t n, size_t s) { maybe(); return __libc_calloc(n, s); }
void *malloc(size_t n) { maybe(); return __libc_malloc(n); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
