/* forkbind.c — a child forked without exec that binds a symbol of its own: puts, which only the
 * child calls (through the PLT, lazily). The child inherits the parent's LD_DEBUG_OUTPUT file,
 * so glibc writes its binding there, under the child's pid (each line's prefix): the oracle for
 * which process bound what. The parent waits, then binds printf itself, and names its child: on
 * stdout, and in the file argv[1] when given (the program's own account of which pid is which). */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t child = fork();
	if (child < 0)
		return 2;
	if (child == 0) {
		puts("child");
		fflush(stdout);
		_exit(0);
	}
	int status;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status))
		return 3;
	printf("parent of %d\n", (int)child);
	if (argc > 1) {
		FILE *f = fopen(argv[1], "w");
		if (!f || fprintf(f, "%d\n", (int)child) < 0 || fclose(f) != 0)
			return 4;
	}
	return WEXITSTATUS(status);
}
