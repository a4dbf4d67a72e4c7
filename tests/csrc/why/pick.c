/* pick.c — the same function in several libraries (gotrace why's tests).
 * Built three times: -DWHO="'a'" as liba.so (which also calls pick itself: built without
 * -Bsymbolic, its own call goes through the global scope, so an earlier definition
 * interposes on it), -DWHO="'b'" as libb.so, -DWHO="'p'" as libpre.so (an LD_PRELOAD
 * interposer). The oracle is glibc's LD_DEBUG=symbols,bindings account of the same run. */
int pick(void) { return WHO; }

#ifdef CALLS_ITSELF
int a_pick(void) { return pick(); }
#endif
