/* modes.c — one program, built three ways by the tests, to check binding kinds:
 *   lazy:    gcc -o modes-lazy modes.c -lm -ldl -Wl,-z,lazy
 *   now:     gcc -o modes-now  modes.c -lm -ldl -Wl,-z,now
 * In both it calls cos() through the PLT (lazy binding unless -z now) and
 * looks up "sin" with dlsym (always a run-time lookup). The argument keeps
 * the compiler from folding cos() away.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    double x = argc > 1 ? atof(argv[1]) : 0.5;
    void *h = dlopen("libm.so.6", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    double (*sine)(double) = (double (*)(double))dlsym(h, "sin");
    if (!sine) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 2;
    }
    printf("%.3f %.3f\n", cos(x), sine(x));
    return 0;
}
