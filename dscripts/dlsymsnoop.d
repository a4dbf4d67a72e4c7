#!/usr/sbin/dtrace -s
/*
 * dlsymsnoop.d  Trace dlsym() and dlopen() of one process: name, handle, result, caller, latency.
 *               macOS (libdyld's dlsym/dlopen) and Linux (glibc's, DTrace for Linux);
 *               DTrace pid provider, entry -> return.
 *
 * USAGE: dtrace -s dlsymsnoop.d -p PID
 *        dtrace -s dlsymsnoop.d -c 'prog args'
 *
 *   (no arguments: the process is $target, given by -p or -c)
 *
 * Output: one tab-separated record per line, first field the type; times in ns
 * (`timestamp`), addresses in hex without 0x:
 *
 *   READY pid                                    probes enabled
 *   S ts pid tid latency_ns handle result caller name    one dlsym: result 0 = not found
 *   O ts pid tid latency_ns path_or_(null) mode handle caller   one dlopen: handle 0 = failed
 *
 * The strings are read when the call returns: BPF (DTrace for Linux) cannot
 * fault a page in, and a name in .rodata the program has not touched yet would
 * be unreadable at entry. `caller` is the address dlsym was called from
 * (ucaller): the image holding it asked.
 *
 * CAVEATS: one process only (pid probes are per process): gotrace starts one per
 * process of a tree (proctree.d says which). On Linux a process is attached
 * after it started (DTrace for Linux has no stop()): calls before that are
 * missed. On macOS, SIP refuses restricted processes unless
 * `csrutil enable --without dtrace`, and DTrace cannot instrument Rosetta-
 * translated processes ("DTrace cannot instrument translated processes").
 * Overhead: two probe firings per call, ~2-10 us each; negligible unless a
 * program dlsyms in a loop. Latency includes the probes' own cost.
 *
 * EXAMPLE: see dlsymsnoop_example.txt
 */
#pragma D option quiet
#pragma D option switchrate=10ms
#pragma D option bufsize=4m

BEGIN
{
	printf("READY\t%d\n", $target);
}

proc:::exit
/pid == $target/
{
	exit(0);	/* its process is gone: end cleanly (dtrace -p may not, and a killed dtrace leaves its uprobes) */
}

pid$target::dlsym:entry
{
	self->s_name = arg1;
	self->s_handle = arg0;
	self->s_caller = ucaller;
	self->s_ts = timestamp;
}

pid$target::dlsym:return
/self->s_ts/
{
	printf("S\t%d\t%d\t%d\t%d\t%x\t%x\t%x\t%s\n", timestamp, pid, tid, timestamp - self->s_ts,
	    self->s_handle, arg1, self->s_caller, copyinstr(self->s_name));
	self->s_ts = 0;
	self->s_name = 0;
}

pid$target::dlopen:entry
{
	self->o_path = arg0;
	self->o_mode = arg1;
	self->o_caller = ucaller;
	self->o_ts = timestamp;
}

pid$target::dlopen:return
/self->o_ts/
{
	printf("O\t%d\t%d\t%d\t%d\t%s\t%x\t%x\t%x\n", timestamp, pid, tid, timestamp - self->o_ts,
	    self->o_path ? copyinstr(self->o_path) : "(null)", self->o_mode, arg1, self->o_caller);
	self->o_ts = 0;
	self->o_path = 0;
}
