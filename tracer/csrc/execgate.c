/* execgate.c — wait at a gate, then exec a program.
 *
 *   execgate GATE_FD PROGRAM ARGV0 [ARGS...]
 *
 * Reads one byte from GATE_FD (gotrace's gate pipe), closes it, and execs PROGRAM
 * with ARGV0 ARGS... as its argv. gotrace's dtrace backend starts the traced command
 * through this: DTrace for Linux resolves a pid probe (`pid$target::dlsym:entry`) in
 * every module mapped in the process it attaches to, and a forked gotrace holds
 * dozens (liblldb, pyarrow ...), where a probe can fail to go on; this program maps
 * libc and nothing else while dtrace attaches. Exit 125 when the gate closes
 * without opening (gotrace gave up), 127 when PROGRAM cannot be exec'd (errno on
 * stderr), 124 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return 124;
    int fd = atoi(argv[1]);
    char c = 0;
    ssize_t n;
    do
        n = read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || c != 'g')
        return 125;
    close(fd);
    execv(argv[2], argv + 3);
    fprintf(stderr, "%s: %s\n", argv[3], strerror(errno));
    return 127;
}
