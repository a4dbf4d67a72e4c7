/* attach_wait.c — a C program to attach to: prints "ready", blocks in read(2) on stdin (a system
 * call the attach interrupts), then binds cos lazily through its PLT (a lookup while attached),
 * prints cos(length of the line read) and exits 0. Build: gcc -O1 -o attach_wait attach_wait.c -lm
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char line[256] = {0};
    printf("ready\n");
    fflush(stdout);
    ssize_t n = read(0, line, sizeof(line) - 1);
    if (n < 0)
        return 2;
    volatile double x = (double)n;
    printf("cos %.3f\n", cos(x));
    return 0;
}
