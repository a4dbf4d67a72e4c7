#!/usr/sbin/dtrace -s
/*
 * proctree.d  Trace a command's whole process tree: every fork, exec and exit, with exit codes.
 *             macOS and Linux (DTrace for Linux); proc and syscall providers, progenyof().
 *
 * USAGE: dtrace -s proctree.d -c 'prog args'
 *        dtrace -s proctree.d -p PID            (the tree below a running process)
 *        dtrace -w -s proctree.d -s execstop.d -p PID    (macOS: also stop each new
 *                                                 program at exec, see execstop.d)
 *
 *   (no arguments: the root is $target, given by -p or -c)
 *
 * Output: one tab-separated record per line, first field the type, times in ns:
 *
 *   READY pid                    probes enabled
 *   F ts parent child            a process of the tree forked (child: its pid)
 *   E ts pid ppid path           a process of the tree exec'd path (as given to exec)
 *   Q ts pid code                the process called exit(code) (Linux: exit_group)
 *   X ts pid ppid reason         it is gone; reason 1 = exited (its code: the last Q),
 *                                2 = killed by a signal, 3 = killed and dumped core
 *   T ts                         a heartbeat, every 50 ms: a reader merging these records
 *                                with another dtrace's knows how far this one has got
 *
 * Records come per CPU buffer, not in time order: sort them by ts.
 *
 * CAVEATS: progenyof() follows the tree from the root, also past processes that
 * re-parent to init/launchd when their parent exits (not DTrace for Linux 2.0: there a
 * process re-parented outside the tree, and a child forked by any thread but a process's
 * first, leave no records). DTrace for Linux fires proc:::create for a new thread too:
 * "F ts P P", the child its own process (gotrace skips those). No argv (psinfo's args are
 * not translated on Linux); `execname` would cut names at 15/16 bytes, so the
 * path comes from proc:::exec's argument. Overhead: a few probe firings per
 * process, nothing per call. On macOS it needs root and, for SIP-restricted
 * programs, `csrutil enable --without dtrace`.
 *
 * EXAMPLE: see proctree_example.txt
 */
#pragma D option quiet
#pragma D option switchrate=10ms
#pragma D option bufsize=4m

BEGIN
{
	printf("READY\t%d\n", $target);
}

proc:::create
/progenyof($target)/
{
	printf("F\t%d\t%d\t%d\n", timestamp, pid, args[0]->pr_pid);
}

proc:::exec
/progenyof($target)/
{
	self->path = stringof(args[0]);
}

proc:::exec-success
/progenyof($target)/
{
	printf("E\t%d\t%d\t%d\t%s\n", timestamp, pid, ppid, self->path != NULL ? self->path : execname);
	self->path = 0;
}

proc:::exec-failure
/self->path != NULL/
{
	self->path = 0;
}

syscall::exit_group:entry,
syscall::exit:entry
/progenyof($target)/
{
	printf("Q\t%d\t%d\t%d\n", timestamp, pid, arg0);
}

proc:::exit
/progenyof($target)/
{
	printf("X\t%d\t%d\t%d\t%d\n", timestamp, pid, ppid, args[0]);
}

tick-50ms
{
	printf("T\t%d\n", timestamp);
}

proc:::exit
/pid == $target/
{
	exit(0);	/* the root is gone (after its X above): end cleanly; dtrace -p may not, and a killed
			   dtrace leaves its uprobes registered */
}
