/* plt_then_dlsym.c — cos() called through the PLT, then looked up again with
 * dlsym(RTLD_DEFAULT, "cos"): the same requester (the program) and symbol, bound twice, first
 * lazily by _dl_fixup, then by dlsym. Built -z lazy by the tests. Each step writes a marker
 * line on stderr (write(2), unbuffered) before it runs, so glibc's LD_DEBUG lines, also on
 * stderr, fall between the markers of the step that caused them: the program's own account
 * of which binding came from which step. With a second argument "dlsym-first", the dlsym comes
 * first and the PLT call after it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void mark(const char *s)
{
	if (write(2, s, strlen(s)) < 0)
		_exit(3);
}

int main(int argc, char **argv)
{
	double x = argc > 1 ? atof(argv[1]) : 0.5;
	double (*c)(double) = 0;
	volatile double a;
	if (argc > 2 && strcmp(argv[2], "dlsym-first") == 0) {
		mark("MARK dlsym cos\n");
		c = (double (*)(double))dlsym(RTLD_DEFAULT, "cos");
		mark("MARK call cos\n");
		a = cos(x);
	} else {
		mark("MARK call cos\n");
		a = cos(x);
		mark("MARK dlsym cos\n");
		c = (double (*)(double))dlsym(RTLD_DEFAULT, "cos");
	}
	mark("MARK done\n");
	if (!c)
		return 2;
	return c(x) == a ? 0 : 1;
}
