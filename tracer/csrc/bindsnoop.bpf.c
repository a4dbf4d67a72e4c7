/* bindsnoop.bpf.c — gotrace's own BPF program: what dscripts/bindsnoop.bt records, compiled ahead
 * of time (clang -target bpf), loaded by bindload.c with libbpf, streamed through a ring buffer.
 *
 * Records (struct rec, tagged by type): a binding per _dl_lookup_symbol_x call (requester and
 * provider link_maps, latency, kind from the caller's return address, the time the thread spent
 * switched out during the lookup, version and symbol), N (a
 * link_map's name and load bias, once per image), R (_dl_relocate_object's duration), F/E/X
 * (fork, exec with the filename, exit with the status) of the traced tree only: a pid map seeded
 * with the command's pid and grown on fork. Each traced pid belongs to a session (its record's `sess`):
 * one for a loader started for one command, one per client of gotrace's agent (bindload.c --agent),
 * which seeds each client's command and routes the records by session; a session of a user other
 * than root follows only processes running as that user (an exec that changes the effective uid or
 * gid — a setuid program — or runs in secure mode — file capabilities — ends its following). An exec sends first what its new image holds — the argv
 * and environment areas in one record (the loader keeps the dynamic linker's variables), and the
 * working directory when the path is relative — then E: a reader takes them for that exec. A full
 * ring buffer is counted in `lost`, never silent.
 *
 * Kernel structures are read with CO-RE (the kernel's BTF): the few task_struct/mm_struct fields
 * used are declared here with preserve_access_index, so no vmlinux.h is needed to build.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define STRLEN 128
#define ARGS_MAX 32768  /* argv beyond this is left out (whole arguments: the loader drops a cut one) */
#define ENV_MAX 65536  /* a larger environment is not read (the loader says so: its variables unknown) */
#define CWD_DEPTH 32  /* path components of a working directory, each cut at STRLEN */

enum { T_BIND = 1, T_NAME, T_RELOC, T_FORK, T_EXEC, T_EXIT };
enum { C_LOOKUP, C_FIXUP_LO, C_FIXUP_HI, C_PFIXUP_LO, C_PFIXUP_HI, C_TEXT_LO, C_TEXT_HI, C_N };
#define PENDING (~0ULL)  /* a seeded pid not exec'd yet (a gated child): only its exec is followed */
#define SESS_SLOTS 1024  /* lost records are counted per session slot (the session id modulo this) */

struct mm_struct { unsigned long arg_start, arg_end, env_start, env_end; } __attribute__((preserve_access_index));
struct qstr { const unsigned char *name; } __attribute__((preserve_access_index));
struct dentry { struct dentry *d_parent; struct qstr d_name; } __attribute__((preserve_access_index));
struct vfsmount { struct dentry *mnt_root; } __attribute__((preserve_access_index));
struct mount { struct mount *mnt_parent; struct dentry *mnt_mountpoint; struct vfsmount mnt; }
	__attribute__((preserve_access_index));
struct path { struct vfsmount *mnt; struct dentry *dentry; } __attribute__((preserve_access_index));
struct fs_struct { struct path pwd; } __attribute__((preserve_access_index));
typedef struct { unsigned int val; } gt_kid_t;
struct cred { gt_kid_t euid, egid; } __attribute__((preserve_access_index));
struct task_struct {
	int pid, tgid, exit_code;
	struct mm_struct *mm;
	struct fs_struct *fs;
	const struct cred *cred;
} __attribute__((preserve_access_index));
struct linux_binprm { const char *filename; unsigned int secureexec:1; } __attribute__((preserve_access_index));

struct rec {
	__u32 type, tid, sess, pad;
	__u64 ts, pid, gen, a, b, c, d, e;  /* bind: req, prov, latency, kind, off-CPU; name: map, l_addr; reloc: map, dur */
	char s1[STRLEN];                 /* bind: version; name: l_name; exec: filename */
	char s2[STRLEN];                 /* bind: symbol */
};
struct args_rec {  /* sent at its size: argv's area (len bytes of its arglen), then the environment's */
	__u32 type, tid, sess, pad;
	__u64 ts, pid, len, arglen, envlen;  /* envlen ~0: the environment was not read */
	char data[ARGS_MAX + ENV_MAX];
};
struct cwd_rec {  /* the components of a working directory, innermost first */
	__u32 type, tid, sess, pad;
	__u64 ts, pid, n;
	char names[CWD_DEPTH][STRLEN];
};

/* off0: the thread's time switched out (offcpu's total) when the lookup began */
struct inflight { __u64 start, kind, name, req, ver, gen, off0, sess; };
/* a traced pid: gen is the ts of its last exec (0 before it; PENDING: seeded, not exec'd yet); the
   session it belongs to, and the user (uid 0: any) its processes must run as to be followed */
struct tstate { __u64 gen; __u32 sess, uid, gid, pad; };
/* A thread's lookups in flight, in its task-local storage: one lookup of it per probe, where a hash
   map keyed by tid took five or more per lookup. A lookup can run inside another (an interposed
   malloc's lazy PLT call from ld.so's unique-symbol table): the stack holds MAX_DEPTH of them; one
   deeper is not recorded (counted lost). While a lookup is in flight, the time the thread is switched
   out is added up (off_at: when it was switched out, 0 while it runs). last_*: the requester this
   thread announced last, so a run of lookups from one object asks the `seen` map once. */
#define MAX_DEPTH 4
struct tls {
	__u32 depth, pad;
	__u64 off_at, total, last_map, last_gen;
	struct inflight stack[MAX_DEPTH];
};
struct seen_key { __u64 pid, gen, map; };
struct relocating { __u64 start, map; };

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 24); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, C_N); __type(key, __u32); __type(value, __u64); } config SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, SESS_SLOTS); __type(key, __u32); __type(value, __u64); } lost SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, struct tstate); } traced SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, struct tls); } tls SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, struct relocating); } reloc SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 32768); __type(key, struct seen_key); __type(value, __u8); } seen SEC(".maps");
/* an exec's argv and environment are gathered here (too big for the stack, and for a per-CPU map's
   32 KiB), then sent at their size: one entry per CPU, indexed by the CPU (the loader sizes it) */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct args_rec); } scratch SEC(".maps");

/* the bench's floor (bench/bench_bind.py, bpf-empty): every probe where it is, each program empty */
#ifdef GOTRACE_EMPTY_PROBES
#define EMPTY() return 0
#else
#define EMPTY()
#endif

/* wake the reader only when a good share of the buffer waits (or at an exit): a wake-up per record
   is a context switch per lookup on the traced program's cores */
static __always_inline __u64 wake(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > (1 << 20) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 cfg(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&config, &k);
	return v ? *v : 0;
}

static __always_inline void count_lost(__u32 sess)
{
	__u32 slot = sess % SESS_SLOTS;
	__u64 *n = bpf_map_lookup_elem(&lost, &slot);
	if (n)
		*n += 1;
}

/* a record of `type` for `pid` of session `sess`, stamped now; NULL (counted in `lost`) when the buffer is full */
static __always_inline struct rec *new_rec(__u32 type, __u64 pid, __u32 sess)
{
	struct rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(sess);
		return NULL;
	}
	r->type = type;
	r->tid = 0;
	r->sess = sess;
	r->pad = 0;
	r->ts = bpf_ktime_get_ns();
	r->pid = pid;
	return r;
}

/* the pid's state, NULL when it is not followed (or only seeded: a gated child before its exec) */
static __always_inline struct tstate *state_of(__u32 pid)
{
	struct tstate *t = bpf_map_lookup_elem(&traced, &pid);
	return t && t->gen != PENDING ? t : NULL;
}

static __always_inline void announce(__u32 pid, __u64 gen, __u64 map, __u32 sess)
{
	struct seen_key k = { pid, gen, map };
	__u8 one = 1;
	if (bpf_map_lookup_elem(&seen, &k))
		return;
	bpf_map_update_elem(&seen, &k, &one, BPF_ANY);
	struct rec *r = new_rec(T_NAME, pid, sess);
	if (!r)
		return;
	r->gen = gen;
	r->a = map;
	__u64 laddr = 0, lname = 0;
	bpf_probe_read_user(&laddr, 8, (void *)map);
	bpf_probe_read_user(&lname, 8, (void *)(map + 8));
	r->b = laddr;
	r->s1[0] = 0;
	if (lname)
		bpf_probe_read_user_str(r->s1, STRLEN, (void *)lname);
	bpf_ringbuf_submit(r, wake());
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	EMPTY();
	__u32 ppid = BPF_CORE_READ(parent, tgid), cpid = BPF_CORE_READ(child, pid);
	struct tstate *t = state_of(ppid);
	if (!t || BPF_CORE_READ(child, tgid) != cpid)  /* threads share the pid's entry */
		return 0;
	__u64 gen = t->gen;
	/* until it execs, the child's records carry gen 0 and its objects are the parent's at gen
	   (the F record says which), as bindsnoop.bt's are */
	struct tstate c = { 0, t->sess, t->uid, t->gid, 0 };
	bpf_map_update_elem(&traced, &cpid, &c, BPF_ANY);
	struct rec *r = new_rec(T_FORK, ppid, c.sess);
	if (!r)
		return 0;
	r->a = cpid;
	r->gen = gen;
	bpf_ringbuf_submit(r, wake());
	return 0;
}

/* the working directory's components, innermost first (d_path is not allowed here): slot i holds the
   i-th step up, a name, or "" where the walk crossed from a mount's root to where it is mounted */
static __always_inline void send_cwd(struct task_struct *p, __u32 pid, __u64 now, __u32 sess)
{
	struct cwd_rec *c = bpf_ringbuf_reserve(&events, sizeof(*c), 0);
	if (!c) {
		count_lost(sess);
		return;
	}
	c->type = T_EXEC + 101;
	c->sess = sess;
	c->pid = pid;
	c->ts = now;
	c->n = ~0ULL;  /* the root not reached within CWD_DEPTH steps: the loader prints nothing */
	struct dentry *d = BPF_CORE_READ(p, fs, pwd.dentry);
	struct vfsmount *vm = BPF_CORE_READ(p, fs, pwd.mnt);
	struct mount *m = (void *)vm - bpf_core_field_offset(struct mount, mnt);
	for (int i = 0; i < CWD_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		c->names[i][0] = 0;
		if (d == BPF_CORE_READ(vm, mnt_root) || d == parent) {
			struct mount *up = BPF_CORE_READ(m, mnt_parent);
			if (up == m || !up) {
				c->n = i;
				break;
			}
			d = BPF_CORE_READ(m, mnt_mountpoint);
			m = up;
			vm = (void *)m + bpf_core_field_offset(struct mount, mnt);
			continue;
		}
		if (bpf_probe_read_kernel_str(c->names[i], STRLEN, BPF_CORE_READ(d, d_name.name)) >= STRLEN)
			break;  /* a name cut short: no path rather than a wrong one */
		d = parent;
	}
	bpf_ringbuf_submit(c, wake());
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	EMPTY();
	__u32 pid = BPF_CORE_READ(p, tgid);
	struct tstate *t = bpf_map_lookup_elem(&traced, &pid);
	if (!t)
		return 0;
	/* a setuid or setgid program, or one with file capabilities (secureexec: glibc's secure mode, AT_SECURE),
	   is not the session's user's to see */
	if (t->uid && (BPF_CORE_READ(p, cred, euid.val) != t->uid || BPF_CORE_READ(p, cred, egid.val) != t->gid ||
	               BPF_CORE_READ_BITFIELD_PROBED(bprm, secureexec))) {
		bpf_map_delete_elem(&traced, &pid);
		return 0;
	}
	__u64 now = bpf_ktime_get_ns();
	__u32 sess = t->sess;
	t->gen = now;
	/* what the new image holds comes first, with the exec's time: argv (NUL-separated, split by the
	   loader: no loop to verify) and the environment, whose loader variables the loader keeps */
	__u32 cpu = bpf_get_smp_processor_id();
	struct args_rec *a = bpf_map_lookup_elem(&scratch, &cpu);
	if (a) {
		unsigned long start = BPF_CORE_READ(p, mm, arg_start), end = BPF_CORE_READ(p, mm, arg_end);
		__u64 arglen = end > start ? end - start : 0, len = arglen > ARGS_MAX ? ARGS_MAX : arglen;
		a->type = T_EXEC + 100;
		a->tid = 0;
		a->sess = sess;
		a->ts = now;
		a->pid = pid;
		a->arglen = arglen;
		/* sizes spelled so the verifier sees them bounded, whatever clang keeps in registers */
		len &= ARGS_MAX * 2 - 1;
		if (len > ARGS_MAX || bpf_probe_read_user(a->data, len, (void *)start))
			len = 0;
		a->len = len;
		start = BPF_CORE_READ(p, mm, env_start);
		end = BPF_CORE_READ(p, mm, env_end);
		__u64 envlen = end > start ? end - start : 0;
		__u64 at = len & (ARGS_MAX * 2 - 1);
		if (envlen > ENV_MAX || at > ARGS_MAX ||
		    bpf_probe_read_user(a->data + at, envlen & (ENV_MAX * 2 - 1), (void *)start))
			envlen = ~0ULL;
		a->envlen = envlen;
		__u64 size = sizeof(*a) - sizeof(a->data) + len + (envlen <= ENV_MAX ? envlen : 0);
		if (bpf_ringbuf_output(&events, a, size <= sizeof(*a) ? size : sizeof(*a), wake()))
			count_lost(sess);
	}
	const char *filename = BPF_CORE_READ(bprm, filename);
	char first = 0;
	bpf_probe_read_kernel(&first, 1, filename);
	if (first != '/')
		send_cwd(p, pid, now, sess);  /* before E, which a reader resolves against it */
	struct rec *r = new_rec(T_EXEC, pid, sess);
	if (!r)
		return 0;
	r->ts = now;  /* the generation the pid's records now carry */
	bpf_probe_read_kernel_str(r->s1, STRLEN, filename);
	/* woken at once: the loader keeps the program's file while it is there (`go test` deletes its
	   binaries as soon as they ran; capture/object_keeper.py) */
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	EMPTY();
	__u32 tid = BPF_CORE_READ(p, pid), pid = BPF_CORE_READ(p, tgid);
	struct tstate *t = tid == pid ? bpf_map_lookup_elem(&traced, &pid) : NULL;
	if (!t)  /* the process ends with its leader; other threads are not followed */
		return 0;
	if (t->gen == PENDING) {  /* a gated child that never exec'd: nothing of it was recorded */
		bpf_map_delete_elem(&traced, &pid);
		return 0;
	}
	struct rec *r = new_rec(T_EXIT, pid, t->sess);
	if (r) {
		r->a = (__u64)(__s64)BPF_CORE_READ(p, exit_code);
		bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	}
	bpf_map_delete_elem(&traced, &pid);
	return 0;
}

SEC("uprobe")
int on_relocate(struct pt_regs *ctx)
{
	EMPTY();
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (__u32)bpf_get_current_pid_tgid();
	struct tstate *t = state_of(pid);
	if (!t)
		return 0;
	struct relocating x = { bpf_ktime_get_ns(), PT_REGS_PARM1(ctx) };
	bpf_map_update_elem(&reloc, &tid, &x, BPF_ANY);
	announce(pid, t->gen, x.map, t->sess);
	return 0;
}

SEC("uretprobe")
int on_relocate_ret(struct pt_regs *ctx)
{
	EMPTY();
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (__u32)bpf_get_current_pid_tgid();
	struct relocating *x = bpf_map_lookup_elem(&reloc, &tid);
	struct tstate *t = state_of(pid);
	if (!x || !t)
		return 0;
	struct rec *r = new_rec(T_RELOC, pid, t->sess);
	if (r) {
		r->gen = t->gen;
		r->a = x->map;
		r->b = r->ts - x->start;
		bpf_ringbuf_submit(r, wake());
	}
	bpf_map_delete_elem(&reloc, &tid);
	return 0;
}

SEC("uprobe")
int on_lookup(struct pt_regs *ctx)
{
	EMPTY();
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct tstate *t = state_of(pid);
	if (!t)
		return 0;
	struct tls *s = bpf_task_storage_get(&tls, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s)
		return 0;
	__u32 d = s->depth++;
	if (d >= MAX_DEPTH) {
		count_lost(t->sess);  /* deeper than the stack: its return only pops it */
		return 0;
	}
	/* kind from the caller: the return address at [sp], as a link-time address of ld.so */
	__u64 ret = 0;
	bpf_probe_read_user(&ret, 8, (void *)PT_REGS_SP(ctx));
	__u64 at = ret - PT_REGS_IP(ctx) + cfg(C_LOOKUP);
	__u64 kind = ((at >= cfg(C_FIXUP_LO) && at < cfg(C_FIXUP_HI)) ||
	              (at >= cfg(C_PFIXUP_LO) && at < cfg(C_PFIXUP_HI))) ? 2 :
	             ((at >= cfg(C_TEXT_LO) && at < cfg(C_TEXT_HI)) ? 1 : 3);
	struct inflight *f = &s->stack[d & (MAX_DEPTH - 1)];
	f->kind = kind;
	f->name = PT_REGS_PARM1(ctx);
	f->req = PT_REGS_PARM2(ctx);
	f->ver = PT_REGS_PARM5(ctx);
	f->gen = t->gen;
	f->sess = t->sess;
	f->off0 = s->total;  /* what the total gains until the return is this lookup's time switched out */
	if (f->req != s->last_map || f->gen != s->last_gen) {
		s->last_map = f->req;
		s->last_gen = f->gen;
		announce(pid, f->gen, f->req, t->sess);
	}
	f->start = bpf_ktime_get_ns();
	return 0;
}

/* the thread's innermost lookup in flight, taken off its stack; NULL when none (or one too deep) */
static __always_inline struct inflight *innermost(struct tls **sp)
{
	struct tls *s = bpf_task_storage_get(&tls, bpf_get_current_task_btf(), 0, 0);
	*sp = s;
	if (!s || !s->depth)
		return NULL;
	__u32 d = --s->depth;
	if (d >= MAX_DEPTH)
		return NULL;
	return &s->stack[d & (MAX_DEPTH - 1)];
}

static __always_inline void emit(struct inflight *f, struct tls *s, __u64 prov, __u64 now, __u64 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct rec *r = new_rec(T_BIND, id >> 32, (__u32)f->sess);
	if (!r)
		return;
	r->tid = (__u32)id;
	r->gen = f->gen;
	r->a = f->req;
	r->b = prov;
	r->c = now ? now - f->start : 0;
	r->d = kind;
	r->e = s->total > f->off0 ? s->total - f->off0 : 0;
	__u64 vname = 0;
	if (f->ver)
		bpf_probe_read_user(&vname, 8, (void *)f->ver);
	r->s1[0] = 0;
	if (vname)
		bpf_probe_read_user_str(r->s1, STRLEN, (void *)vname);
	bpf_probe_read_user_str(r->s2, STRLEN, (void *)f->name);
	bpf_ringbuf_submit(r, wake());
}

SEC("uretprobe")
int on_lookup_ret(struct pt_regs *ctx)
{
	EMPTY();
	__u64 now = bpf_ktime_get_ns();
	struct tls *s;
	struct inflight *f = innermost(&s);
	if (!f || !s)
		return 0;
	emit(f, s, PT_REGS_RC(ctx), now, f->kind);
	return 0;
}

/* a lookup that fails on a global reference never returns (see bindsnoop.bt): recorded here */
SEC("uprobe")
int on_signal(struct pt_regs *ctx)
{
	EMPTY();
	struct tls *s;
	struct inflight *f = innermost(&s);
	if (!f || !s)
		return 0;
	emit(f, s, 0, 0, f->kind + 4);
	return 0;
}

/* Time a lookup's thread spends switched out (preempted, blocked on a page fault or a lock) is
   part of its latency but not the resolver's work: it is added up here per thread, so each lookup's
   off-CPU share — what the total gained between its entry and its return, nested lookups' included
   — can be told apart (one 64 ms lookup of a build's 110,000 was the thread waiting). This runs at
   every context switch on the machine: a look at each side's task-local storage (none for a thread
   that never looked a symbol up while traced), nothing written unless a lookup is in flight. */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next)
{
	EMPTY();
	__u64 now = 0;
	struct tls *s = bpf_task_storage_get(&tls, prev, 0, 0);
	if (s && s->depth) {
		now = bpf_ktime_get_ns();
		s->off_at = now;
	}
	s = bpf_task_storage_get(&tls, next, 0, 0);
	if (s && s->depth && s->off_at) {
		if (!now)
			now = bpf_ktime_get_ns();
		s->total += now - s->off_at;
		s->off_at = 0;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
