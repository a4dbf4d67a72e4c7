/* A program linked with libc that does not start through it (-nostartfiles: its own _start, no
 * __libc_start_main), so LD_DEBUG prints neither "initialize program" nor "transferring control"
 * for it: ld.so names it only in "needed by" lines, and its run begins at "calling init" of its
 * libraries. It writes "MARK call" on stderr, then calls puts through its PLT.
 *
 * Built by tests/test_oracle_kinds.py:
 *   gcc -nostartfiles -Wl,-z,lazy -o nostart nostart.c */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__attribute__((force_align_arg_pointer)) void _start(void) {
    static const char text[] = "MARK call\n";
    write(2, text, strlen(text));
    puts("nostart");
    fflush(stdout);
    _exit(0);
}
