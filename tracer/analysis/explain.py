"""Why the loader refused, and what to try: one explanation per load error.

An explanation has the loader's own account (what it did, why it failed, from the message
alone), the likely cause and the fixes to try, and — where the files the message names are
on this machine — what they are (binary/load_facts.py): there or not, architectures,
install name, LC_RPATHs, exports. ``from_text_only`` says when no named file could be
checked, so a reader knows which conclusions the files confirmed. dyld's cases are not run
on macOS: they are built from dyld's sources and checked against messages published from
real Macs and against Apple-built files from PyPI's macOS wheels.
"""
from __future__ import annotations

import os
from typing import Any

from ..binary import load_facts
from ..loaderrors.record import CAUSES, KINDS, LoadError
from ..loaderrors.scan import scan

ROSETTA = {"x86_64", "x86_64h", "i386"}
ARM = {"arm64", "arm64e"}


def explain_text(text: str, look: bool = True, base: str | None = None) -> dict[str, Any]:
    """Every load error in ``text``, explained; and how many lines were the loader's."""
    found = scan(text)
    return {"errors": [explain(e, look, base, translated=found.translated) for e in found.errors],
            "lines": len(text.splitlines()), "error_lines": len(found.lines), "translated": found.translated}


def explain(err: LoadError | dict, look: bool = True, base: str | None = None, translated: bool = False
            ) -> dict[str, Any]:
    """One error (a LoadError or a row of a session's errors table) explained. ``look``: check
    the files it names on this machine (relative names from ``base``, else the working directory)."""
    if isinstance(err, dict):
        row = dict(err)
        tried = row.get("tried")
        row["tried"] = [] if tried is None else [(t["path"], t["reason"]) if isinstance(t, dict) else tuple(t)
                                                  for t in tried]
        for k in ("have", "need"):
            row[k] = [] if row.get(k) is None else list(row[k])
        err = LoadError(**{k: row.get(k) for k in LoadError.__dataclass_fields__ if k in row})
    e = err
    out: dict[str, Any] = {"error": e.row(), "kind_means": KINDS.get(e.kind), "cause_means": CAUSES.get(e.cause)}
    what, why, likely, fixes = _account(e, translated)
    out.update(what=what, why=why, likely=likely, fixes=fixes)
    checks: list[str] = []
    if look:
        checks = _checks(e, base)
    out["checks"] = checks
    out["from_text_only"] = not any(not c.startswith("not on this machine") for c in checks)
    return out


def _q(x: str | None) -> str:
    return "?" if x is None else x


def _requester(e: LoadError) -> str:
    return e.requester or e.program or "the program"


def _account(e: LoadError, translated: bool) -> tuple[str, str, str | None, list[str]]:
    """(what the loader did, why it failed, the likely cause, fixes) from the message alone."""
    lib, req = _q(e.library), _requester(e)
    dyld = e.source == "dyld"
    if e.kind == "library-not-loaded":
        what = (f"dlopen({lib}) failed" if e.via == "dlopen" and not e.requester else
                f"{'dyld' if dyld else 'ld.so'} could not load {lib}, which {req} needs")
        tried = len(e.tried)
        if e.cause == "wrong-arch":
            bad = next((p for p, r in e.tried if "architecture" in r or "ELFCLASS" in r), lib)
            have, need = ", ".join(e.have) or "another architecture", " or ".join(e.need) or "this process's"
            why = f"{bad} was found, but it is {have} and the process needs {need}"
            likely, fixes = _arch_advice(e, translated)
            return what, why, likely, fixes
        if e.cause == "code-signature":
            why = "the file was found, but dyld refused its code signature"
            return what, why, ("the file was changed after it was signed (install_name_tool, strip, a patch), is "
                               "unsigned on arm64, or is signed by another team than the program (library "
                               "validation)"), [
                f"re-sign it ad hoc: codesign --force --sign - {_tried_file(e) or lib}",
                "sign it with the program's identity, or give the program the entitlement "
                "com.apple.security.cs.disable-library-validation",
                "after install_name_tool, always sign again (arm64 runs no unsigned code)"]
        if e.cause == "bad-file":
            why = "a file was found at the path, but it is not a loadable image"
            return what, why, "a truncated download, a Git LFS pointer or a text stub, or an image for another OS", [
                "reinstall or rebuild the library", "file(1) or `gotrace inspect FILE` says what it is"]
        if e.cause == "old-version":
            why = "the library found is older than the one the requester was linked against"
            return what, why, None, ["install the newer library, or rebuild against the one on this machine"]
        if e.cause == "sandbox":
            why = "the path was refused by the sandbox or by the hardened runtime's rules"
            return what, why, ("a hardened program may not load relative paths or expand @-paths from DYLD_* "
                               "variables"), ["give the library an absolute install name or an @rpath the program "
                                              "itself carries (LC_RPATH)"]
        rpath = lib.startswith("@rpath/")
        if e.cause == "no-rpath" or (rpath and dyld and tried == 0 and "LC_RPATH" in e.message):
            why = f"{lib} is an @rpath name and {req} has no LC_RPATH to expand it with"
        elif dyld and tried:
            why = f"there is no file at any of the {tried} paths dyld tried"
        elif dyld:
            why = "no file at the path dyld derived from the install name (dyld2 does not list the paths)"
        else:
            why = f"{lib} is in none of the directories ld.so searches"
        if not dyld:
            fixes = ["install the package that ships it, or add its directory: LD_LIBRARY_PATH=DIR to try, "
                     "-Wl,-rpath,DIR when linking (cgo: #cgo LDFLAGS: -Wl,-rpath,DIR), or ldconfig",
                     f"`gotrace bind -- PROGRAM`, then `gotrace why SESSION --library {os.path.basename(lib)}`, "
                     "replays ld.so's search"]
            return what, why, "the library is not installed here, or not where the program's search looks", fixes
        if rpath:
            fixes = ["give the requester an LC_RPATH to the directory that holds it: "
                     f"install_name_tool -add_rpath DIR {req}",
                     "cgo: #cgo LDFLAGS: -Wl,-rpath,DIR (or go build -ldflags=-extldflags=-Wl,-rpath,DIR)",
                     "or install the library into a directory an LC_RPATH already names (see the checks)"]
            likely = ("the library is not installed, or installed where none of the requester's LC_RPATHs point "
                      "(Homebrew: /opt/homebrew on Apple Silicon, /usr/local on Intel)")
        else:
            fixes = [f"install {os.path.basename(lib)} at {lib}, or point the requester elsewhere: "
                     f"install_name_tool -change {lib} NEWPATH {req}",
                     "DYLD_LIBRARY_PATH / DYLD_FALLBACK_LIBRARY_PATH help only programs SIP does not protect"]
            likely = "the library was moved, uninstalled, or built on another machine with another prefix"
        return what, why, likely, fixes
    if e.kind in ("symbol-not-found", "flat-namespace"):
        sym = _q(e.symbol) + (f" (version {e.version})" if e.version else "")
        if e.kind == "flat-namespace":
            what = f"{req} looked up {sym} in the flat namespace (every loaded image)"
            why = "no loaded image exports it"
            return what, why, ("an extension built with -undefined dynamic_lookup expects its host (python, ruby, "
                               "node) or a library it does not link to define the symbol: it was built for another "
                               "version or architecture of the host, or that library was not loaded first"), [
                "rebuild or reinstall the extension for this interpreter (pip install --force-reinstall "
                "--no-cache-dir …)", "on Apple Silicon: the host and the extension must both be arm64 (or both "
                "x86_64 under Rosetta)", "link the library that defines it into the extension"]
        if not dyld:
            what = f"{req} needs {sym}" + (f" from {e.library}" if e.library else "")
            why = ("no object in its lookup scope defines it" + (" at the first call (lazy binding)"
                                                                 if e.via == "call" else ""))
            return what, why, ("the library loaded is another build or an older version than the one linked "
                               "against; a Go program (1.21+) loading a plugin or C library that needs the "
                               "program's own symbols now needs -ldflags=-extldflags=-rdynamic"), [
                f"`gotrace bind -- PROGRAM`, then `gotrace why SESSION {e.symbol or 'SYMBOL'}`, shows every "
                "object searched",
                "run with the library version it was built against, or rebuild against this one"]
        what = f"{req} needs {sym}, expected in {_q(e.library)}"
        why = ("dyld looked it up in that library (two-level namespace) and it does not export it"
               + (" — at its first call (lazy binding, dyld2)" if e.via == "call" else ""))
        return what, why, ("the library here is another version than the one the requester was linked against "
                           "(an older macOS or Homebrew release), or the requester was built for a newer macOS "
                           "than this one (its deployment target)"), [
            "build with a deployment target this macOS meets (MACOSX_DEPLOYMENT_TARGET, -mmacosx-version-min; "
            "cgo: CGO_CFLAGS/CGO_LDFLAGS)", "or install the library version it was linked against"]
    if e.kind == "version-not-found":
        what = f"{req} needs version {_q(e.version)} of {lib}"
        why = f"the {os.path.basename(lib)} loaded does not define {_q(e.version)}: it is older"
        return what, why, ("built on a newer system than it runs on: cgo links against the build machine's glibc, "
                           "and each symbol takes the newest version there"), [
            "build on (or in a container of) the oldest system it must run on, or against an older sysroot "
            "(zig cc -target x86_64-linux-gnu.2.28)", "CGO_ENABLED=0 if the program needs no C",
            "`gotrace check --glibc 2.NN PROGRAM` names the symbols that set the floor"]
    if e.kind == "missing-uuid":
        return (f"dyld refused {lib}", "it has no LC_UUID load command, which dyld requires since macOS 15.4",
                "linked by an old Go linker or with -B none / stripped of its UUID (golang/go#68678)",
                ["rebuild with a current Go (its linker writes LC_UUID)", "or link externally: -ldflags=-linkmode=external"])
    if e.kind == "dyld-cache":
        return ("dyld could not map its shared cache", e.message.split(": ", 1)[-1],
                "an interrupted OS update or a damaged system volume", ["reboot; if it persists, reinstall macOS"])
    return "the loader failed", e.message, None, []


def _tried_file(e: LoadError) -> str | None:
    return next((p for p, r in e.tried if "no such file" not in r), None)


def _arch_advice(e: LoadError, translated: bool) -> tuple[str, list[str]]:
    need, have = set(e.need), set(e.have)
    if e.source == "glibc":
        return ("a library of the other ELF class (32/64-bit) sits earlier in the search path",
                ["install the library for the program's architecture (libfoo:amd64 / libfoo:i386)",
                 "or remove the other class's directory from LD_LIBRARY_PATH / the rpath"])
    if need & ROSETTA and have & ARM:
        return ("the program runs as x86_64 — translated by Rosetta on an Apple Silicon Mac (an x86_64 build of "
                "it: an Intel python or Homebrew, or what an x86_64 Go toolchain builds) — and the library is "
                "arm64-only",
                ["build the library for x86_64 too (universal: lipo -create), or install the x86_64 one "
                 "(Homebrew under /usr/local)",
                 "or run native: an arm64 build of the program (Go: an arm64 Go, `go env GOARCH` says arm64, or "
                 "GOARCH=arm64), and no `arch -x86_64`"])
    if need & ARM and have & ROSETTA:
        return ("the program is arm64 and the library was built for x86_64 (an Intel Homebrew under /usr/local, "
                "an Intel wheel or artifact)",
                ["install the arm64 build (Homebrew under /opt/homebrew), or build it universal",
                 "or run the whole program translated: GOARCH=amd64 and `arch -x86_64`"])
    return ("the library was built for another architecture than the process", [
        "build or install the library for " + (" or ".join(e.need) or "the process's architecture")])


def _resolve(path: str, base: str | None) -> str:
    return path if os.path.isabs(path) or base is None else os.path.join(base, path)


def _describe(f: load_facts.FileFacts) -> str:
    if f.state != "file":
        return f"{f.path}: {f.state}" + (f" ({f.note})" if f.note else "")
    if f.format is None:
        return f"{f.path}: not Mach-O or ELF"
    bits = [f.format, ", ".join(a for a in f.archs if a) or "?"]
    if f.elf_class:
        bits[1] += f" {f.elf_class}"
    if f.install_name:
        bits.append(("install name " if f.format == "Mach-O" else "soname ") + f.install_name)
    return f"{f.path}: " + "; ".join(bits)


def _checks(e: LoadError, base: str | None) -> list[str]:
    """What the files the message names are on this machine, one line each."""
    out: list[str] = []
    seen: set[str] = set()

    def look(path: str | None, role: str) -> load_facts.FileFacts | None:
        if not path or path.startswith("@") or path == "flat namespace" or "/" not in path and role != "library":
            return None
        full = _resolve(path, base)
        if full in seen:
            return None
        seen.add(full)
        f = load_facts.file_facts(full)
        if f.state == "missing":
            out.append(f"not on this machine: {full} ({role})")
            return None
        out.append(f"{role}: {_describe(f)}")
        return f

    for p, _r in e.tried:
        f = look(p, "tried")
        if f is not None and f.format and e.need and not set(f.archs) & set(e.need):
            out.append(f"  it has no slice for {' or '.join(e.need)} (it has {', '.join(map(str, f.archs))})")
    req = look(e.requester, "requester")
    lib = look(e.library, "library") if not (e.library or "").startswith("@") else None
    if req is not None and req.format == "Mach-O":
        if req.rpaths:
            out.append(f"  its LC_RPATHs: {', '.join(req.rpaths)}")
        elif (e.library or "").startswith("@rpath/"):
            out.append("  it has no LC_RPATH: an @rpath name cannot be found")
        if (e.library or "").startswith("@rpath/"):
            leaf = e.library[len("@rpath/"):]
            for r in req.rpaths:
                d = r.replace("@loader_path", os.path.dirname(req.path)).replace(
                    "@executable_path", os.path.dirname(_resolve(e.program, base) if e.program else req.path))
                cand = load_facts.file_facts(os.path.join(d, leaf))
                out.append(f"  @rpath → {_describe(cand)}")
    if lib is not None and lib.format and e.symbol:
        try:
            got = load_facts.exports(lib.path, e.symbol, (e.need or [None])[0])
        except OSError:
            got = None
        if got is not None:
            if not got:
                out.append(f"  it does not export {e.symbol}")
            else:
                vers = [v for v in got if v]
                out.append(f"  it exports {e.symbol}" + (f" at {', '.join(vers)}" if vers else ""))
    if e.kind == "version-not-found" and lib is not None and lib.version_defs and e.version:
        fam = e.version.split("_")[0]
        mine = [v for v in lib.version_defs if v.startswith(fam + "_") and v[len(fam) + 1:][:1].isdigit()]
        if mine:
            out.append(f"  the newest {fam} version it defines: {mine[-1]}")
    if e.kind == "version-not-found" and req is not None and req.format == "ELF" and e.version:
        from ..binary.elf_versions import version_needs

        try:
            with open(req.path, "rb") as fh:
                needs = version_needs(req.path, fh.read())
            syms = sorted({s for n in needs if n.version == e.version for s in n.symbols})
            if syms:
                out.append(f"  symbols that need {e.version}: {', '.join(syms[:8])}"
                           + (f" and {len(syms) - 8} more" if len(syms) > 8 else ""))
        except Exception:  # a file that reads as ELF but not as far as its versions: say nothing more
            pass
    return out


def session_errors(s) -> list[dict]:
    """A loaded session's load errors: its errors table (what a log said), and the processes a live
    capture saw the dynamic linker stop (exit 127 with a library found nowhere, or a fatal undefined
    symbol: analysis/failures.py), as glibc would have said them."""
    from ..session.reader import frame_rows
    from .budgets import measures

    rows = frame_rows(s.errors) if len(s.errors) else []
    said = {(r.get("pid"), r.get("library"), r.get("symbol")) for r in rows}
    for d in measures(s)["deaths"]:
        lib = d["library"]
        if (d["pid"], lib, d["symbol"]) in said:
            continue
        if lib:
            row = LoadError("glibc", "library-not-loaded", "missing", pid=d["pid"], requester=d["needed_by"],
                            library=lib, message=f"{d['exe']}: error while loading shared libraries: {lib}: cannot "
                            "open shared object file (seen by the capture: exit 127, found nowhere today)").row()
        else:
            row = LoadError("glibc", "symbol-not-found", "undefined", pid=d["pid"], requester=d["needed_by"],
                            symbol=d["symbol"], version=d["version"], via="call",
                            message=f"{d['exe']}: symbol lookup error: {d['needed_by']}: undefined symbol: "
                            f"{d['symbol']} (seen by the capture: the lookup failed, exit 127)").row()
        row["exe"] = d["exe"]
        row.pop("program", None)
        rows.append(row)
    return rows
