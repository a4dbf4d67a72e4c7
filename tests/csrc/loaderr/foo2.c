/* libfoo, another release: foo_new is gone (dyld's "Symbol not found: _foo_new"). */
int foo_old(void) { return 1; }
