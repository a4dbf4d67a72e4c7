#!/usr/sbin/dtrace -ws
/*
 * pidresume.d  Resume the process execstop.d stopped, once the probes given with it are enabled.
 *              macOS only: pidresume() is a Darwin action (DTrace for Linux: "undefined
 *              function name: pidresume").
 *
 * USAGE: dtrace -w -s dyldbindsnoop.d -s dlsymsnoop.d -s pidresume.d -p PID 1
 *
 *   (no arguments of its own: it resumes $target; BEGIN runs once every probe of
 *   every script given with it is enabled, so none of the process's first
 *   instructions is missed)
 *
 * Output:
 *
 *   RESUMED ts pid
 *
 * CAVEATS: destructive (-w); under SIP needs `csrutil enable --without dtrace`.
 * Not run on macOS: no Mac was at hand.
 *
 * EXAMPLE: see pidresume_example.txt
 */
#pragma D option quiet
#pragma D option destructive

BEGIN
{
	pidresume($target);
	printf("RESUMED\t%d\t%d\n", timestamp, $target);
}
