/* ver.c — libver.so, whose functions have several versions (ver.map, .symver): each version's
 * implementation returns its version's number, so the program's output says which one ld.so bound.
 * glibc's check_match (elf/dl-lookup.c) lets an unversioned reference take the oldest version (index
 * 2) and else the one public (default, "@@") version; dlsym takes the newest public one:
 *   old: old@V1 (index 2) and old@@V2 — a call gets 1, dlsym(RTLD_DEFAULT, "old") 2;
 *   mid: mid@V2 (hidden) and mid@@V3 — both get 3 (the hidden one is never bound unversioned);
 *   one: one@@V2 alone — 2.
 * -DSTUB: the same names unversioned, to link a program whose references carry no version (as one
 * linked before the library had versions). -DOTHER: libother.so, old@@OTHER (other.map), for
 * LD_PRELOAD: a definition a reference to old@V2 must pass over. */
#if defined(STUB)
int old(void) { return 0; }
int mid(void) { return 0; }
int one(void) { return 0; }
#elif defined(OTHER)
int old(void) { return 9; }
#else
int old_v1(void) { return 1; }
int old_v2(void) { return 2; }
int mid_v2(void) { return 2; }
int mid_v3(void) { return 3; }
int one_v2(void) { return 2; }
__asm__(".symver old_v1, old@V1");
__asm__(".symver old_v2, old@@V2");
__asm__(".symver mid_v2, mid@V2");
__asm__(".symver mid_v3, mid@@V3");
__asm__(".symver one_v2, one@@V2");
#endif
