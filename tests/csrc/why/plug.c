/* plug.c — libplug.so, for dlopen: needs libb.so (DT_RUNPATH $ORIGIN/run) and calls pick(),
 * which the program that dlopens it does not define: the lookup finds nothing in the global
 * scope and goes on into libplug's own scope (itself, then libb.so). */
extern int pick(void);
int plug(void) { return pick(); }
