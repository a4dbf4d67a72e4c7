/* bindsnoop.bpf.c — gotrace's own BPF program: what dscripts/bindsnoop.bt records, compiled ahead
 * of time (clang -target bpf), loaded by bindload.c with libbpf, streamed through a ring buffer.
 *
 * Records (struct rec, tagged by type): a binding per _dl_lookup_symbol_x call (requester and
 * provider link_maps, latency, kind from the caller's return address, the time the thread spent
 * switched out during the lookup, version and symbol), N (a
 * link_map's name and load bias, once per image), R (_dl_relocate_object's duration), F/E/X
 * (fork, exec with the filename, exit with the status) of the traced tree only: a pid map seeded
 * with the command's pid and grown on fork. An exec sends first what its new image holds — the argv
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
enum { C_LOOKUP, C_FIXUP_LO, C_FIXUP_HI, C_PFIXUP_LO, C_PFIXUP_HI, C_TEXT_LO, C_TEXT_HI, C_ROOT, C_N };

struct mm_struct { unsigned long arg_start, arg_end, env_start, env_end; } __attribute__((preserve_access_index));
struct qstr { const unsigned char *name; } __attribute__((preserve_access_index));
struct dentry { struct dentry *d_parent; struct qstr d_name; } __attribute__((preserve_access_index));
struct vfsmount { struct dentry *mnt_root; } __attribute__((preserve_access_index));
struct mount { struct mount *mnt_parent; struct dentry *mnt_mountpoint; struct vfsmount mnt; }
	__attribute__((preserve_access_index));
struct path { struct vfsmount *mnt; struct dentry *dentry; } __attribute__((preserve_access_index));
struct fs_struct { struct path pwd; } __attribute__((preserve_access_index));
struct task_struct {
	int pid, tgid, exit_code;
	struct mm_struct *mm;
	struct fs_struct *fs;
} __attribute__((preserve_access_index));
struct linux_binprm { const char *filename; } __attribute__((preserve_access_index));

struct rec {
	__u32 type, tid;
	__u64 ts, pid, gen, a, b, c, d, e;  /* bind: req, prov, latency, kind, off-CPU; name: map, l_addr; reloc: map, dur */
	char s1[STRLEN];                 /* bind: version; name: l_name; exec: filename */
	char s2[STRLEN];                 /* bind: symbol */
};
struct args_rec {  /* sent at its size: argv's area (len bytes of its arglen), then the environment's */
	__u32 type, tid;
	__u64 ts, pid, len, arglen, envlen;  /* envlen ~0: the environment was not read */
	char data[ARGS_MAX + ENV_MAX];
};
struct cwd_rec {  /* the components of a working directory, innermost first */
	__u32 type, tid;
	__u64 ts, pid, n;
	char names[CWD_DEPTH][STRLEN];
};

/* off0: the thread's time switched out (offcpu's total) when the lookup began */
struct inflight { __u64 start, kind, name, req, ver, gen, off0; };
/* a thread with lookups in flight: when it was switched out (0: it runs), its time switched out so far */
struct offcpu { __u64 off_at, total; };
struct seen_key { __u64 pid, gen, map; };
struct relocating { __u64 start, map; };

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 24); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, C_N); __type(key, __u32); __type(value, __u64); } config SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } lost SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, __u64); } traced SEC(".maps");
/* lookups in flight by (tid << 32 | depth): a lookup can run inside another (an interposed malloc's
   lazy PLT call from ld.so's unique-symbol table), and keyed by tid alone the outer one was lost */
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u64); __type(value, struct inflight); } flight SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, __u64); } depth SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, struct offcpu); } offcpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, struct relocating); } reloc SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 32768); __type(key, struct seen_key); __type(value, __u8); } seen SEC(".maps");
/* an exec's argv and environment are gathered here (too big for the stack, and for a per-CPU map's
   32 KiB), then sent at their size: one entry per CPU, indexed by the CPU (the loader sizes it) */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct args_rec); } scratch SEC(".maps");

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

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);
	if (n)
		*n += 1;
}

/* a record of `type` for `pid`, stamped now; NULL (counted in `lost`) when the buffer is full */
static __always_inline struct rec *new_rec(__u32 type, __u64 pid)
{
	struct rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost();
		return NULL;
	}
	r->type = type;
	r->tid = 0;
	r->ts = bpf_ktime_get_ns();
	r->pid = pid;
	return r;
}

/* gen: the ts of the pid's last exec (0 before it), stored as the traced map's value */
static __always_inline __u64 *gen_of(__u32 pid)
{
	return bpf_map_lookup_elem(&traced, &pid);
}

static __always_inline void announce(__u32 pid, __u64 gen, __u64 map)
{
	struct seen_key k = { pid, gen, map };
	__u8 one = 1;
	if (bpf_map_lookup_elem(&seen, &k))
		return;
	bpf_map_update_elem(&seen, &k, &one, BPF_ANY);
	struct rec *r = new_rec(T_NAME, pid);
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
	__u32 ppid = BPF_CORE_READ(parent, tgid), cpid = BPF_CORE_READ(child, pid);
	__u64 *g = gen_of(ppid);
	if (!g || BPF_CORE_READ(child, tgid) != cpid)  /* threads share the pid's entry */
		return 0;
	__u64 gen = *g, none = 0;
	/* until it execs, the child's records carry gen 0 and its objects are the parent's at gen
	   (the F record says which), as bindsnoop.bt's are */
	bpf_map_update_elem(&traced, &cpid, &none, BPF_ANY);
	struct rec *r = new_rec(T_FORK, ppid);
	if (!r)
		return 0;
	r->a = cpid;
	r->gen = gen;
	bpf_ringbuf_submit(r, wake());
	return 0;
}

/* the working directory's components, innermost first (d_path is not allowed here): slot i holds the
   i-th step up, a name, or "" where the walk crossed from a mount's root to where it is mounted */
static __always_inline void send_cwd(struct task_struct *p, __u32 pid, __u64 now)
{
	struct cwd_rec *c = bpf_ringbuf_reserve(&events, sizeof(*c), 0);
	if (!c) {
		count_lost();
		return;
	}
	c->type = T_EXEC + 101;
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
	__u32 pid = BPF_CORE_READ(p, tgid);
	if (!gen_of(pid) && pid != (__u32)cfg(C_ROOT))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&traced, &pid, &now, BPF_ANY);
	/* what the new image holds comes first, with the exec's time: argv (NUL-separated, split by the
	   loader: no loop to verify) and the environment, whose loader variables the loader keeps */
	__u32 cpu = bpf_get_smp_processor_id();
	struct args_rec *a = bpf_map_lookup_elem(&scratch, &cpu);
	if (a) {
		unsigned long start = BPF_CORE_READ(p, mm, arg_start), end = BPF_CORE_READ(p, mm, arg_end);
		__u64 arglen = end > start ? end - start : 0, len = arglen > ARGS_MAX ? ARGS_MAX : arglen;
		a->type = T_EXEC + 100;
		a->tid = 0;
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
			count_lost();
	}
	const char *filename = BPF_CORE_READ(bprm, filename);
	char first = 0;
	bpf_probe_read_kernel(&first, 1, filename);
	if (first != '/')
		send_cwd(p, pid, now);  /* before E, which a reader resolves against it */
	struct rec *r = new_rec(T_EXEC, pid);
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
	__u32 tid = BPF_CORE_READ(p, pid), pid = BPF_CORE_READ(p, tgid);
	if (tid != pid || !gen_of(pid))  /* the process ends with its leader; other threads are not followed */
		return 0;
	struct rec *r = new_rec(T_EXIT, pid);
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
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *g = gen_of(pid);
	if (!g)
		return 0;
	struct relocating x = { bpf_ktime_get_ns(), PT_REGS_PARM1(ctx) };
	bpf_map_update_elem(&reloc, &tid, &x, BPF_ANY);
	announce(pid, *g, x.map);
	return 0;
}

SEC("uretprobe")
int on_relocate_ret(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (__u32)bpf_get_current_pid_tgid();
	struct relocating *x = bpf_map_lookup_elem(&reloc, &tid);
	__u64 *g = gen_of(pid);
	if (!x || !g)
		return 0;
	struct rec *r = new_rec(T_RELOC, pid);
	if (r) {
		r->gen = *g;
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
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *g = gen_of(pid);
	if (!g)
		return 0;
	/* kind from the caller: the return address at [sp], as a link-time address of ld.so */
	__u64 ret = 0;
	bpf_probe_read_user(&ret, 8, (void *)PT_REGS_SP(ctx));
	__u64 at = ret - PT_REGS_IP(ctx) + cfg(C_LOOKUP);
	__u64 kind = ((at >= cfg(C_FIXUP_LO) && at < cfg(C_FIXUP_HI)) ||
	              (at >= cfg(C_PFIXUP_LO) && at < cfg(C_PFIXUP_HI))) ? 2 :
	             ((at >= cfg(C_TEXT_LO) && at < cfg(C_TEXT_HI)) ? 1 : 3);
	struct inflight f = { bpf_ktime_get_ns(), kind, PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx),
	                      PT_REGS_PARM5(ctx), *g, 0 };
	__u64 *dp = bpf_map_lookup_elem(&depth, &tid), d = dp ? *dp : 0, key = (__u64)tid << 32 | d;
	struct offcpu *o = bpf_map_lookup_elem(&offcpu, &tid);
	if (o) {
		f.off0 = o->total;  /* an outer lookup's: this one's time switched out is what the total gains */
	} else {
		struct offcpu zero = { 0, 0 };
		bpf_map_update_elem(&offcpu, &tid, &zero, BPF_ANY);
	}
	bpf_map_update_elem(&flight, &key, &f, BPF_ANY);
	d += 1;
	bpf_map_update_elem(&depth, &tid, &d, BPF_ANY);
	announce(pid, f.gen, f.req);
	return 0;
}

static __always_inline void emit(struct inflight *f, __u32 pid, __u32 tid, __u64 prov, __u64 lat, __u64 kind)
{
	struct rec *r = new_rec(T_BIND, pid);
	if (!r)
		return;
	r->tid = tid;
	r->gen = f->gen;
	r->a = f->req;
	r->b = prov;
	r->c = lat;
	r->d = kind;
	struct offcpu *o = bpf_map_lookup_elem(&offcpu, &tid);
	r->e = o && o->total > f->off0 ? o->total - f->off0 : 0;
	__u64 vname = 0;
	if (f->ver)
		bpf_probe_read_user(&vname, 8, (void *)f->ver);
	r->s1[0] = 0;
	if (vname)
		bpf_probe_read_user_str(r->s1, STRLEN, (void *)vname);
	bpf_probe_read_user_str(r->s2, STRLEN, (void *)f->name);
	bpf_ringbuf_submit(r, wake());
}

/* the thread's innermost lookup in flight, taken off its depth (its key in *key) */
static __always_inline struct inflight *innermost(__u32 tid, __u64 *key)
{
	__u64 *dp = bpf_map_lookup_elem(&depth, &tid);
	if (!dp || !*dp)
		return NULL;
	__u64 d = *dp - 1;
	if (d)
		*dp = d;
	else
		bpf_map_delete_elem(&depth, &tid);  /* offcpu's entry goes once the record is made (forget) */
	*key = (__u64)tid << 32 | d;
	return bpf_map_lookup_elem(&flight, key);
}

/* the thread's off-CPU account ends with its outermost lookup */
static __always_inline void forget(__u32 tid)
{
	if (!bpf_map_lookup_elem(&depth, &tid))
		bpf_map_delete_elem(&offcpu, &tid);
}

SEC("uretprobe")
int on_lookup_ret(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (__u32)bpf_get_current_pid_tgid();
	__u64 key;
	struct inflight *f = innermost(tid, &key);
	if (!f)
		return 0;
	emit(f, pid, tid, PT_REGS_RC(ctx), bpf_ktime_get_ns() - f->start, f->kind);
	bpf_map_delete_elem(&flight, &key);
	forget(tid);
	return 0;
}

/* a lookup that fails on a global reference never returns (see bindsnoop.bt): recorded here */
SEC("uprobe")
int on_signal(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (__u32)bpf_get_current_pid_tgid();
	__u64 key;
	struct inflight *f = innermost(tid, &key);
	if (!f)
		return 0;
	emit(f, pid, tid, 0, 0, f->kind + 4);
	bpf_map_delete_elem(&flight, &key);
	forget(tid);
	return 0;
}

/* Time a lookup's thread spends switched out (preempted, blocked on a page fault or a lock) is
   part of its latency but not the resolver's work: it is added up here per thread, so each lookup's
   off-CPU share — what the total gained between its entry and its return, nested lookups' included
   — can be told apart (one 64 ms lookup of a build's 110,000 was the thread waiting). This runs at
   every context switch on the machine: a lookup of the offcpu map by tid for each side (the idle
   task, tid 0, skipped), nothing written unless a lookup is in flight. Measured here
   (kernel.bpf_stats_enabled, 2 shared vCPUs, bench_bind's W2): 200-250 ns a switch, 2-3 ms of a
   2-s run, where the lookup probes took 60-130 ms. */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 out = prev->pid, in = next->pid;
	__u64 now = 0;
	struct offcpu *o = out ? bpf_map_lookup_elem(&offcpu, &out) : NULL;
	if (o) {
		now = bpf_ktime_get_ns();
		o->off_at = now;
	}
	o = in ? bpf_map_lookup_elem(&offcpu, &in) : NULL;
	if (o && o->off_at) {
		if (!now)
			now = bpf_ktime_get_ns();
		o->total += now - o->off_at;
		o->off_at = 0;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
