/* envwatch.c — for the ld-debug backend: what each program image of a traced tree was exec'd with,
 * read from /proc while the image runs: the dynamic linker's variables of /proc/PID/environ (LD_*,
 * GLIBC_TUNABLES, DYLD_*), readlink /proc/PID/exe and /proc/PID/cwd.
 *
 *   envwatch DIR        until stdin closes; one line per program image seen writing to a log
 *                       ld.<pid> in DIR (LD_DEBUG_OUTPUT: glibc's ld.so writes there from its start):
 *                       PID \t STATE \t STACK \t EXE \t CWD [\t NAME=VALUE ...]
 *   STACK: the image's identity (from /proc/PID/stat: its stack start and where its environment
 *   begins: a new image, new ones); an image is read once, when its ld.so first writes (inotify:
 *   the log created or written to), not while an exec is under way; every log is looked at again
 *   after 20 ms without events, or when inotify's queue overflowed.
 *   STATE: "ok"; "gone" (no /proc left to read); "moved" (exe or stack changed during the read: the
 *   process exec'd meanwhile, so the environment read may be either image's). Tabs and newlines in
 *   a value are printed as \t and \n, a backslash as \\.
 *
 * In C, not a Python thread: a process that lives a millisecond is gone before a thread waiting
 * for the interpreter's lock (5 ms at worst) has read it. Build: cc -O2 -o envwatch envwatch.c
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define ENV_MAX (1 << 20)
#define SLOTS 65536  /* pids remembered: the image last read, and when a log of the pid was last looked at */

static struct { int pid; unsigned long long stack; struct timespec at; } slot[SLOTS];

static char env[ENV_MAX];

static void put_escaped(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\t')
			fputs("\\t", stdout);
		else if (s[i] == '\n')
			fputs("\\n", stdout);
		else if (s[i] == '\\')
			fputs("\\\\", stdout);
		else
			putchar(s[i]);
	}
}

static int loader_variable(const char *e, size_t n)
{
	return (n >= 3 && !memcmp(e, "LD_", 3)) || (n >= 5 && !memcmp(e, "DYLD_", 5)) ||
	       (n >= 15 && !memcmp(e, "GLIBC_TUNABLES=", 15));
}

static ssize_t slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == size)
			break;
	}
	close(fd);
	return (ssize_t)got;
}

/* The image's identity: its stack start (/proc/PID/stat field 28) and where its environment begins
 * (field 50); 0 while an exec is under way: the new image's stack is set before its environment is
 * copied (binfmt_elf: setup_arg_pages, then create_elf_tables), and a read then finds it empty. */
static unsigned long long identity(const char *pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	ssize_t n = slurp(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');  /* the name may hold anything: fields count from after it */
	unsigned long long stack = 0, env_start = 0;
	for (int field = 2; p && field < 50; field++) {
		p = strchr(p + 1, ' ');
		if (p && field + 1 == 28)
			stack = strtoull(p + 1, NULL, 10);
	}
	if (p)
		env_start = strtoull(p + 1, NULL, 10);
	return stack && env_start ? stack ^ (env_start << 1) : 0;
}

static void one(const char *name, int created)
{
	if (strncmp(name, "ld.", 3) || !name[3] || strspn(name + 3, "0123456789") != strlen(name + 3))
		return;
	const char *pid = name + 3;
	int id = atoi(pid), k = id % SLOTS;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long since = (now.tv_sec - slot[k].at.tv_sec) * 1000000000LL + (now.tv_nsec - slot[k].at.tv_nsec);
	if (!created && slot[k].pid == id && since < 100000)
		return;  /* written to again within 100 us: the same image, most likely; looked at soon again */
	slot[k].at = now;
	unsigned long long stack = identity(pid);
	if (!stack || (slot[k].pid == id && slot[k].stack == stack))
		return;  /* gone, being exec'd (looked at again at its next write), or an image already read */
	char path[PATH_MAX], exe[PATH_MAX], exe2[PATH_MAX], cwd[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%s/exe", pid);
	ssize_t e = readlink(path, exe, sizeof(exe) - 1);
	snprintf(path, sizeof(path), "/proc/%s/environ", pid);
	ssize_t envlen = slurp(path, env, sizeof(env));
	snprintf(path, sizeof(path), "/proc/%s/cwd", pid);
	ssize_t c = readlink(path, cwd, sizeof(cwd) - 1);
	snprintf(path, sizeof(path), "/proc/%s/exe", pid);
	ssize_t e2 = readlink(path, exe2, sizeof(exe2) - 1);
	unsigned long long stack2 = identity(pid);
	exe[e > 0 ? e : 0] = 0;
	exe2[e2 > 0 ? e2 : 0] = 0;
	cwd[c > 0 ? c : 0] = 0;
	int gone = envlen < 0 || e < 0 || envlen == (ssize_t)sizeof(env);
	int moved = !gone && (stack2 != stack || strcmp(exe, exe2));
	slot[k].pid = id;
	slot[k].stack = stack;
	printf("%s\t%s\t%llu\t", pid, gone ? "gone" : moved ? "moved" : "ok", stack);
	put_escaped(exe, strlen(exe));
	putchar('\t');
	put_escaped(cwd, strlen(cwd));
	if (!gone && !moved) {
		for (ssize_t i = 0; i < envlen;) {
			ssize_t j = i;
			while (j < envlen && env[j])
				j++;
			if (loader_variable(env + i, (size_t)(j - i))) {
				putchar('\t');
				put_escaped(env + i, (size_t)(j - i));
			}
			i = j + 1;
		}
	}
	putchar('\n');
	fflush(stdout);
}

static void scan(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));)
		one(e->d_name, 1);
	closedir(d);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: envwatch DIR\n");
		return 2;
	}
	/* ahead of the traced processes where allowed (root): a read comes too late once they are gone */
	if (setpriority(PRIO_PROCESS, 0, -10) != 0)
		errno = 0;
	int fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0 || inotify_add_watch(fd, argv[1], IN_CREATE | IN_MODIFY) < 0) {
		fprintf(stderr, "envwatch: cannot watch %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("READY\n");
	fflush(stdout);
	static char buf[1 << 16] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd fds[2] = {{fd, POLLIN, 0}, {0, POLLIN | POLLHUP, 0}};
	int closing = 0;  /* stdin closed: the command is done; what is queued is read, then the end */
	for (;;) {
		int ready = poll(fds, closing ? 1 : 2, closing ? 0 : 20);
		if (ready < 0 && errno != EINTR)
			return 1;
		if (closing && ready == 0)
			return 0;
		if (ready == 0) {  /* quiet for 20 ms: every log looked at, in case an event was lost */
			scan(argv[1]);
			continue;
		}
		if (fds[0].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));
			for (ssize_t i = 0; i < n;) {
				struct inotify_event *ev = (struct inotify_event *)(buf + i);
				if (ev->mask & IN_Q_OVERFLOW)
					scan(argv[1]);  /* the queue was full: events were dropped */
				else if (ev->len)
					one(ev->name, !!(ev->mask & IN_CREATE));
				i += (ssize_t)sizeof(*ev) + ev->len;
			}
		}
		if (!closing && fds[1].revents)
			closing = 1;
	}
}
