"""What System Integrity Protection hides from dyld's account, said before and after the run.

dyld ignores every DYLD_* variable in a restricted process — a SIP-protected
program (/bin, /sbin, /usr outside /usr/local, /System) — and deletes them from
its environment, so nothing it starts sees them either (dyld-1378
DyldProcessConfig.cpp ``pruneEnvVars``). `go build` meets such programs: the
clang that cgo runs by default is /usr/bin/clang, an xcrun shim; a script's
/bin/sh or /usr/bin/env. Their processes and all their descendants write no
line. gotrace says so before the run (from the command, its interpreter and
cgo's compilers) and after it (the processes `ps` saw that wrote nothing),
with the way to include them, and never counts a silent process as one with
no bindings. Not run on macOS: the rules are tested on the paths and
environments they judge.
"""
from __future__ import annotations

import os
import shutil

from ...binary.facts import script_interpreter

PROTECTED = ("/System/", "/bin/", "/sbin/", "/usr/")
NOT_PROTECTED = ("/usr/local/",)
GO_BUILDING = {"build", "test", "run", "install", "vet", "generate", "get", "list"}


def protected(path: str | None) -> bool:
    """Whether a program at ``path`` runs SIP-protected (DYLD_* dropped for it and its children)."""
    if not path:
        return False
    real = os.path.realpath(path) if os.path.isabs(path) else path
    return any(p.startswith(PROTECTED) and not p.startswith(NOT_PROTECTED) for p in {path, real})


def before(argv: list[str], env: dict[str, str]) -> list[str]:
    """Warnings for a command about to run: which of its programs will leave no account, and the fix."""
    out = []
    path = env.get("PATH", os.defpath)
    exe = shutil.which(argv[0], path=path) if argv else None
    if exe and protected(exe):
        out.append(f"{exe} is SIP-protected: dyld ignores DYLD_* in it and in everything it starts, so this run "
                   "will record nothing; run the program it would start directly (or one outside /usr and /bin)")
        return out
    interp = script_interpreter(exe) if exe else None
    if interp and protected(interp):
        out.append(f"{argv[0]} is a script run by {interp} (SIP-protected): it and what it starts will record "
                   f"nothing; run it with an interpreter outside /usr and /bin (e.g. Homebrew's)")
    if argv and os.path.basename(argv[0]) == "go" and len(argv) > 1 and argv[1] in GO_BUILDING \
            and env.get("CGO_ENABLED", "1") != "0":
        for var, default in (("CC", "clang"), ("CXX", "clang++")):
            tool = (env.get(var) or default).split()[0]
            found = shutil.which(tool, path=path) if not os.path.isabs(tool) else tool
            if found and protected(found):
                out.append(f"cgo's {var} is {found}, an xcrun shim (SIP-protected): the C compiler and linker "
                           f"runs of this build will be invisible; set {var}=$(xcrun -f {default}) to include them")
    return out


def silent(seen: dict, accounted: set[int], root: int) -> list[dict]:
    """Processes the tree watch saw that wrote no line, each with the reason:
    a protected program, a descendant of one, or (otherwise) an unknown one."""
    out = []
    for pid, s in sorted(seen.items()):
        if pid in accounted:
            continue
        exe = s.exes[-1] if s.exes else None
        chain, cur, hops = [], s.ppid, 0
        while cur in seen and hops < 64:
            chain.append(seen[cur])
            cur, hops = seen[cur].ppid, hops + 1
        if any(protected(e) for e in s.exes):
            reason = "SIP-protected program: dyld ignored and dropped DYLD_*"
        elif any(protected(e) for a in chain if a.pid not in accounted for e in a.exes):
            guard = next(e for a in chain if a.pid not in accounted for e in a.exes if protected(e))
            reason = f"started by SIP-protected {guard}: DYLD_* were dropped"
        else:
            reason = "wrote no dyld line (its environment lost DYLD_*, or it exited before dyld logged)"
        out.append({"pid": pid, "ppid": s.ppid, "exe": exe, "reason": reason, "root": pid == root})
    return out
