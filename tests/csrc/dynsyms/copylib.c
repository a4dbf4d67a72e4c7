/* Data a program built -no-pie without libc copies into itself (R_<machine>_COPY), for
 * tests/test_dynsyms.py's copies on machines whose C library is not installed here (32-bit ARM):
 * clang-14 and ld.lld-16 link it -nostdlib. */
int shared_var = 5;
int shared_arr[4] = {1, 2, 3, 4};
