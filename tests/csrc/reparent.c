/* reparent.c — a grandchild re-parented before it execs.
 *
 * Usage: reparent OUT PROG [ARGS...]. The program makes itself a child subreaper
 * (prctl PR_SET_CHILD_SUBREAPER, as init systems and container inits do), forks A and waits
 * for it. A forks B, writes "A_PID B_PID" to OUT (fork()'s own account of who forked B) and
 * exits. B waits until its parent is no longer A (getppid() changes once A is gone: B is
 * re-parented to the program, the nearest subreaper), then execs PROG. The program waits for
 * B too, then exits 0: the tree is whole by then. (Without the subreaper B would go to init,
 * and DTrace for Linux's progenyof() loses a process re-parented outside the tree.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t a, b, me;
	int status;
	if (argc < 3 || prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return 2;
	a = fork();
	if (a < 0)
		return 2;
	if (a == 0) {
		me = getpid();
		b = fork();
		if (b < 0)
			_exit(2);
		if (b == 0) {
			while (getppid() == me)
				usleep(1000);
			execv(argv[2], argv + 2);
			_exit(127);
		}
		FILE *out = fopen(argv[1], "w");
		if (!out)
			_exit(2);
		fprintf(out, "%d %d\n", (int)me, (int)b);
		fclose(out);
		_exit(0);
	}
	if (waitpid(a, NULL, 0) != a)
		return 2;
	/* B is the program's child now: wait() finds it */
	if (wait(&status) < 0 || !WIFEXITED(status))
		return 2;
	return WEXITSTATUS(status);
}
