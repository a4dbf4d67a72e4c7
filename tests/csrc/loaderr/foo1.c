/* libfoo, release 1: foo_old and foo_new (what usefoo.c was linked against). */
int foo_old(void) { return 1; }
int foo_new(void) { return 2; }
