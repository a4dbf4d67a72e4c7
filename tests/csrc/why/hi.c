/* hi.c — calls puts(): under LD_PRELOAD=libnext.so, libnext's puts. With argv[1], sleeps that
 * many ms first: a tracer that reads a process's environment from /proc (ld-debug) has it to read. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 0;
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, 0);
	puts("hi");
	return 0;
}
