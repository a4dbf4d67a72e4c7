/* napper.c — waits, then calls pick(): linked like picker (libb.so before liba.so, DT_RUNPATH
 * $ORIGIN/run), so pick binds lazily to libb.so. The test deletes the program and its libraries as
 * soon as it exits, as `go test` deletes its test binaries: the session must still answer for it.
 * argv[1]: a number waits that many ms; a path waits until that file exists (the test creates it once
 * the tracer holds the program's files open: no race with the machine's load). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

extern int pick(void);

int main(int argc, char **argv)
{
	struct timespec tick = {0, 10 * 1000000L};
	if (argc > 1 && argv[1][0] == '/') {
		while (access(argv[1], F_OK) != 0)
			nanosleep(&tick, 0);
	} else {
		long ms = argc > 1 ? atol(argv[1]) : 0;
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		nanosleep(&ts, 0);
	}
	printf("pick=%c\n", pick());
	return 0;
}
