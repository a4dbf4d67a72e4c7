/* nextputs.c — libnext.so, for LD_PRELOAD: its own puts() prefixes the line, then calls the next
 * puts in the scope, found by dlsym(RTLD_NEXT, "puts"): the caller is libnext.so, the scope the
 * objects after it (libc.so.6). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int puts(const char *s)
{
	int (*next)(const char *) = (int (*)(const char *))dlsym(RTLD_NEXT, "puts");
	fputs("next: ", stdout);
	return next(s);
}
