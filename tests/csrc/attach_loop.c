/* attach_loop.c — a long-running process to attach to.
 * Prints "ready" once, then every 20 ms looks up "cos" in libm with dlsym
 * (a run-time binding each time) until killed. Exits 0 after 60 s at most.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    void *h = dlopen("libm.so.6", RTLD_NOW);
    if (!h)
        return 2;
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 3000; i++) {
        if (!dlsym(h, "cos"))
            return 3;
        usleep(20000);
    }
    return 0;
}
