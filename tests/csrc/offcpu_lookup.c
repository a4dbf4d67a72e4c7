/* offcpu_lookup.c — one ld.so lookup forced off-CPU for a time the program measures itself.
 *
 * dlsym(RTLD_DEFAULT, name) with `name` on a page registered with userfaultfd: ld.so's
 * _dl_lookup_symbol_x reads the name first (to hash it), faults, and the thread blocks until the
 * handler thread fills the page, which it does only after sleeping SLEEP_MS (clock_gettime around
 * its nanosleep: the sleep as the program measured it). dlsym reads nothing of the name before the
 * lookup, so the whole block falls inside the lookup: slept <= the lookup's time off-CPU <= the
 * lookup's latency <= dlsym_ns (the main thread's clock around that dlsym). SLEEP_MS 0 is the same
 * workload without the wait (the fault and the handler's wake-up still happen). Then N dlsym
 * lookups of gotrace_oncpu_target that nothing slows, each timed by the program (oncpu_dlsym_ns:
 * their sum). The slow dlsym runs in a thread of its own (looker_tid), the N others in main.
 *
 * Prints: slept_ns=<the handler's sleep> dlsym_ns=<the slow dlsym> oncpu_dlsym_ns=<the N others>
 *         looker_tid=<the slow dlsym's thread>
 * USAGE: offcpu_lookup SLEEP_MS N   (userfaultfd: root, or vm.unprivileged_userfaultfd=1)
 * Build: cc -O1 -rdynamic -pthread -o offcpu_lookup offcpu_lookup.c -ldl
 * (-rdynamic: dlsym(RTLD_DEFAULT) finds the program's own two functions)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int gotrace_offcpu_target(void) { return 1; }
int gotrace_oncpu_target(void) { return 2; }

static int uffd;
static long page;
static long sleep_ms;
static long long slept_ns, dlsym_ns;
static long looker_tid;
static void *name, *slow;

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *handler(void *arg)
{
	(void)arg;
	struct pollfd p = {uffd, POLLIN, 0};
	if (poll(&p, 1, -1) != 1)
		exit(3);
	struct uffd_msg msg;
	if (read(uffd, &msg, sizeof(msg)) != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
		exit(3);
	long long t0 = now_ns();
	struct timespec s = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
	while (nanosleep(&s, &s) != 0)
		;
	slept_ns = now_ns() - t0;
	char *src = aligned_alloc(page, page);
	memset(src, 0, page);
	strcpy(src, "gotrace_offcpu_target");
	struct uffdio_copy c = {msg.arg.pagefault.address & ~(page - 1), (uintptr_t)src, page, 0, 0};
	if (ioctl(uffd, UFFDIO_COPY, &c) != 0)
		exit(3);
	return NULL;
}

/* the slow dlsym, in a thread of its own: a thread id that is not the process id */
static void *looker(void *arg)
{
	(void)arg;
	looker_tid = syscall(SYS_gettid);
	long long t0 = now_ns();
	slow = dlsym(RTLD_DEFAULT, name);
	dlsym_ns = now_ns() - t0;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: offcpu_lookup SLEEP_MS N\n");
		return 2;
	}
	sleep_ms = atol(argv[1]);
	long n = atol(argv[2]);
	page = sysconf(_SC_PAGESIZE);
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	struct uffdio_api api = {UFFD_API, 0, 0};
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0) {
		perror("userfaultfd");
		return 4;
	}
	name = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register reg = {{(uintptr_t)name, page}, UFFDIO_REGISTER_MODE_MISSING, 0};
	if (name == MAP_FAILED || ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
		perror("UFFDIO_REGISTER");
		return 4;
	}
	pthread_t h, l;
	pthread_create(&h, NULL, handler, NULL);
	pthread_create(&l, NULL, looker, NULL);
	pthread_join(l, NULL);
	pthread_join(h, NULL);
	long long others = 0;
	for (long i = 0; i < n; i++) {
		long long t1 = now_ns();
		void *p = dlsym(RTLD_DEFAULT, "gotrace_oncpu_target");
		others += now_ns() - t1;
		if (p != (void *)gotrace_oncpu_target)
			return 5;
	}
	printf("slept_ns=%lld dlsym_ns=%lld oncpu_dlsym_ns=%lld looker_tid=%ld\n", slept_ns, dlsym_ns, others,
	       looker_tid);
	return slow == (void *)gotrace_offcpu_target ? 0 : 6;
}
