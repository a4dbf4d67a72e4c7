/* A program with no C library and no data of its own: linked by ld.lld-16 (lazy binding, its
 * default), its writable segments are .dynamic (RELRO) and then .got.plt alone, so DT_PLTGOT is
 * the first address of a PT_LOAD (readelf -lW, -d). */
int ext_fn(void);

int _start(void) { return ext_fn(); }
