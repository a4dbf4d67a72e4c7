/* A program needing @rpath/libfoo.dylib's foo_new: no LC_RPATH, or one, per build. */
int foo_new(void);
int main(void) { return foo_new() - 2; }
