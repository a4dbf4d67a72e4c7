/* bench_clock.h — the clock loadstart.c stamps before an exec and loadprobe.c reads in main.
 *
 * One clock for both sides of the measure, in nanoseconds: CLOCK_MONOTONIC on Linux (a
 * guest under qemu-user reads the host's), CLOCK_UPTIME_RAW on macOS through
 * clock_gettime_nsec_np (nanoseconds natively and under Rosetta 2 alike; not run on macOS).
 */
#ifndef GOTRACE_BENCH_CLOCK_H
#define GOTRACE_BENCH_CLOCK_H
#include <time.h>

static long long now(void)
{
#ifdef __APPLE__
    return (long long)clock_gettime_nsec_np(CLOCK_UPTIME_RAW);
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
#endif
}
#endif
