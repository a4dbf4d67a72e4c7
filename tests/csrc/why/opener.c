/* opener.c — dlopen(argv[1], RTLD_NOW): prints dlerror() and exits 3 when it fails, so a
 * failed lookup inside dlopen is reported and survived, not fatal. With argv[2], looks that
 * function up in the handle (dlsym) and calls it: the lookup searches the handle's scope. */
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
	if (argc > 2) {
		int (*f)(void) = (int (*)(void))dlsym(h, argv[2]);
		if (!f) {
			printf("dlsym failed: %s\n", dlerror());
			return 4;
		}
		printf("%s=%c\n", argv[2], f());
	}
	return 0;
}
