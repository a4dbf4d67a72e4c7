/* canonplt.c — a canonical PLT entry. Built three ways by the tests: -DLIBF as libf.so (defines
 * canon), -DLIBG as libg.so (needs libf.so; takes canon's address: R_*_GLOB_DAT), and plain as a
 * -no-pie program that takes canon's address too. Not position-independent, the program makes
 * its PLT entry canon's one address (readelf --dyn-syms: canon UND with a value), so libg.so's
 * data reference binds to the program (LD_DEBUG=bindings) while calls still go to libf.so; the
 * exit status says the two addresses are one and the call reaches libf.so's canon. */
#ifdef LIBF
int canon(void) { return 7; }
#elif defined(LIBG)
extern int canon(void);
int (*canon_address(void))(void) { return canon; }
#else
extern int canon(void);
extern int (*canon_address(void))(void);
int main(void) { int (*p)(void) = canon; return !(p == canon_address() && p() == 7); }
#endif
