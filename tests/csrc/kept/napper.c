/* napper.c — sleeps (argv[1] ms), then calls pick(): linked like picker (libb.so before liba.so,
 * DT_RUNPATH $ORIGIN/run), so pick binds lazily to libb.so. The test deletes the program and its
 * libraries as soon as it exits, as `go test` deletes its test binaries: the session must still
 * answer for it. The nap gives the tracer time to see the exec; nothing else depends on it. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

extern int pick(void);

int main(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 0;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, 0);
	printf("pick=%c\n", pick());
	return 0;
}
