/* dlsym_storm.c — dlsym(libm, "cos") N times as fast as it can, then writes N to FILE: more
 * records than a tracer's buffers may hold (tests/test_dtrace.py: DTrace's drops).
 *   usage: dlsym_storm N FILE
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long n = atol(argv[1]), done = 0;
    void *h = dlopen("libm.so.6", RTLD_NOW);
    if (!h)
        return 2;
    for (long i = 0; i < n; i++)
        done += dlsym(h, "cos") != NULL;
    FILE *f = fopen(argv[2], "w");
    if (!f || fprintf(f, "%ld\n", done) < 0 || fclose(f) != 0)
        return 2;
    return 0;
}
