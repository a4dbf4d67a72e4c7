/* bindload.c — loads bindsnoop.bpf.o with libbpf, attaches it to ld.so and the sched tracepoints,
 * and prints its ring buffer's records as dscripts/bindsnoop.bt prints them (the same decoder
 * reads both): READY, N, R, F, S, A, V, C, E, X lines, and bindings as "@b[tid, ts]: (…)" (with the
 * lookup's off-CPU time after its kind: READY's second field says so, 7 numbers before the strings).
 * An exec's S (its time), A (argv) and V lines come from its new image; V holds only the
 * dynamic linker's variables (LD_*, GLIBC_TUNABLES, DYLD_*) in bindsnoop.bt's 127-byte pieces,
 * a newline in one printed as a space; "V pid -1" when the environment was too large to read.
 *
 * USAGE: bindload OBJ LDSO ROOT_PID LOOKUP FIXUP_LO FIXUP_HI PFIXUP_LO PFIXUP_HI TEXT_LO TEXT_HI
 *                 LOOKUP_OFF RELOC_OFF SIGNAL_OFF
 *   addresses as bindsnoop.bt takes them (link-time, decimal); *_OFF: file offsets in LDSO of
 *   _dl_lookup_symbol_x, _dl_relocate_object and _dl_signal_cexception, where the uprobes go.
 * Stops on SIGTERM/SIGINT or when stdin closes: drains the buffer, closes stdout (the records'
 * end), prints "LOST\t<n>" (records the ring buffer had no room for) and "END" on stderr, detaches.
 * GOTRACE_BPF_RINGBUF_BYTES in the environment sets the ring buffer's size (a power of 2, at least a page).
 * GOTRACE_KEEP_FD=N (a SOCK_SEQPACKET socket): on each exec record (/proc/PID/exe) and object name,
 * the file is opened at once and sent there (SCM_RIGHTS, see keep()), so gotrace keeps it even when
 * it is deleted as soon as it ran (`go test`'s binaries); never blocks.
 * Build: cc -O2 -o bindload bindload.c -lbpf
 */
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Kernel 6.1 and later allocate hash map elements on demand in any program (bpf_mem_alloc);
   before, tracing programs may only use preallocated maps. Preallocating three 65,536-entry maps
   costs ~5-10 ms of every start, so they are preallocated only where they must be. */
static int allocates_on_demand(void)
{
	struct utsname u;
	int major = 0, minor = 0;
	if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return 0;
	return major > 6 || (major == 6 && minor >= 1);
}

#define STRLEN 128
#define ARGS_MAX 32768
#define ENV_MAX 65536
#define CWD_DEPTH 32
#define PIECE (STRLEN - 1)
enum { T_BIND = 1, T_NAME, T_RELOC, T_FORK, T_EXEC, T_EXIT };

struct rec {
	uint32_t type, tid;
	uint64_t ts, pid, gen, a, b, c, d, e;
	char s1[STRLEN];
	char s2[STRLEN];
};
struct args_rec {
	uint32_t type, tid;
	uint64_t ts, pid, len, arglen, envlen;
	char data[ARGS_MAX + ENV_MAX];
};
struct cwd_rec {
	uint32_t type, tid;
	uint64_t ts, pid, n;
	char names[CWD_DEPTH][STRLEN];
};

static int keep_fd = -1;  /* GOTRACE_KEEP_FD: where each program's and object's file goes */

/* The files already sent, by (device, inode): each is sent open once, then named only. */
#define KEPT_SLOTS 8192
static struct { uint64_t dev, ino; } kept[KEPT_SLOTS];

static int kept_before(uint64_t dev, uint64_t ino)
{
	uint64_t h = (dev * 0x9E3779B97F4A7C15ull ^ ino) % KEPT_SLOTS;
	for (int i = 0; i < KEPT_SLOTS; i++, h = (h + 1) % KEPT_SLOTS) {
		if (kept[h].ino == ino && kept[h].dev == dev)
			return 1;
		if (kept[h].ino == 0 && kept[h].dev == 0) {
			kept[h].dev = dev;
			kept[h].ino = ino;
			return 0;
		}
	}
	return 1;  /* full: named only, gotrace finds it by path */
}

/* Messages for gotrace not sent yet: its socket takes ~10 at a time (net.unix.max_dgram_qlen), and
   its reader may wait for the CPU, so they queue here, each with its open file, and go out as the
   socket has room (flush_kept, after every read of the ring buffer and when the socket is writable). */
#define KEEP_QUEUE 4096
static struct { int fd; int len; char msg[STRLEN + 64]; } keepq[KEEP_QUEUE];
static unsigned keep_head, keep_tail;  /* keepq[keep_head .. keep_tail) waits, modulo KEEP_QUEUE */
static unsigned long long keep_dropped;

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Sends what waits; with wait_ms, waits that long at most, in all, for room (the end of the run). */
static int flush_kept(int wait_ms)
{
	long long deadline = now_ms() + wait_ms;
	while (keep_head != keep_tail) {
		unsigned i = keep_head % KEEP_QUEUE;
		struct iovec iov = {keepq[i].msg, (size_t)keepq[i].len};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
		if (keepq[i].fd >= 0) {
			mh.msg_control = u.buf;
			mh.msg_controllen = sizeof(u.buf);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &keepq[i].fd, sizeof(int));
		}
		if (sendmsg(keep_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			long long left = deadline - now_ms();
			if (errno == EAGAIN && left > 0) {  /* at the end: give gotrace's reader its time */
				struct pollfd w = {keep_fd, POLLOUT, 0};
				if (poll(&w, 1, (int)left) > 0)
					continue;
			}
			if (errno == EAGAIN || errno == EINTR)
				return 1;  /* the socket is full: later */
			keep_dropped++;  /* gotrace is gone: nothing more to send */
		}
		if (keepq[i].fd >= 0)
			close(keepq[i].fd);
		keep_head++;
	}
	return 0;
}

/* What pid runs (its exe) or mapped under name (an object's l_name), kept the moment the record is
   read: "E|N<TAB>pid<TAB>name<TAB>dev:ino" (E: an exec's filename, N: an l_name; an N only for a
   file not sent before), with the open file attached the first time that file is seen —
   the very file, readable even once deleted (`go test` deletes its test binaries as soon as they
   ran). Never blocks: the message waits in keepq until the socket has room. */
static void keep(unsigned long long pid, const char *name, int exe)
{
	char path[STRLEN + 64], absname[2 * STRLEN + 64];
	if (name[0] == '/') {
		snprintf(path, sizeof(path), "%s", name);
	} else {  /* named as gotrace's decoder names it: the working directory joined, "./" dropped */
		char cwd[STRLEN + 32], link[64];
		const char *rest = name;
		while (rest[0] == '.' && rest[1] == '/')
			rest += 2;
		snprintf(link, sizeof(link), "/proc/%llu/cwd", pid);
		ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
		if (n > 0) {
			cwd[n] = 0;
			snprintf(absname, sizeof(absname), "%s/%s", strcmp(cwd, "/") ? cwd : "", rest);
			name = absname;
		}
		snprintf(path, sizeof(path), "/proc/%llu/cwd/%s", pid, rest);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st, running;
	if (exe) {
		/* the running program is the very file; unless the pid has exec'd again since (`env` runs
		   the next one at once) or the name is a script (what runs is its interpreter) */
		char head[2] = {0, 0}, self[64];
		snprintf(self, sizeof(self), "/proc/%llu/exe", pid);
		int rfd = open(self, O_RDONLY | O_CLOEXEC);
		int script = fd >= 0 && pread(fd, head, 2, 0) == 2 && head[0] == '#' && head[1] == '!';
		if (rfd >= 0 && (fd < 0 || script || (fstat(rfd, &running) == 0 && fstat(fd, &st) == 0 &&
		                                      running.st_dev == st.st_dev && running.st_ino == st.st_ino))) {
			if (fd >= 0)
				close(fd);
			fd = rfd;
		} else if (rfd >= 0) {
			close(rfd);
		}
	}
	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || keep_tail - keep_head >= KEEP_QUEUE) {
		keep_dropped += fd >= 0;
		close(fd);
		return;
	}
	int known = kept_before(st.st_dev, st.st_ino);
	if (known && !exe) {  /* a library sent before: gotrace finds this process's mapping of it */
		close(fd);
		return;
	}
	if (known) {  /* the program is named only: gotrace has its file */
		close(fd);
		fd = -1;
	}
	unsigned i = keep_tail % KEEP_QUEUE;
	int len = snprintf(keepq[i].msg, sizeof(keepq[i].msg), "%c\t%llu\t%s\t%llu:%llu", exe ? 'E' : 'N', pid, name,
	                   (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	keepq[i].len = len < (int)sizeof(keepq[i].msg) ? len : (int)sizeof(keepq[i].msg) - 1;
	keepq[i].fd = fd;
	keep_tail++;
	flush_kept(0);
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void clean(char *s, size_t n)
{
	for (size_t i = 0; i < n && s[i]; i++)
		if (s[i] == '\n')
			s[i] = ' ';
}

/* argv and environment strings whole: a record is a line, so a newline in one is written \n and a
   backslash \\ (tracer/capture/bpftrace/decode.py undoes it) */
static void put_escaped(const char *s, size_t n)
{
	for (size_t i = 0; i < n && s[i]; i++) {
		if (s[i] == '\n')
			fputs("\\n", stdout);
		else if (s[i] == '\\')
			fputs("\\\\", stdout);
		else
			putchar(s[i]);
	}
}

/* the dynamic linker reads these: glibc's ld.so every LD_* name and GLIBC_TUNABLES, dyld DYLD_* */
static int loader_variable(const char *e, size_t n)
{
	return (n >= 3 && !memcmp(e, "LD_", 3)) || (n >= 5 && !memcmp(e, "DYLD_", 5)) ||
	       (n >= 15 && !memcmp(e, "GLIBC_TUNABLES=", 15));
}

static void print_env(const struct args_rec *a, size_t size)
{
	unsigned long long pid = a->pid;
	size_t at = offsetof(struct args_rec, data) + a->len;
	size_t have = size > at ? size - at : 0;
	if (a->envlen > ENV_MAX || a->envlen > have) {
		printf("V\t%llu\t-1\t0\t\n", pid);
		return;
	}
	const char *env = a->data + a->len;
	for (size_t i = 0, index = 0; i < a->envlen; index++) {
		size_t j = i;
		while (j < a->envlen && env[j])
			j++;
		if (loader_variable(env + i, j - i)) {
			for (size_t k = 0, from = i;; k++, from += PIECE) {
				size_t n = j - from < PIECE ? j - from : PIECE;
				char piece[PIECE + 1];
				memcpy(piece, env + from, n);
				piece[n] = 0;
				printf("V\t%llu\t%zu\t%zu\t", pid, index, k);
				put_escaped(piece, n);
				putchar('\n');
				if (n < PIECE)  /* the last piece is short (empty when the rest filled whole pieces) */
					break;
			}
		}
		i = j + 1;
	}
}

static void print_cwd(const struct cwd_rec *c)
{
	if (c->n > CWD_DEPTH)
		return;  /* the walk did not reach the root */
	printf("C\t%llu\t%llu\t", (unsigned long long)c->ts, (unsigned long long)c->pid);
	int named = 0;
	for (uint64_t k = c->n; k > 0; k--) {
		char name[STRLEN];
		memcpy(name, c->names[k - 1], STRLEN);
		name[STRLEN - 1] = 0;
		if (!name[0])
			continue;  /* a mount crossed */
		clean(name, STRLEN);
		printf("/%s", name);
		named = 1;
	}
	printf(named ? "\n" : "/\n");
}

static int handle(void *ctx, void *data, size_t size)
{
	(void)ctx;
	struct rec *r = data;
	if (r->type == T_EXEC + 101) {
		if (size >= sizeof(struct cwd_rec))
			print_cwd(data);
		return 0;
	}
	if (r->type == T_EXEC + 100) {
		struct args_rec *a = data;
		if (size < offsetof(struct args_rec, data) || a->len > ARGS_MAX || size < offsetof(struct args_rec, data) + a->len)
			return 0;
		printf("S\t%llu\t%llu\n", (unsigned long long)a->ts, (unsigned long long)a->pid);
		/* whole arguments only: one the area's end cut short is left out with those after it */
		size_t len = a->len, i = 0;
		for (int n = 0; i < len && n < 4096; n++) {
			size_t j = i;
			while (j < len && a->data[j])
				j++;
			if (j == len && a->arglen > a->len)
				break;
			printf("A\t%llu\t%d\t", (unsigned long long)a->pid, n);
			put_escaped(a->data + i, j - i);
			putchar('\n');
			i = j + 1;
		}
		print_env(a, size);
		return 0;
	}
	if (size < sizeof(*r))
		return 0;
	switch (r->type) {
	case T_BIND:
		clean(r->s1, STRLEN);
		clean(r->s2, STRLEN);
		printf("@b[%u, %llu]: (%llu, %llu, %llu, %llu, %llu, %llu, %llu, %s, %s)\n", r->tid,
		       (unsigned long long)r->ts, (unsigned long long)r->pid, (unsigned long long)r->gen,
		       (unsigned long long)r->a, (unsigned long long)r->b, (unsigned long long)r->c,
		       (unsigned long long)r->d, (unsigned long long)r->e, r->s1, r->s2);
		break;
	case T_NAME:
		clean(r->s1, STRLEN);
		if (keep_fd >= 0 && r->s1[0])  /* "": the main program, kept at its exec */
			keep((unsigned long long)r->pid, r->s1, 0);
		printf("N\t%llu\t%llu\t%llu\t%llu\t%s\n", (unsigned long long)r->pid, (unsigned long long)r->gen,
		       (unsigned long long)r->a, (unsigned long long)r->b, r->s1);
		break;
	case T_RELOC:
		printf("R\t%llu\t%llu\t%llu\t%llu\t%llu\n", (unsigned long long)r->ts, (unsigned long long)r->pid,
		       (unsigned long long)r->gen, (unsigned long long)r->a, (unsigned long long)r->b);
		break;
	case T_FORK:
		printf("F\t%llu\t%llu\t%llu\t%llu\n", (unsigned long long)r->ts, (unsigned long long)r->pid,
		       (unsigned long long)r->a, (unsigned long long)r->gen);
		break;
	case T_EXEC:
		clean(r->s1, STRLEN);
		if (keep_fd >= 0)
			keep((unsigned long long)r->pid, r->s1, 1);
		printf("E\t%llu\t%llu\t%s\n", (unsigned long long)r->ts, (unsigned long long)r->pid, r->s1);
		break;
	case T_EXIT:
		printf("X\t%llu\t%llu\t%d\n", (unsigned long long)r->ts, (unsigned long long)r->pid, (int)r->a);
		break;
	}
	return 0;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

int main(int argc, char **argv)
{
	if (argc != 14) {
		fprintf(stderr, "usage: bindload OBJ LDSO ROOT_PID LOOKUP FIXUP_LO FIXUP_HI PFIXUP_LO PFIXUP_HI "
		                "TEXT_LO TEXT_HI LOOKUP_OFF RELOC_OFF SIGNAL_OFF\n");
		return 2;
	}
	libbpf_set_print(libbpf_quiet);
	const char *obj_path = argv[1], *ldso = argv[2];
	uint64_t cfg[8];
	/* config: LOOKUP FIXUP_LO FIXUP_HI PFIXUP_LO PFIXUP_HI TEXT_LO TEXT_HI ROOT */
	for (int i = 0; i < 7; i++)
		cfg[i] = strtoull(argv[4 + i], NULL, 10);
	cfg[7] = strtoull(argv[3], NULL, 10);
	size_t lookup_off = strtoull(argv[11], NULL, 10), reloc_off = strtoull(argv[12], NULL, 10),
	       signal_off = strtoull(argv[13], NULL, 10);

	struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
	if (!obj) {
		fprintf(stderr, "bindload: cannot open %s: %s\n", obj_path, strerror(errno));
		return 1;
	}
	const char *rb_bytes = getenv("GOTRACE_BPF_RINGBUF_BYTES");  /* tests shrink it to overflow it */
	const char *keep_env = getenv("GOTRACE_KEEP_FD");
	if (keep_env && *keep_env)
		keep_fd = atoi(keep_env);
	if (rb_bytes && *rb_bytes)
		bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "events"), strtoul(rb_bytes, NULL, 10));
	int ncpus = libbpf_num_possible_cpus();  /* an exec's scratch space: one per CPU */
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "scratch"), ncpus > 0 ? ncpus : 1);
	if (allocates_on_demand()) {
		const char *hashes[] = {"traced", "flight", "depth", "reloc"};
		for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
			struct bpf_map *m = bpf_object__find_map_by_name(obj, hashes[i]);
			if (m)
				bpf_map__set_map_flags(m, bpf_map__map_flags(m) | BPF_F_NO_PREALLOC);
		}
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "bindload: the kernel refused the BPF program: %s\n", strerror(errno));
		return 1;
	}
	int cfd = bpf_object__find_map_fd_by_name(obj, "config");
	for (uint32_t k = 0; k < 8; k++)
		bpf_map_update_elem(cfd, &k, &cfg[k], BPF_ANY);

	struct { const char *prog; int ret; size_t off; } up[] = {
		{"on_lookup", 0, lookup_off}, {"on_lookup_ret", 1, lookup_off},
		{"on_relocate", 0, reloc_off}, {"on_relocate_ret", 1, reloc_off}, {"on_signal", 0, signal_off},
	};
	struct bpf_link *links[16];
	int nlinks = 0;
	for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(obj, up[i].prog);
		struct bpf_link *l = p ? bpf_program__attach_uprobe(p, up[i].ret, -1, ldso, up[i].off) : NULL;
		if (!l) {
			fprintf(stderr, "bindload: cannot attach %s to %s+%zu: %s\n", up[i].prog, ldso, up[i].off,
			        strerror(errno));
			return 1;
		}
		links[nlinks++] = l;
	}
	const char *tps[] = {"on_fork", "on_exec", "on_exit", "on_switch"};
	for (size_t i = 0; i < sizeof(tps) / sizeof(tps[0]); i++) {
		struct bpf_link *l = bpf_program__attach(bpf_object__find_program_by_name(obj, tps[i]));
		if (!l) {
			fprintf(stderr, "bindload: cannot attach %s: %s\n", tps[i], strerror(errno));
			return 1;
		}
		links[nlinks++] = l;
	}
	struct ring_buffer *rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "events"), handle, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "bindload: cannot open the ring buffer: %s\n", strerror(errno));
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("READY\t%llu\t7\n", (unsigned long long)cfg[7]);  /* 7: numbers per binding record */
	fflush(stdout);
	/* wait on the ring buffer and stdin together: records as they come, the end at once */
	struct pollfd fds[3] = {{ring_buffer__epoll_fd(rb), POLLIN, 0}, {0, POLLIN | POLLHUP, 0}, {-1, POLLOUT, 0}};
	while (!stop) {
		fds[2].fd = keep_head != keep_tail ? keep_fd : -1;  /* wake when gotrace can take what waits */
		int n = poll(fds, 3, 100);  /* records come without wake-ups: read them every 100 ms */
		if (n < 0 && errno != EINTR)
			break;
		if (ring_buffer__consume(rb) < 0)
			break;
		fflush(stdout);
		if (keep_fd >= 0)
			flush_kept(0);
		if (fds[1].revents) {  /* stdin closed (or spoke): the command is done */
			char buf[64];
			if (read(0, buf, sizeof(buf)) <= 0)
				break;
		}
	}
	ring_buffer__consume(rb);
	uint64_t lost = 0;
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *per = calloc(ncpu > 0 ? ncpu : 1, sizeof(uint64_t));
	uint32_t zero = 0;
	if (per && bpf_map_lookup_elem(bpf_object__find_map_fd_by_name(obj, "lost"), &zero, per) == 0)
		for (int i = 0; i < ncpu; i++)
			lost += per[i];
	if (keep_fd >= 0) {  /* every file named, before the records' end; then gotrace's reader sees the end */
		flush_kept(5000);
		close(keep_fd);
	}
	/* stdout's end is the records' end: the reader need not wait ~0.5 s for the uprobes to detach */
	fflush(stdout);
	fclose(stdout);
	fprintf(stderr, "LOST\t%llu\nEND\n", (unsigned long long)lost);
	fflush(stderr);
	for (int i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
