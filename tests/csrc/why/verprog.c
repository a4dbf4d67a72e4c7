/* verprog.c — calls libver.so's old, mid and one, and looks old up with dlsym(RTLD_DEFAULT): prints
 * what each returned, i.e. which version of each ld.so bound (ver.c). */
#include <dlfcn.h>
#include <stdio.h>

int old(void);
int mid(void);
int one(void);

int main(void)
{
	/* the calls first: LD_DEBUG tells a call's lookup from dlsym's only by which comes first */
	int o = old(), m = mid(), n = one();
	int (*d)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "old");
	printf("old %d mid %d one %d dlsym-old %d\n", o, m, n, d ? d() : -1);
	return 0;
}
