/* A library with no undefined symbols (linked -nostdlib: its first dynamic symbol is one it
 * defines) and a name outside ASCII (a UTF-8 identifier), for tests/test_dynsyms.py. */
int café(void) { return 1; }
int plain(void) { return 2; }
int counter = 3;
