/* versions.c — a program that imports symbols of several glibc versions (gotrace check's test):
 * printf (GLIBC_2.2.5 on x86_64), pthread_create and dlsym (GLIBC_2.34, when they moved into
 * libc), and, when built against libm, cos (GLIBC_2.2.5) and exp (a newer version on glibc
 * 2.29+: a new implementation got a new version). The oracle is readelf -V --dyn-syms. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>

static void *run(void *arg) { return arg; }

int main(int argc, char **argv)
{
	pthread_t t;
	volatile double x = argc;
	pthread_create(&t, 0, run, argv);
	pthread_join(t, 0);
	printf("%p %f %f\n", dlsym(RTLD_DEFAULT, "cos"), cos(x), exp(x));
	return 0;
}
