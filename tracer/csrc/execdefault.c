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
 *
 * Built for x86_64 on a Mac (clang -arch x86_64: lldb under Rosetta 2), the shim
 * itself runs translated and execs PROGRAM with an x86_64 binary preference
 * (posix_spawn with POSIX_SPAWN_SETEXEC, as arch(1) does), so a universal
 * program's x86_64 slice runs. Not run on macOS.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__APPLE__) && defined(__x86_64__)
#include <mach/machine.h>
#include <spawn.h>
extern char **environ;

/* returns only when the exec failed (then execv below says why) */
static void exec_x86_64(char *path, char **argv)
{
    posix_spawnattr_t attr;
    cpu_type_t pref = CPU_TYPE_X86_64;
    size_t done;
    if (posix_spawnattr_init(&attr) != 0)
        return;
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETEXEC);
    posix_spawnattr_setbinpref_np(&attr, 1, &pref, &done);
    posix_spawn(NULL, path, NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
}
#endif

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
#if defined(__APPLE__) && defined(__x86_64__)
    exec_x86_64(argv[2], argv + 3);
#endif
    execv(argv[2], argv + 3);
    fprintf(stderr, "execdefault: cannot run %s: %s\n", argv[2], strerror(errno));
    return 127;
}
