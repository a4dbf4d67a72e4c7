/* execdefault.c — exec a program with some signals back at their default action.
 *
 *   execdefault SIGNALS PROGRAM ARGV0 [ARGS...]
 *
 * SIGNALS is a comma-separated list of signal numbers (e.g. 13,25) set to
 * SIG_DFL before PROGRAM is exec'd with ARGV0 ARGS... as its argv. lldb-server
 * ignores SIGPIPE and every program it launches inherits that across exec, so
 * `yes | head -1` under a debugger never dies of SIGPIPE. gotrace's lldb backend
 * launches programs through this, stopped at its entry and followed across the
 * exec, so they run with the dispositions they would have without gotrace.
 * Exit 127 when PROGRAM cannot be exec'd (errno on stderr), 125 on bad usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return 125;
    char *list = argv[1];
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int sig = atoi(tok);
        if (sig > 0 && sig < NSIG)
            signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[2], argv + 3);
    fprintf(stderr, "execdefault: cannot run %s: %s\n", argv[2], strerror(errno));
    return 127;
}
