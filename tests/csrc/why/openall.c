/* openall.c — dlopen(argv[i], RTLD_NOW) for every argument, in order, each with its own handle:
 * independent roots, each with its own local scope. A dlopen that fails (dlerror printed) does
 * not stop the others; the exit status is 3 when one failed, else 0. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	int status = 0;
	for (int i = 1; i < argc; i++) {
		if (dlopen(argv[i], RTLD_NOW)) {
			printf("dlopen ok: %s\n", argv[i]);
		} else {
			printf("dlopen failed: %s\n", dlerror());
			status = 3;
		}
	}
	return status;
}
