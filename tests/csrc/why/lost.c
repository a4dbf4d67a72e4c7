/* lost.c — liblost.so, first with gone(), then rebuilt -DLOST without it: a program linked
 * -z now against the first build dies at load ("symbol lookup error: …: undefined symbol:
 * gone", exit 127); one that dlopens a library needing gone() sees dlopen fail and goes on. */
int present(void) { return 1; }
#ifndef LOST
int gone(void) { return 2; }
#endif
