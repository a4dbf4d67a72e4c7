/* selfmaps.c — a program that reports its own address space, for ASLR checks.
 *   selfmaps OUT [CODE|crash|crash-in-lookup]
 * Copies /proc/self/maps to OUT (the kernel's account of where every image
 * was loaded: the oracle for load bases), calls cos() through the PLT so it
 * has a lazy binding, then exits with CODE (default 0), or crashes with a
 * real SIGSEGV when the second argument is "crash", or inside ld.so's symbol lookup
 * ("crash-in-lookup": dlsym of a name at address 1, which _dl_lookup_symbol_x hashes
 * first), so the process ends with a lookup entered and never returned.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    FILE *in = fopen("/proc/self/maps", "r"), *out = fopen(argv[1], "w");
    if (!in || !out)
        return 2;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    printf("cos %.3f\n", cos(argc / 4.0));
    if (argc > 2 && strcmp(argv[2], "crash") == 0)
        *(volatile int *)0 = 1;
    if (argc > 2 && strcmp(argv[2], "crash-in-lookup") == 0)
        dlsym(RTLD_DEFAULT, (const char *)1);
    return argc > 2 ? atoi(argv[2]) : 0;
}
