/* bindload.c — loads bindsnoop.bpf.o with libbpf, attaches it to ld.so and the sched tracepoints,
 * and prints its ring buffer's records as dscripts/bindsnoop.bt prints them (the same decoder
 * reads both): READY, N, R, F, S, A, V, C, E, X lines, and bindings as "@b[tid, ts]: (…)" (with the
 * lookup's off-CPU time after its kind: READY's second field says so, 7 numbers before the strings).
 * An exec's S (its time), A (argv) and V lines come from its new image; V holds only the
 * dynamic linker's variables (LD_*, GLIBC_TUNABLES, DYLD_*) in bindsnoop.bt's 127-byte pieces,
 * a newline in one printed as a space; "V pid -1" when the environment was too large to read.
 *
 * USAGE: bindload [--agent SOCKET] OBJ LDSO ROOT_PID LOOKUP FIXUP_LO FIXUP_HI PFIXUP_LO PFIXUP_HI
 *                 TEXT_LO TEXT_HI LOOKUP_OFF RELOC_OFF SIGNAL_OFF
 *   addresses as bindsnoop.bt takes them (link-time, decimal); *_OFF: file offsets in LDSO of
 *   _dl_lookup_symbol_x, _dl_relocate_object and _dl_signal_cexception, where the uprobes go.
 *
 * One command (no --agent): ROOT_PID (a gated child, not exec'd yet) is followed from its exec;
 * records go to stdout. Stops on SIGTERM/SIGINT or when stdin closes: drains the buffer, closes
 * stdout (the records' end), prints "LOST\t<n>" (records the ring buffer had no room for) and "END"
 * on stderr, detaches. GOTRACE_KEEP_FD=N (a SOCK_SEQPACKET socket): on each exec record
 * (/proc/PID/exe) and object name, the file is opened at once and sent there (SCM_RIGHTS, see
 * keep()), so gotrace keeps it even when it is deleted as soon as it ran (`go test`'s binaries);
 * never blocks.
 *
 * The agent (--agent SOCKET, ROOT_PID 0): the program stays attached, and SOCKET (a SOCK_SEQPACKET
 * Unix socket any user may connect to) serves sessions. A client sends "TRACE\t<pid>" with three
 * descriptors (where the records go, where LOST/END go, where kept files go — what stdout, stderr and
 * GOTRACE_KEEP_FD are to one command); the pid must be the client's own child, not exec'd yet, running
 * as the client (SO_PEERCRED; root may name any pid). Its records then go there as above, from READY;
 * a session of a user other than root follows only processes running as that user (bindsnoop.bpf.c)
 * and opens its kept files with that user's credentials (setfsuid), so it receives nothing its user
 * could not read. "END" (or closing the connection) ends the session as stdin's end ends one command.
 * "STATUS" answers one line of key=value fields; "STOP" (root only) ends every session and the agent.
 * The agent never blocks on a client: output waits in memory (up to OUT_CAP a session, then records
 * are counted lost), and a client gone only ends its own session.
 *
 * GOTRACE_BPF_RINGBUF_BYTES in the environment sets the ring buffer's size (a power of 2, at least a page).
 * Build: cc -O2 -o bindload bindload.c -lbpf
 */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
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
#define PENDING (~0ULL)
#define SESS_SLOTS 1024
#define MAX_SESSIONS 64
#define OUT_CAP (256u << 20)  /* an agent client's unread output beyond this: its records counted lost */
enum { T_BIND = 1, T_NAME, T_RELOC, T_FORK, T_EXEC, T_EXIT };

struct rec {
	uint32_t type, tid, sess, pad;
	uint64_t ts, pid, gen, a, b, c, d, e;
	char s1[STRLEN];
	char s2[STRLEN];
};
struct args_rec {
	uint32_t type, tid, sess, pad;
	uint64_t ts, pid, len, arglen, envlen;
	char data[ARGS_MAX + ENV_MAX];
};
struct cwd_rec {
	uint32_t type, tid, sess, pad;
	uint64_t ts, pid, n;
	char names[CWD_DEPTH][STRLEN];
};
struct tstate { uint64_t gen; uint32_t sess, uid, gid, pad; };

/* The files already sent, by (device, inode): each is sent open once, then named only. */
#define KEPT_SLOTS 8192
/* Messages for gotrace not sent yet: its socket takes ~10 at a time (net.unix.max_dgram_qlen), and
   its reader may wait for the CPU, so they queue, each with its open file, and go out as the socket
   has room (flush_kept, after every read of the ring buffer and when the socket is writable). */
#define KEEP_QUEUE 4096
struct kept_msg { int fd; int len; char msg[STRLEN + 64]; };

/* One client's capture: where its records, its end and its kept files go, and who it is. */
struct session {
	uint32_t id;
	int out, err, keep_fd, ctl;  /* ctl: the agent client's connection; -1 for the one command */
	uid_t uid;                   /* 0: root's session (no credentials to take on) */
	gid_t gid;
	gid_t *groups;               /* the client's supplementary groups (SO_PEERGROUPS) */
	int ngroups;
	char *buf;                   /* output not written yet: buf[off .. len) */
	size_t off, len, cap;
	int gone;                    /* the client stopped reading: its output is dropped */
	unsigned long long dropped;  /* records not written (OUT_CAP) */
	struct { uint64_t dev, ino; } *kept;
	struct kept_msg *keepq;      /* keepq[keep_head .. keep_tail) waits, modulo KEEP_QUEUE */
	unsigned keep_head, keep_tail;
	unsigned long long keep_dropped;
};

static struct session *sessions[MAX_SESSIONS];
static int agent_mode;
static int traced_fd = -1, lost_fd = -1;
static gid_t root_groups[256];
static int root_ngroups;

static struct session *find_session(uint32_t id)
{
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i] && sessions[i]->id == id)
			return sessions[i];
	return NULL;
}

static int count_sessions(void)
{
	int n = 0;
	for (int i = 0; i < MAX_SESSIONS; i++)
		n += sessions[i] != NULL;
	return n;
}

/* ---- output: appended to the session's buffer, written out by flush_out ---- */

static void out_bytes(struct session *s, const char *p, size_t n)
{
	if (s->gone)
		return;
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 1 << 16;
		while (cap < s->len + n)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (!b) {
			s->gone = 1;  /* out of memory: this session's output ends here (its records counted lost) */
			return;
		}
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void out_fmt(struct session *s, const char *fmt, ...)
{
	char line[2 * STRLEN + 256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_bytes(s, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Writes what waits; with wait_ms, waits that long at most for the client to read (the end). */
static void flush_out(struct session *s, int wait_ms)
{
	long long deadline = now_ms() + wait_ms;
	while (s->off < s->len && !s->gone) {
		ssize_t n = write(s->out, s->buf + s->off, s->len - s->off);
		if (n > 0) {
			s->off += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			long long left = deadline - now_ms();
			struct pollfd w = {s->out, POLLOUT, 0};
			if (left > 0 && poll(&w, 1, (int)left) > 0)
				continue;
			break;  /* later */
		}
		s->gone = 1;  /* the reader is gone */
	}
	if (s->off == s->len || s->gone)
		s->off = s->len = 0;
	else if (s->off > (1u << 20)) {
		memmove(s->buf, s->buf + s->off, s->len - s->off);
		s->len -= s->off;
		s->off = 0;
	}
}

/* ---- the user's credentials, for opening files on a session's behalf ---- */

static void as_user(struct session *s)
{
	if (!s->uid)
		return;
	setgroups(s->ngroups, s->groups);
	setfsgid(s->gid);
	setfsuid(s->uid);
}

static void as_root(struct session *s)
{
	if (!s->uid)
		return;
	setfsuid(0);
	setfsgid(0);
	setgroups(root_ngroups, root_groups);
}

/* ---- kept files ---- */

static int kept_before(struct session *s, uint64_t dev, uint64_t ino)
{
	uint64_t h = (dev * 0x9E3779B97F4A7C15ull ^ ino) % KEPT_SLOTS;
	for (int i = 0; i < KEPT_SLOTS; i++, h = (h + 1) % KEPT_SLOTS) {
		if (s->kept[h].ino == ino && s->kept[h].dev == dev)
			return 1;
		if (s->kept[h].ino == 0 && s->kept[h].dev == 0) {
			s->kept[h].dev = dev;
			s->kept[h].ino = ino;
			return 0;
		}
	}
	return 1;  /* full: named only, gotrace finds it by path */
}

/* Sends what waits; with wait_ms, waits that long at most, in all, for room (the end of the run). */
static int flush_kept(struct session *s, int wait_ms)
{
	long long deadline = now_ms() + wait_ms;
	while (s->keep_head != s->keep_tail) {
		struct kept_msg *k = &s->keepq[s->keep_head % KEEP_QUEUE];
		struct iovec iov = {k->msg, (size_t)k->len};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
		if (k->fd >= 0) {
			mh.msg_control = u.buf;
			mh.msg_controllen = sizeof(u.buf);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &k->fd, sizeof(int));
		}
		if (sendmsg(s->keep_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			long long left = deadline - now_ms();
			if (errno == EAGAIN && left > 0) {  /* at the end: give gotrace's reader its time */
				struct pollfd w = {s->keep_fd, POLLOUT, 0};
				if (poll(&w, 1, (int)left) > 0)
					continue;
			}
			if (errno == EAGAIN || errno == EINTR)
				return 1;  /* the socket is full: later */
			s->keep_dropped++;  /* gotrace is gone: nothing more to send */
		}
		if (k->fd >= 0)
			close(k->fd);
		s->keep_head++;
	}
	return 0;
}

/* What pid runs (its exe) or mapped under name (an object's l_name), kept the moment the record is
   read: "E|N<TAB>pid<TAB>name<TAB>dev:ino" (E: an exec's filename, N: an l_name; an N only for a
   file not sent before), with the open file attached the first time that file is seen —
   the very file, readable even once deleted (`go test` deletes its test binaries as soon as they
   ran). Opened with the session's user's credentials. Never blocks: the message waits in keepq
   until the socket has room. */
static void keep(struct session *s, unsigned long long pid, const char *name, int exe)
{
	char path[STRLEN + 64], absname[2 * STRLEN + 64];
	if (s->keep_fd < 0 || !s->keepq)
		return;
	as_user(s);
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
	as_root(s);
	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || s->keep_tail - s->keep_head >= KEEP_QUEUE) {
		s->keep_dropped++;
		close(fd);
		return;
	}
	int known = kept_before(s, st.st_dev, st.st_ino);
	if (known && !exe) {  /* a library sent before: gotrace finds this process's mapping of it */
		close(fd);
		return;
	}
	if (known) {  /* the program is named only: gotrace has its file */
		close(fd);
		fd = -1;
	}
	struct kept_msg *k = &s->keepq[s->keep_tail % KEEP_QUEUE];
	int len = snprintf(k->msg, sizeof(k->msg), "%c\t%llu\t%s\t%llu:%llu", exe ? 'E' : 'N', pid, name,
	                   (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	k->len = len < (int)sizeof(k->msg) ? len : (int)sizeof(k->msg) - 1;
	k->fd = fd;
	s->keep_tail++;
	flush_kept(s, 0);
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
static void put_escaped(struct session *s, const char *p, size_t n)
{
	size_t from = 0;
	for (size_t i = 0; i < n && p[i]; i++) {
		if (p[i] == '\n' || p[i] == '\\') {
			out_bytes(s, p + from, i - from);
			out_bytes(s, p[i] == '\n' ? "\\n" : "\\\\", 2);
			from = i + 1;
		}
	}
	size_t end = strnlen(p, n);
	out_bytes(s, p + from, end > from ? end - from : 0);
}

/* the dynamic linker reads these: glibc's ld.so every LD_* name and GLIBC_TUNABLES, dyld DYLD_* */
static int loader_variable(const char *e, size_t n)
{
	return (n >= 3 && !memcmp(e, "LD_", 3)) || (n >= 5 && !memcmp(e, "DYLD_", 5)) ||
	       (n >= 15 && !memcmp(e, "GLIBC_TUNABLES=", 15));
}

static void print_env(struct session *s, const struct args_rec *a, size_t size)
{
	unsigned long long pid = a->pid;
	size_t at = offsetof(struct args_rec, data) + a->len;
	size_t have = size > at ? size - at : 0;
	if (a->envlen > ENV_MAX || a->envlen > have) {
		out_fmt(s, "V\t%llu\t-1\t0\t\n", pid);
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
				out_fmt(s, "V\t%llu\t%zu\t%zu\t", pid, index, k);
				put_escaped(s, piece, n);
				out_bytes(s, "\n", 1);
				if (n < PIECE)  /* the last piece is short (empty when the rest filled whole pieces) */
					break;
			}
		}
		i = j + 1;
	}
}

static void print_cwd(struct session *s, const struct cwd_rec *c)
{
	if (c->n > CWD_DEPTH)
		return;  /* the walk did not reach the root */
	out_fmt(s, "C\t%llu\t%llu\t", (unsigned long long)c->ts, (unsigned long long)c->pid);
	int named = 0;
	for (uint64_t k = c->n; k > 0; k--) {
		char name[STRLEN];
		memcpy(name, c->names[k - 1], STRLEN);
		name[STRLEN - 1] = 0;
		if (!name[0])
			continue;  /* a mount crossed */
		clean(name, STRLEN);
		out_fmt(s, "/%s", name);
		named = 1;
	}
	out_bytes(s, named ? "\n" : "/\n", named ? 1 : 2);
}

static int handle(void *ctx, void *data, size_t size)
{
	(void)ctx;
	struct rec *r = data;
	if (size < offsetof(struct rec, ts))
		return 0;
	struct session *s = find_session(r->sess);
	if (!s)
		return 0;  /* a session that ended: its last processes' records are nobody's */
	if (s->gone || s->len - s->off > OUT_CAP) {
		s->dropped++;
		return 0;
	}
	if (r->type == T_EXEC + 101) {
		if (size >= sizeof(struct cwd_rec))
			print_cwd(s, data);
		return 0;
	}
	if (r->type == T_EXEC + 100) {
		struct args_rec *a = data;
		if (size < offsetof(struct args_rec, data) || a->len > ARGS_MAX || size < offsetof(struct args_rec, data) + a->len)
			return 0;
		out_fmt(s, "S\t%llu\t%llu\n", (unsigned long long)a->ts, (unsigned long long)a->pid);
		/* whole arguments only: one the area's end cut short is left out with those after it */
		size_t len = a->len, i = 0;
		for (int n = 0; i < len && n < 4096; n++) {
			size_t j = i;
			while (j < len && a->data[j])
				j++;
			if (j == len && a->arglen > a->len)
				break;
			out_fmt(s, "A\t%llu\t%d\t", (unsigned long long)a->pid, n);
			put_escaped(s, a->data + i, j - i);
			out_bytes(s, "\n", 1);
			i = j + 1;
		}
		print_env(s, a, size);
		return 0;
	}
	if (size < sizeof(*r))
		return 0;
	switch (r->type) {
	case T_BIND:
		clean(r->s1, STRLEN);
		clean(r->s2, STRLEN);
		out_fmt(s, "@b[%u, %llu]: (%llu, %llu, %llu, %llu, %llu, %llu, %llu, %s, %s)\n", r->tid,
		        (unsigned long long)r->ts, (unsigned long long)r->pid, (unsigned long long)r->gen,
		        (unsigned long long)r->a, (unsigned long long)r->b, (unsigned long long)r->c,
		        (unsigned long long)r->d, (unsigned long long)r->e, r->s1, r->s2);
		break;
	case T_NAME:
		clean(r->s1, STRLEN);
		if (r->s1[0])  /* "": the main program, kept at its exec */
			keep(s, (unsigned long long)r->pid, r->s1, 0);
		out_fmt(s, "N\t%llu\t%llu\t%llu\t%llu\t%s\n", (unsigned long long)r->pid, (unsigned long long)r->gen,
		        (unsigned long long)r->a, (unsigned long long)r->b, r->s1);
		break;
	case T_RELOC:
		out_fmt(s, "R\t%llu\t%llu\t%llu\t%llu\t%llu\n", (unsigned long long)r->ts, (unsigned long long)r->pid,
		        (unsigned long long)r->gen, (unsigned long long)r->a, (unsigned long long)r->b);
		break;
	case T_FORK:
		out_fmt(s, "F\t%llu\t%llu\t%llu\t%llu\n", (unsigned long long)r->ts, (unsigned long long)r->pid,
		        (unsigned long long)r->a, (unsigned long long)r->gen);
		break;
	case T_EXEC:
		clean(r->s1, STRLEN);
		keep(s, (unsigned long long)r->pid, r->s1, 1);
		out_fmt(s, "E\t%llu\t%llu\t%s\n", (unsigned long long)r->ts, (unsigned long long)r->pid, r->s1);
		break;
	case T_EXIT:
		out_fmt(s, "X\t%llu\t%llu\t%d\n", (unsigned long long)r->ts, (unsigned long long)r->pid, (int)r->a);
		break;
	}
	return 0;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

/* ---- sessions ---- */

static struct session *new_session(uint32_t id, int out, int err, int keep_fd, int ctl)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = id;
	s->out = out;
	s->err = err;
	s->keep_fd = keep_fd;
	s->ctl = ctl;
	if (keep_fd >= 0) {
		s->kept = calloc(KEPT_SLOTS, sizeof(*s->kept));
		s->keepq = calloc(KEEP_QUEUE, sizeof(*s->keepq));
		if (!s->kept || !s->keepq) {
			free(s->kept);
			free(s->keepq);
			s->kept = NULL;
			s->keepq = NULL;
		}
	}
	return s;
}

static void reset_lost(uint32_t id)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *zeros = calloc(ncpu > 0 ? ncpu : 1, sizeof(uint64_t));
	uint32_t slot = id % SESS_SLOTS;
	if (zeros)
		bpf_map_update_elem(lost_fd, &slot, zeros, BPF_ANY);
	free(zeros);
}

static uint64_t read_lost(uint32_t id)
{
	uint64_t lost = 0;
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *per = calloc(ncpu > 0 ? ncpu : 1, sizeof(uint64_t));
	uint32_t slot = id % SESS_SLOTS;
	if (per && bpf_map_lookup_elem(lost_fd, &slot, per) == 0)
		for (int i = 0; i < ncpu; i++)
			lost += per[i];
	free(per);
	return lost;
}

/* every pid the session follows, forgotten (its daemons run on untraced) */
static void forget_pids(uint32_t id)
{
	uint32_t key, next, *prev = NULL;
	uint32_t doomed[4096];
	int n;
	do {
		n = 0;
		prev = NULL;
		while (n < 4096 && bpf_map_get_next_key(traced_fd, prev, &next) == 0) {
			struct tstate t;
			if (bpf_map_lookup_elem(traced_fd, &next, &t) == 0 && t.sess == id)
				doomed[n++] = next;
			key = next;
			prev = &key;
		}
		for (int i = 0; i < n; i++)
			bpf_map_delete_elem(traced_fd, &doomed[i]);
	} while (n == 4096);
}

/* The session's end, as one command's: the records drained to it, its files sent, LOST and END. */
static void end_session(struct session *s, struct ring_buffer *rb)
{
	ring_buffer__consume(rb);
	if (agent_mode)
		forget_pids(s->id);
	uint64_t lost = read_lost(s->id) + s->dropped;
	if (s->keep_fd >= 0 && s->keepq) {  /* every file named, before the records' end */
		flush_kept(s, 5000);
	}
	if (s->keep_fd >= 0)
		close(s->keep_fd);
	/* the output's end is the records' end: the reader need not wait ~0.5 s for the uprobes to detach */
	flush_out(s, agent_mode ? 10000 : 1 << 30);
	close(s->out);
	char tail[64];
	int n = snprintf(tail, sizeof(tail), "LOST\t%llu\nEND\n", (unsigned long long)lost);
	ssize_t written = write(s->err, tail, n);  /* a client gone: nobody to tell */
	(void)written;
	if (agent_mode) {
		close(s->err);
		if (s->ctl >= 0)
			close(s->ctl);
		reset_lost(s->id);
	}
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i] == s)
			sessions[i] = NULL;
	if (s->keepq)
		for (unsigned i = s->keep_head; i != s->keep_tail; i++)
			if (s->keepq[i % KEEP_QUEUE].fd >= 0)
				close(s->keepq[i % KEEP_QUEUE].fd);
	free(s->buf);
	free(s->kept);
	free(s->keepq);
	free(s->groups);
	free(s);
}

/* ---- the agent's clients ---- */

static const char *agent_socket, *ldso_path, *obj_path;
static uint32_t next_id = 2;  /* 1: the one command's */
static unsigned long long served;
static long long started_ms;

static void reply(int fd, const char *msg)
{
	send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* /proc/PID/status's PPid, and its four uids and gids; 0 on success */
static int proc_ids(int pid, long *ppid, long uids[4], long gids[4])
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int got = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "PPid: %ld", ppid) == 1)
			got |= 1;
		else if (sscanf(line, "Uid: %ld %ld %ld %ld", &uids[0], &uids[1], &uids[2], &uids[3]) == 4)
			got |= 2;
		else if (sscanf(line, "Gid: %ld %ld %ld %ld", &gids[0], &gids[1], &gids[2], &gids[3]) == 4)
			got |= 4;
	}
	fclose(f);
	return got == 7 ? 0 : -1;
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* "TRACE\t<pid>" with the three descriptors: checked, seeded, READY on its output. */
static void start_session(int ctl, const char *arg, int *fds, int nfds)
{
	struct ucred who;
	socklen_t len = sizeof(who);
	char why[256];
	long ppid = -1, uids[4], gids[4];
	int pid = atoi(arg);
	if (getsockopt(ctl, SOL_SOCKET, SO_PEERCRED, &who, &len) != 0) {
		reply(ctl, "ERR\tcannot tell who is asking (SO_PEERCRED)");
		goto refuse;
	}
	if (nfds != 3) {
		reply(ctl, "ERR\tTRACE needs three descriptors: records, end, kept files");
		goto refuse;
	}
	if (pid <= 0 || proc_ids(pid, &ppid, uids, gids) != 0) {
		snprintf(why, sizeof(why), "ERR\tno process %d", pid);
		reply(ctl, why);
		goto refuse;
	}
	if (who.uid != 0) {  /* a user traces only a child of their own, started by them, not set-id */
		for (int i = 0; i < 4; i++) {
			if (uids[i] != (long)who.uid || gids[i] != (long)who.gid) {
				snprintf(why, sizeof(why), "ERR\tprocess %d does not run as uid %u gid %u: not yours to trace",
				         pid, who.uid, who.gid);
				reply(ctl, why);
				goto refuse;
			}
		}
		if (ppid != who.pid) {
			snprintf(why, sizeof(why), "ERR\tprocess %d is not a child of the asking process %d: "
			         "the agent traces only commands their own gotrace started", pid, who.pid);
			reply(ctl, why);
			goto refuse;
		}
	}
	int slot = -1;
	for (int i = 0; i < MAX_SESSIONS && slot < 0; i++)
		if (!sessions[i])
			slot = i;
	if (slot < 0) {
		reply(ctl, "ERR\tthe agent serves 64 sessions at once, all taken: try again when one ends");
		goto refuse;
	}
	uint32_t id = 0;
	for (int busy = 1; busy;) {  /* an id whose lost-record slot no running session uses */
		id = next_id++;
		if (next_id > 1u << 30)
			next_id = 2;
		busy = 0;
		for (int i = 0; i < MAX_SESSIONS; i++)
			busy |= sessions[i] && sessions[i]->id % SESS_SLOTS == id % SESS_SLOTS;
	}
	struct tstate t = {PENDING, id, who.uid, who.gid, 0};
	reset_lost(id);
	if (bpf_map_update_elem(traced_fd, &pid, &t, BPF_NOEXIST) != 0) {
		snprintf(why, sizeof(why), "ERR\tprocess %d is already traced", pid);
		reply(ctl, why);
		goto refuse;
	}
	struct session *s = new_session(id, fds[0], fds[1], fds[2], ctl);
	if (!s) {
		bpf_map_delete_elem(traced_fd, &pid);
		reply(ctl, "ERR\tthe agent is out of memory");
		goto refuse;
	}
	s->uid = who.uid;
	s->gid = who.gid;
	if (who.uid) {  /* the files it keeps are opened as this user, with their groups */
		gid_t groups[256];
		socklen_t glen = sizeof(groups);
		if (getsockopt(ctl, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
			s->ngroups = glen / sizeof(gid_t);
			s->groups = malloc(glen ? glen : 1);
			if (s->groups)
				memcpy(s->groups, groups, glen);
			else
				s->ngroups = 0;
		}
	}
	fcntl(s->out, F_SETFL, fcntl(s->out, F_GETFL) | O_NONBLOCK);
	fcntl(s->err, F_SETFL, fcntl(s->err, F_GETFL) | O_NONBLOCK);
	sessions[slot] = s;
	served++;
	out_fmt(s, "READY\t%d\t7\n", pid);
	flush_out(s, 0);
	snprintf(why, sizeof(why), "OK\t%u", id);
	reply(ctl, why);
	return;
refuse:
	close_fds(fds, nfds);
	close(ctl);
}

/* One message on a client's connection; 1 when the connection is done with (closed or a session's). */
static int serve(int ctl, struct ring_buffer *rb)
{
	char msg[256];
	union { char buf[CMSG_SPACE(3 * sizeof(int))]; struct cmsghdr align; } u;
	struct iovec iov = {msg, sizeof(msg) - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	ssize_t n = recvmsg(ctl, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	int fds[3], nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (nfds < 3)
					fds[nfds++] = fd;
				else
					close(fd);
			}
	struct session *s = NULL;
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i] && sessions[i]->ctl == ctl)
			s = sessions[i];
	if (n <= 0 || (s && !strncmp(msg, "END", 3))) {  /* closed (the client is done or gone), or END */
		close_fds(fds, nfds);
		if (s)
			end_session(s, rb);
		else
			close(ctl);
		return 1;
	}
	msg[n] = 0;
	if (s) {  /* a session's connection carries END only */
		close_fds(fds, nfds);
		return 0;
	}
	if (!strncmp(msg, "TRACE\t", 6)) {
		start_session(ctl, msg + 6, fds, nfds);
		return 1;  /* a session's now (polled as one), or closed */
	}
	close_fds(fds, nfds);
	struct ucred who;
	socklen_t len = sizeof(who);
	if (getsockopt(ctl, SOL_SOCKET, SO_PEERCRED, &who, &len) != 0)
		who.uid = 65534;
	if (!strcmp(msg, "STATUS")) {
		struct stat st;
		char line[1024];
		if (stat(ldso_path, &st) != 0)
			st.st_dev = st.st_ino = 0;
		snprintf(line, sizeof(line), "OK\tpid=%d\tsessions=%d\tserved=%llu\tup_ms=%lld\tldso=%s\tldso_id=%llu:%llu"
		         "\tprogram=%s\tsocket=%s", (int)getpid(), count_sessions(), served, now_ms() - started_ms,
		         ldso_path, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, obj_path, agent_socket);
		reply(ctl, line);
	} else if (!strcmp(msg, "STOP")) {
		if (who.uid == 0) {
			reply(ctl, "OK\tstopping");
			stop = 1;
		} else {
			reply(ctl, "ERR\tonly root may stop the agent");
		}
	} else {
		reply(ctl, "ERR\tunknown request (TRACE, END, STATUS or STOP)");
	}
	close(ctl);
	return 1;
}

static int listen_on(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "bindload: the socket path is too long: %s\n", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(path);  /* a socket left by an agent that died; `gotrace agent start` checked none answers */
	mode_t old = umask(0);
	int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && chmod(path, 0666) == 0 && listen(fd, 64) == 0;
	umask(old);
	if (!ok) {
		fprintf(stderr, "bindload: cannot listen on %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "--agent")) {
		agent_mode = 1;
		agent_socket = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 14) {
		fprintf(stderr, "usage: bindload [--agent SOCKET] OBJ LDSO ROOT_PID LOOKUP FIXUP_LO FIXUP_HI PFIXUP_LO "
		                "PFIXUP_HI TEXT_LO TEXT_HI LOOKUP_OFF RELOC_OFF SIGNAL_OFF\n");
		return 2;
	}
	libbpf_set_print(libbpf_quiet);
	obj_path = argv[1];
	ldso_path = argv[2];
	uint64_t cfg[7];
	/* config: LOOKUP FIXUP_LO FIXUP_HI PFIXUP_LO PFIXUP_HI TEXT_LO TEXT_HI */
	for (int i = 0; i < 7; i++)
		cfg[i] = strtoull(argv[4 + i], NULL, 10);
	int root = atoi(argv[3]);
	size_t lookup_off = strtoull(argv[11], NULL, 10), reloc_off = strtoull(argv[12], NULL, 10),
	       signal_off = strtoull(argv[13], NULL, 10);
	if (!agent_mode && root <= 0) {
		fprintf(stderr, "bindload: ROOT_PID must name the command's gated child\n");
		return 2;
	}
	root_ngroups = getgroups(256, root_groups);
	if (root_ngroups < 0)
		root_ngroups = 0;
	started_ms = now_ms();

	struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
	if (!obj) {
		fprintf(stderr, "bindload: cannot open %s: %s\n", obj_path, strerror(errno));
		return 1;
	}
	const char *rb_bytes = getenv("GOTRACE_BPF_RINGBUF_BYTES");  /* tests shrink it to overflow it */
	const char *keep_env = getenv("GOTRACE_KEEP_FD");
	if (rb_bytes && *rb_bytes)
		bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "events"), strtoul(rb_bytes, NULL, 10));
	int ncpus = libbpf_num_possible_cpus();  /* an exec's scratch space: one per CPU */
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "scratch"), ncpus > 0 ? ncpus : 1);
	if (allocates_on_demand()) {
		const char *hashes[] = {"traced", "reloc"};
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
	for (uint32_t k = 0; k < 7; k++)
		bpf_map_update_elem(cfd, &k, &cfg[k], BPF_ANY);
	traced_fd = bpf_object__find_map_fd_by_name(obj, "traced");
	lost_fd = bpf_object__find_map_fd_by_name(obj, "lost");

	struct { const char *prog; int ret; size_t off; } up[] = {
		{"on_lookup", 0, lookup_off}, {"on_lookup_ret", 1, lookup_off},
		{"on_relocate", 0, reloc_off}, {"on_relocate_ret", 1, reloc_off}, {"on_signal", 0, signal_off},
	};
	struct bpf_link *links[16];
	int nlinks = 0;
	for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(obj, up[i].prog);
		struct bpf_link *l = p ? bpf_program__attach_uprobe(p, up[i].ret, -1, ldso_path, up[i].off) : NULL;
		if (!l) {
			fprintf(stderr, "bindload: cannot attach %s to %s+%zu: %s\n", up[i].prog, ldso_path, up[i].off,
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
	signal(SIGPIPE, SIG_IGN);
	int listen_fd = -1;
	if (agent_mode) {
		signal(SIGHUP, SIG_IGN);
		listen_fd = listen_on(agent_socket);
		if (listen_fd < 0)
			return 1;
		printf("READY\t0\t7\n");  /* to whoever started the agent: it serves from now */
		fflush(stdout);
	} else {
		int keep_fd = keep_env && *keep_env ? atoi(keep_env) : -1;
		struct session *one = new_session(1, 1, 2, keep_fd, -1);
		struct tstate t = {PENDING, 1, 0, 0, 0};
		if (!one || bpf_map_update_elem(traced_fd, &root, &t, BPF_ANY) != 0) {
			fprintf(stderr, "bindload: cannot follow process %d: %s\n", root, strerror(errno));
			return 1;
		}
		sessions[0] = one;
		out_fmt(one, "READY\t%d\t7\n", root);  /* 7: numbers per binding record */
		flush_out(one, 1 << 30);
	}
	/* wait on the ring buffer and the clients together: records as they come, an end at once */
	/* connections accepted whose first message has not come yet (a session's, a status request) */
	int waiting[MAX_SESSIONS];
	long long waiting_since[MAX_SESSIONS];
	for (int i = 0; i < MAX_SESSIONS; i++)
		waiting[i] = -1;
	struct pollfd fds[2 + 4 * MAX_SESSIONS];
	struct session *owner[2 + 4 * MAX_SESSIONS];
	while (!stop) {
		int nfds = 0;
		fds[nfds++] = (struct pollfd){ring_buffer__epoll_fd(rb), POLLIN, 0};
		fds[nfds++] = (struct pollfd){agent_mode ? listen_fd : 0, agent_mode ? POLLIN : POLLIN | POLLHUP, 0};
		int first_waiting = nfds;
		for (int i = 0; i < MAX_SESSIONS; i++) {
			if (waiting[i] >= 0 && now_ms() - waiting_since[i] > 10000) {  /* silent for 10 s: dropped */
				close(waiting[i]);
				waiting[i] = -1;
			}
			owner[nfds] = NULL;
			fds[nfds++] = (struct pollfd){waiting[i], POLLIN, 0};  /* fd -1: poll skips it */
		}
		for (int i = 0; i < MAX_SESSIONS; i++) {
			struct session *s = sessions[i];
			if (!s)
				continue;
			if (s->ctl >= 0) {
				owner[nfds] = s;
				fds[nfds++] = (struct pollfd){s->ctl, POLLIN, 0};
			}
			if (agent_mode && s->off < s->len && !s->gone) {  /* wake when the client can take what waits */
				owner[nfds] = s;
				fds[nfds++] = (struct pollfd){s->out, POLLOUT, 0};
			}
			if (s->keep_fd >= 0 && s->keep_head != s->keep_tail) {
				owner[nfds] = s;
				fds[nfds++] = (struct pollfd){s->keep_fd, POLLOUT, 0};
			}
		}
		int n = poll(fds, nfds, 100);  /* records come without wake-ups: read them every 100 ms */
		if (n < 0 && errno != EINTR)
			break;
		if (ring_buffer__consume(rb) < 0)
			break;
		for (int i = 0; i < MAX_SESSIONS; i++) {
			struct session *s = sessions[i];
			if (!s)
				continue;
			flush_out(s, 0);
			if (s->keep_fd >= 0 && s->keepq)
				flush_kept(s, 0);
		}
		if (!agent_mode) {
			if (fds[1].revents) {  /* stdin closed (or spoke): the command is done */
				char buf[64];
				if (read(0, buf, sizeof(buf)) <= 0)
					break;
			}
			continue;
		}
		for (int i = 0; i < MAX_SESSIONS; i++) {  /* a first message: a session starts, a status is asked */
			struct pollfd *f = &fds[first_waiting + i];
			if (f->fd >= 0 && f->revents && waiting[i] == f->fd && serve(f->fd, rb))
				waiting[i] = -1;
		}
		for (int i = first_waiting + MAX_SESSIONS; i < nfds; i++) {  /* a session's END or hang-up */
			struct session *s = owner[i];
			int alive = 0;
			for (int k = 0; k < MAX_SESSIONS; k++)
				alive |= sessions[k] == s;
			if (alive && fds[i].revents && fds[i].fd == s->ctl)
				serve(s->ctl, rb);
		}
		if (fds[1].revents & POLLIN) {
			int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			int slot = -1;
			for (int i = 0; i < MAX_SESSIONS && slot < 0; i++)
				if (waiting[i] < 0)
					slot = i;
			if (c >= 0 && slot < 0) {
				reply(c, "ERR\tthe agent is busy: try again");
				close(c);
			} else if (c >= 0) {
				waiting[slot] = c;
				waiting_since[slot] = now_ms();
			}
		}
	}
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i])
			end_session(sessions[i], rb);
	if (agent_mode) {
		close(listen_fd);
		unlink(agent_socket);
	} else {
		fclose(stdout);
	}
	fflush(stderr);
	for (int i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
