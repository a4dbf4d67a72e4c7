/* quiet.c — libquiet.so, built -nostdlib: it references nothing, so ld.so makes no lookup for it,
 * and nothing calls quiet(): LD_DEBUG=bindings never names it, though the program needs it. */
int quiet(void) { return 7; }
