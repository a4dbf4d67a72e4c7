/* loadprobe.c — a program that imports N functions and reports when its main() began.
 *
 * Built by `gotrace bench-bind --stage load` for one architecture with a generated
 * header, gtb_imports.h, that declares N functions of a generated library (libgtbind)
 * and lists them in GTB_TABLE (empty for the probe without imports). Taking their
 * addresses in a table makes every one a data relocation (GLOB_DAT / a chained-fixup
 * bind) that the dynamic linker resolves before main: ld.so with -z now, dyld always.
 * The first thing main does is read the clock and print it in nanoseconds:
 *
 *     main_ns
 *
 * on the clock loadstart.c read just before its exec (bench_clock.h).
 */
#include <stdio.h>

#include "bench_clock.h"
#include "gtb_imports.h"

typedef int (*gtb_fn)(void);
static gtb_fn const table[] = {GTB_TABLE 0};

int main(int argc, char **argv)
{
    long long t = now();
    (void)argv;
    printf("%lld\n", t);
    /* use the table so it is kept (an entry the argument count picks, never called): exit 0 */
    return table[(unsigned)argc % (sizeof table / sizeof table[0])] == (gtb_fn)1 ? 3 : 0;
}
