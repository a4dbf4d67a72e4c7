/* broken.c — libbroken.so needs libgone.so (DT_NEEDED), which is deleted after the link:
 * dlopen of libbroken.so fails ("cannot open shared object file"), the program goes on. */
extern int pick(void);
int broken(void) { return pick(); }
