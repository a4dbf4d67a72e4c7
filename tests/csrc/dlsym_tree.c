/* dlsym_tree.c — dlsym()s found and missing names, in itself and in a forked child.
 *
 * The parent dlopens libm, looks up cos (found), gotrace_nope_parent (missing) and
 * tan through RTLD_DEFAULT (found: libm is global with RTLD_GLOBAL), forks, waits for the
 * child and exits 0. The child first waits (at most 30 s) until a debugger-like tracer
 * is attached to it (/proc/self/status TracerPid), as DTrace for Linux attaches to a
 * new process ~0.4 s after it starts, then looks up sin (found) and
 * gotrace_nope_child (missing), and exits 3. None of these names is called directly,
 * so every binding of them glibc reports (LD_DEBUG=bindings) is a dlsym's.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int traced(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	int pid = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "TracerPid:", 10) == 0)
			pid = atoi(line + 10);
	fclose(f);
	return pid != 0;
}

int main(void)
{
	void *m = dlopen("libm.so.6", RTLD_NOW | RTLD_GLOBAL);
	if (!m)
		return 2;
	void *a = dlsym(m, "cos");
	void *b = dlsym(m, "gotrace_nope_parent");
	void *c = dlsym(RTLD_DEFAULT, "tan");
	pid_t p = fork();
	if (p == 0) {
		for (int i = 0; i < 3000 && !traced(); i++)
			usleep(10000);
		usleep(300000); /* probes come on right after the tracer attaches */
		void *d = dlsym(m, "sin");
		void *e = dlsym(m, "gotrace_nope_child");
		_exit(d && !e ? 3 : 4);
	}
	int st = 0;
	waitpid(p, &st, 0);
	return a && !b && c && WIFEXITED(st) && WEXITSTATUS(st) == 3 ? 0 : 1;
}
