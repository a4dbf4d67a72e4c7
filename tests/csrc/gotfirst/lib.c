/* The library gotfirst/main.c calls through the PLT (tests/test_stubs.py). */
int ext_fn(void) { return 3; }
