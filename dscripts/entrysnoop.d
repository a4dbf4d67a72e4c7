#!/usr/sbin/dtrace -s
/*
 * entrysnoop.d  Print every function entry of one module of a process, with its first argument:
 *               the one-liner `pid$target:::entry { printf("%s %x", probefunc, arg0); }`
 *               of gotrace's seed notes, as a tool. macOS and Linux; DTrace pid provider.
 *
 * USAGE: dtrace -s entrysnoop.d -c 'prog args' MODULE
 *        dtrace -s entrysnoop.d -p PID MODULE
 *
 *   MODULE  the module whose functions to print, as DTrace names it (libSystem.B.dylib,
 *           dyld, libc.so.6 ...); "" (or none) prints every module's.
 *
 * Output, one line per call:
 *
 *   module function arg0
 *
 * CAVEATS: this is not a binding tracer. It shows calls, not the dynamic linker's
 * work: a symbol bound eagerly at load (all of them with dyld4, macOS 12+) never
 * passes through a probe here, and a lazy PLT call shows the called function, not
 * the lookup. It is the costliest way to look: the probes cover every function of
 * every module (the module is chosen by a predicate, so the probe description
 * stays valid whatever MODULE is), each call traps into the kernel (~2-10 us),
 * and a `go build` makes hundreds of millions of calls: expect the traced
 * program to run 10-100x slower, and DTrace to drop records ("dynamic variable
 * drops", "buffer drops"). Prefer dyldbindsnoop.d or dlsymsnoop.d; use this on one
 * small program. On macOS: root, and SIP's `csrutil enable --without dtrace`.
 *
 * EXAMPLE: see entrysnoop_example.txt
 */
#pragma D option quiet
#pragma D option defaultargs

pid$target:::entry
/$$1 == "" || probemod == $$1/
{
	printf("%s %s %x\n", probemod, probefunc, arg0);
}
