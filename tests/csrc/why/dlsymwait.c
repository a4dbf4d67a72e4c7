/* dlsymwait.c — dlsym(RTLD_DEFAULT, NAME) for each NAME of argv[2..], then waits (at most 60 s) until
 * the file argv[1] exists before it exits: a tracer that names addresses by the process's
 * /proc/PID/maps (DTrace on Linux) reads them while the process still lives, and the test says when
 * it may end (once the records are in the session). Exit status: how many names were not found.
 */
#include <dlfcn.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int missing = 0;
	if (argc < 2)
		return 100;
	for (int i = 2; i < argc; i++)
		missing += dlsym(RTLD_DEFAULT, argv[i]) == NULL;
	for (int i = 0; i < 6000 && access(argv[1], F_OK) != 0; i++)
		usleep(10000);
	return missing;
}
