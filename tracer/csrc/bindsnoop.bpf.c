/* bindsnoop.bpf.c — gotrace's own BPF program: what dscripts/bindsnoop.bt records, compiled ahead
 * of time (clang -target bpf), loaded by bindload.c with libbpf, streamed through a ring buffer.
 *
 * Records (struct rec, tagged by type): a binding per _dl_lookup_symbol_x call (requester and
 * provider link_maps, latency, kind from the caller's return address, the time the thread spent
 * switched out during the lookup, version and symbol), N (a
 * link_map's name and load bias, once per image), R (_dl_relocate_object's duration), F/E/X
 * (fork, exec with the filename and the argv area, exit with the status) of the traced tree only:
 * a pid map seeded with the command's pid and grown on fork. A full ring buffer is counted in
 * `lost`, never silent.
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
#define ARGS_MAX 1024

enum { T_BIND = 1, T_NAME, T_RELOC, T_FORK, T_EXEC, T_EXIT };
enum { C_LOOKUP, C_FIXUP_LO, C_FIXUP_HI, C_PFIXUP_LO, C_PFIXUP_HI, C_TEXT_LO, C_TEXT_HI, C_ROOT, C_N };

struct mm_struct { unsigned long arg_start, arg_end; } __attribute__((preserve_access_index));
struct task_struct {
	int pid, tgid, exit_code;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));
struct linux_binprm { const char *filename; } __attribute__((preserve_access_index));

struct rec {
	__u32 type, tid;
	__u64 ts, pid, gen, a, b, c, d, e;  /* bind: req, prov, latency, kind, off-CPU; name: map, l_addr; reloc: map, dur */
	char s1[STRLEN];                 /* bind: version; name: l_name; exec: filename */
	char s2[STRLEN];                 /* bind: symbol */
};
struct args_rec {
	__u32 type, tid;
	__u64 ts, pid, len;
	char args[ARGS_MAX];
};

/* off_at: when the thread was switched out (0: it runs); off: its time switched out so far */
struct inflight { __u64 start, kind, name, req, ver, gen, off_at, off; };
struct seen_key { __u64 pid, gen, map; };
struct relocating { __u64 start, map; };

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 24); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, C_N); __type(key, __u32); __type(value, __u64); } config SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } lost SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, __u64); } traced SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, struct inflight); } flight SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, struct relocating); } reloc SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 32768); __type(key, struct seen_key); __type(value, __u8); } seen SEC(".maps");

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

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	__u32 pid = BPF_CORE_READ(p, tgid);
	if (!gen_of(pid) && pid != (__u32)cfg(C_ROOT))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&traced, &pid, &now, BPF_ANY);
	struct rec *r = new_rec(T_EXEC, pid);
	if (!r)
		return 0;
	r->ts = now;  /* the generation the pid's records now carry */
	bpf_probe_read_kernel_str(r->s1, STRLEN, BPF_CORE_READ(bprm, filename));
	/* woken at once: gotrace keeps the program's file while it is there (`go test` deletes
	   its binaries as soon as they ran; capture/object_keeper.py) */
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	/* argv: the whole area at once (NUL-separated), split by the loader: no loop to verify */
	struct args_rec *a = bpf_ringbuf_reserve(&events, sizeof(*a), 0);
	if (!a) {
		count_lost();
		return 0;
	}
	unsigned long start = BPF_CORE_READ(p, mm, arg_start), end = BPF_CORE_READ(p, mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	if (len > ARGS_MAX)
		len = ARGS_MAX;
	a->type = T_EXEC + 100;
	a->pid = pid;
	a->len = len;
	/* the size spelled so the verifier sees it bounded by ARGS_MAX, whatever clang keeps in registers */
	if (bpf_probe_read_user(a->args, len & (ARGS_MAX - 1) ? len & (ARGS_MAX - 1) : (len ? ARGS_MAX : 0),
	                        (void *)start))
		a->len = 0;
	bpf_ringbuf_submit(a, wake());
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
	                      PT_REGS_PARM5(ctx), *g, 0, 0 };
	bpf_map_update_elem(&flight, &tid, &f, BPF_ANY);
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
	r->e = f->off;
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
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *f = bpf_map_lookup_elem(&flight, &tid);
	if (!f)
		return 0;
	emit(f, pid, tid, PT_REGS_RC(ctx), bpf_ktime_get_ns() - f->start, f->kind);
	bpf_map_delete_elem(&flight, &tid);
	return 0;
}

/* Time a lookup's thread spends switched out (preempted, blocked on a page fault or a lock) is
   part of its latency but not the resolver's work: it is added up here, so the off-CPU share can be
   told apart (one 64 ms lookup of a build's 110,000 was the thread waiting). This runs at every
   context switch on the machine: two lookups of the in-flight map by tid (the idle task, tid 0,
   skipped), nothing written unless a lookup is in flight. Measured here (kernel.bpf_stats_enabled,
   2 shared vCPUs, bench_bind's W2): 200-250 ns a switch, 2-3 ms of a 2-s run, where the lookup
   probes took 60-130 ms. */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 out = prev->pid, in = next->pid;
	__u64 now = 0;
	struct inflight *f = out ? bpf_map_lookup_elem(&flight, &out) : NULL;
	if (f) {
		now = bpf_ktime_get_ns();
		f->off_at = now;
	}
	f = in ? bpf_map_lookup_elem(&flight, &in) : NULL;
	if (f && f->off_at) {
		if (!now)
			now = bpf_ktime_get_ns();
		f->off += now - f->off_at;
		f->off_at = 0;
	}
	return 0;
}

/* a lookup that fails on a global reference never returns (see bindsnoop.bt): recorded here */
SEC("uprobe")
int on_signal(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *f = bpf_map_lookup_elem(&flight, &tid);
	if (!f)
		return 0;
	emit(f, pid, tid, 0, 0, f->kind + 4);
	bpf_map_delete_elem(&flight, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
