#!/usr/sbin/dtrace -ws
/*
 * execstop.d  Stop every new program of a process tree at exec, before dyld runs in it,
 *             so per-process probes can be attached first; prints which to resume.
 *             macOS only: DTrace's stop() action (destructive, -w). DTrace for Linux
 *             does not implement stop() ("stop() is not implemented (yet)").
 *
 * USAGE: dtrace -w -s proctree.d -s execstop.d -p PID     (with proctree.d, as gotrace runs it)
 *
 *   (no arguments: the root is $target)
 *
 * Output:
 *
 *   STOP ts pid                  pid stopped right after its exec: attach, then resume it
 *                                (dyldbindsnoop.d + pidresume.d do both: dtrace -p pid ...)
 *
 * CAVEATS: a stopped process waits until somebody resumes it (pidresume()): if the
 * attaching side dies, the process stays stopped (gotrace resumes every one it
 * was told of when it stops). proc:::exec-success fires in the new image before
 * dyld runs (xnu kern_exec.c). Needs root and, under SIP, `csrutil enable
 * --without dtrace` (destructive actions are refused otherwise). Not run on
 * macOS: no Mac was at hand.
 *
 * EXAMPLE: see execstop_example.txt
 */
#pragma D option quiet
#pragma D option destructive
#pragma D option switchrate=10ms

proc:::exec-success
/progenyof($target)/
{
	stop();
	printf("STOP\t%d\t%d\n", timestamp, pid);
}
