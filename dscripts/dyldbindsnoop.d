#!/usr/sbin/dtrace -s
/*
 * dyldbindsnoop.d  Trace dyld4 binding a process's images at load: every bind target's
 *                  lookup (symbol, requesting and providing image, latency) and each
 *                  image's fixup time. macOS (dyld4, macOS 12+); DTrace pid provider on
 *                  dyld, entry -> return. Not run on macOS: built from dyld's sources
 *                  (apple-oss-distributions/dyld, dyld-1378).
 *
 * USAGE: dtrace -x evaltime=exec -s dyldbindsnoop.d -c 'prog args' ARM64
 *        dtrace -w -s dyldbindsnoop.d -s pidresume.d -p PID ARM64   (a process execstop.d stopped)
 *
 *   ARM64  1 on Apple Silicon, 0 on an Intel Mac: where resolveSymbol's arguments are.
 *          resolveSymbol returns a 40-byte ResolvedSymbol through a hidden pointer:
 *          arm64 passes it in x8 (uregs[8]), so this = arg0 and the symbol name is
 *          arg4; x86_64 passes it in rdi, so arg0 = the pointer, this = arg1, the
 *          name arg5.
 *
 * What it probes (demangled names contain ':', so globs, never full manglings):
 *   dyld4::JustInTimeLoader::applyFixups   once per image at launch and dlopen: its time
 *   dyld4::Loader::resolveSymbol           once per bind target: the lookup and its result
 *
 * Output: one tab-separated record per line, times in ns, addresses in hex:
 *
 *   READY pid
 *   R ts pid tid duration_ns image_mh                   one image's applyFixups
 *   B ts pid tid latency_ns requester_mh provider_mh offset kind symbol
 *                                                       one bind target; provider_mh 0: not
 *                                                       found (a missing weak import), offset:
 *                                                       the symbol's within the provider,
 *                                                       kind 1 = image, 2 = absolute
 *
 * An image is named by its Mach-O header address (its load address, as
 * DYLD_PRINT_SEGMENTS gives it): dyld-1378's Loader starts with the magic
 * 'l4yd', and a JustInTimeLoader's mapped header sits 32 bytes in; a loader
 * without that magic gives 0 (name unknown). gotrace maps header addresses to
 * paths with DYLD_PRINT_LIBRARIES and _SEGMENTS in the same run.
 *
 * CAVEATS: evaltime=exec (or execstop.d + pidresume.d) is needed, or every
 * launch-time bind happens before the probes exist (the default evaltime is
 * postinit). Since macOS 13 a native process restarts into the dyld of the
 * shared cache: probes placed on /usr/lib/dyld may miss what follows (unverified).
 * Struct offsets are dyld-1378's and unverified on a Mac. SIP: needs root and
 * `csrutil enable --without dtrace`; DTrace refuses Rosetta-translated
 * processes ("DTrace cannot instrument translated processes": use gotrace's
 * dyld-print backend or lldb). Overhead: two probe firings per bind target
 * (a few thousand for clang): a few ms per process.
 *
 * EXAMPLE: see dyldbindsnoop_example.txt
 */
#pragma D option quiet
#pragma D option switchrate=10ms
#pragma D option bufsize=8m
#pragma D option defaultargs

BEGIN
{
	printf("READY\t%d\n", $target);
}

pid$target:dyld:*JustInTimeLoader*applyFixups*:entry
/self->fx_ts == 0/
{
	self->fx_ts = timestamp;
	this->magic = *(uint32_t *)copyin(arg0, 4);
	self->fx_mh = this->magic == 0x6c347964 ? *(uint64_t *)copyin(arg0 + 32, 8) : 0;
}

pid$target:dyld:*JustInTimeLoader*applyFixups*:return
/self->fx_ts/
{
	printf("R\t%d\t%d\t%d\t%d\t%x\n", timestamp, pid, tid, timestamp - self->fx_ts, self->fx_mh);
	self->fx_ts = 0;
	self->fx_mh = 0;
}

pid$target:dyld:*Loader*resolveSymbol*:entry
/self->rs_depth++ == 0/
{
	self->rs_ts = timestamp;
	self->rs_ret = $1 ? uregs[8] : arg0;
	self->rs_name = $1 ? arg4 : arg5;
	this->loader = $1 ? arg0 : arg1;
	this->magic = *(uint32_t *)copyin(this->loader, 4);
	self->rs_req = this->magic == 0x6c347964 ? *(uint64_t *)copyin(this->loader + 32, 8) : 0;
}

pid$target:dyld:*Loader*resolveSymbol*:return
/--self->rs_depth == 0 && self->rs_ts/
{
	this->target = *(uint64_t *)copyin(self->rs_ret, 8);
	this->offset = *(uint64_t *)copyin(self->rs_ret + 16, 8);
	this->kind = *(uint32_t *)copyin(self->rs_ret + 32, 4);
	this->tmagic = this->target ? *(uint32_t *)copyin(this->target, 4) : 0;
	this->prov = this->tmagic == 0x6c347964 ? *(uint64_t *)copyin(this->target + 32, 8) : 0;
	printf("B\t%d\t%d\t%d\t%d\t%x\t%x\t%x\t%d\t%s\n", timestamp, pid, tid, timestamp - self->rs_ts,
	    self->rs_req, this->prov, this->offset, this->kind, copyinstr(self->rs_name));
	self->rs_ts = 0;
}
