/* opener.c — dlopen(argv[1], RTLD_NOW): prints dlerror() and exits 3 when it fails, so a
 * failed lookup inside dlopen is reported and survived, not fatal. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	void *h = argc > 1 ? dlopen(argv[1], RTLD_NOW) : 0;
	if (!h) {
		printf("dlopen failed: %s\n", dlerror());
		return 3;
	}
	printf("dlopen ok\n");
	return 0;
}
