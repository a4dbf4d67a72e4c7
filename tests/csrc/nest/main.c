/* nestmain: arms libnest.so, then dlopens libstdc++ (whose unique symbols make ld.so allocate inside
 * its lookups: see nest.c). Prints the handle; exit 0. */
#include <dlfcn.h>
#include <stdio.h>
extern void nest_arm(void);
int main(void)
{
    nest_arm();
    void *h = dlopen("libstdc++.so.6", RTLD_NOW);
    printf("%s\n", h ? "loaded" : dlerror());
    return h ? 0 : 1;
}
