/* loadstart.c — times exec to main of a program, in a fresh process, with no tracer.
 *
 *   loadstart PROGRAM [ARGS...]
 *
 * Forks; the child stores the clock in a page it shares with the parent and execs
 * PROGRAM with its stdout on a pipe; PROGRAM (loadprobe.c) prints the clock as its
 * main() begins. One line (exit_status 128+N: killed by signal N):
 *
 *     exec_ns <TAB> main_ns <TAB> exit_status
 *
 * main_ns - exec_ns is everything between the exec and main: the kernel's exec, the
 * dynamic linker loading and binding the program's imports, and, for a foreign
 * program, starting its translator (binfmt_misc's qemu-user on Linux; Rosetta 2 on a
 * Mac, where an x86_64-only PROGRAM runs translated by itself). The clock is the one
 * loadprobe.c reads (bench_clock.h). Exit 125 on bad usage, 126 when it cannot be run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_clock.h"

int main(int argc, char **argv)
{
    if (argc < 2)
        return 125;
    /* the child's exec time, read by the parent: shared, so taking it costs no syscall */
    volatile long long *start = mmap(NULL, sizeof *start, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, -1, 0);
    int fds[2];
    if (start == MAP_FAILED || pipe(fds) != 0)
        return 126;
    pid_t pid = fork();
    if (pid < 0)
        return 126;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        *start = now(); /* a store to the shared page, the last thing before the exec */
        execv(argv[1], argv + 1);
        _exit(127);
    }
    close(fds[1]);
    char out[128];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof out - 1 && (r = read(fds[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = 0;
    int status = 0;
    waitpid(pid, &status, 0);
    long long t1 = 0;
    if (sscanf(out, "%lld", &t1) != 1)
        t1 = 0;
    printf("%lld\t%lld\t%d\n", *start, t1, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
