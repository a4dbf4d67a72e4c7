/* selfstop.c — a program that stops itself (SIGSTOP) so a test can read what the kernel holds of it
 * in /proc (cmdline, environ, exe) while it still runs the image it exec'd, then continue it.
 *   selfstop ARGS...            stop, then exit 0
 *   selfstop fork ARGS...       fork: the child (no exec: its parent's argv and environment) stops and
 *                               exits; then the parent stops, waits for it and exits 0
 *   selfstop exec PROG ARGS...  stop, then exec PROG ARGS... (execv: the same environment)
 *   selfstop retry MISSING PROG ARGS...  an exec that fails (MISSING, with other arguments and
 *                               LD_PRELOAD=/never set), then exec PROG ARGS... with LD_BIND_NOT=1 instead,
 *                               as a launcher that tries its way along a search path does
 *   selfstop env                print the environment entries the dynamic linker reads (LD_*,
 *                               GLIBC_TUNABLES, DYLD_*), one a line, in order: its own account; exit 0
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "env")) {
        for (char **e = environ; *e; e++)
            if (!strncmp(*e, "LD_", 3) || !strncmp(*e, "DYLD_", 5) || !strncmp(*e, "GLIBC_TUNABLES=", 15))
                printf("%s\n", *e);
        return 0;
    }
    pid_t child = -1;
    if (argc > 1 && !strcmp(argv[1], "fork")) {
        child = fork();
        if (child == 0) {
            raise(SIGSTOP);
            _exit(0);
        }
    }
    raise(SIGSTOP);
    if (child > 0)
        waitpid(child, NULL, 0);
    if (argc > 2 && !strcmp(argv[1], "exec")) {
        execv(argv[2], argv + 2);
        return 127;
    }
    if (argc > 3 && !strcmp(argv[1], "retry")) {
        setenv("LD_PRELOAD", "/never", 1);
        execl(argv[2], argv[2], "never", (char *)NULL);
        unsetenv("LD_PRELOAD");
        setenv("LD_BIND_NOT", "1", 1);
        execv(argv[3], argv + 3);
        return 127;
    }
    return 0;
}
