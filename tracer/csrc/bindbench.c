/* bindbench.c — the binding cost of each imported function, without a tracer.
 *
 * Built by `gotrace bench-bind` for the target architecture (gcc, or
 * aarch64-linux-gnu-gcc) with -fno-builtin -Wl,-z,lazy, so every call below
 * goes through a PLT slot that ld.so binds on first use. For each function it
 * times the first call (binding + call) and then the second (call only) with
 * CLOCK_MONOTONIC, and prints one line per function:
 *
 *     name <TAB> first_ns <TAB> warm_ns
 *
 * first - warm is that symbol's lazy-binding cost in this process, natively
 * or under a translator (the clock is read by the program itself). Arguments
 * come from argv so nothing is folded at compile time.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef double (*fn1)(double);
typedef double (*fn2)(double, double);

volatile double sink;

#define TIME1(f)                                                      \
    do {                                                              \
        long long t0 = now();                                         \
        sink = f(x);                                                  \
        long long t1 = now();                                         \
        sink = f(x);                                                  \
        long long t2 = now();                                         \
        printf("%s\t%lld\t%lld\n", #f, t1 - t0, t2 - t1);             \
    } while (0)

#define TIME2(f)                                                      \
    do {                                                              \
        long long t0 = now();                                         \
        sink = f(x, y);                                               \
        long long t1 = now();                                         \
        sink = f(x, y);                                               \
        long long t2 = now();                                         \
        printf("%s\t%lld\t%lld\n", #f, t1 - t0, t2 - t1);             \
    } while (0)

int main(int argc, char **argv)
{
    double x = argc > 1 ? atof(argv[1]) : 0.5, y = argc > 2 ? atof(argv[2]) : 1.5;
    now();  /* bind clock_gettime before anything is timed */
    printf("#\t%lld\t%lld\n", now() - now(), 0LL);  /* binds printf too */
    TIME1(cos); TIME1(sin); TIME1(tan); TIME1(acos); TIME1(asin); TIME1(atan);
    TIME1(cosh); TIME1(sinh); TIME1(tanh); TIME1(exp); TIME1(exp2); TIME1(log);
    TIME1(log2); TIME1(log10); TIME1(cbrt); TIME1(erf); TIME1(erfc); TIME1(lgamma);
    TIME1(tgamma); TIME1(expm1); TIME1(log1p); TIME1(asinh);
    TIME2(atan2); TIME2(hypot); TIME2(fmod); TIME2(pow);
    return 0;
}
