/* dlsym_n.c — exactly N run-time bindings: dlsym(libm, "cos") N times.
 *   gcc -O1 -o dlsym_n dlsym_n.c -ldl ;  ./dlsym_n N
 * bench_lldb.py runs it with N and with 0 under each backend: the difference
 * divided by N is the backend's marginal cost per binding event.
 */
#include <dlfcn.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 0;
    void *h = dlopen("libm.so.6", RTLD_NOW);
    if (!h)
        return 2;
    for (int i = 0; i < n; i++)
        if (!dlsym(h, "cos"))
            return 3;
    return 0;
}
