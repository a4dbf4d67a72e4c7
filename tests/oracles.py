"""Independent accounts of a binary: readelf for ELF, llvm-objdump for Mach-O.

Each function parses the tool's text output with nothing from tracer, so a
test comparing gotrace with it compares two separate readings of the file.
"""
from __future__ import annotations

import os
import re
import subprocess

OBJDUMP = "llvm-objdump-16"


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def maps_bases(text: str) -> dict[str, int]:
    """The kernel's account, from /proc/PID/maps text: the lowest mapped address of
    each file (by real path), which is where its first PT_LOAD was placed."""
    bases: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[5].startswith("/"):
            start = int(parts[0].split("-")[0], 16)
            path = os.path.realpath(parts[5])
            bases[path] = min(start, bases.get(path, start))
    return bases


def readelf_loads(path) -> list[tuple[int, int, str]]:
    """(vaddr, memsz, flags) of each LOAD program header."""
    out = []
    for line in _run("readelf", "-lW", str(path)).splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            vaddr, memsz = int(parts[2], 16), int(parts[5], 16)
            flags = "".join(parts[6:-1])
            out.append((vaddr, memsz, flags))
    return out


def readelf_needed(path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _run("readelf", "-dW", str(path)))


def readelf_header(path) -> dict[str, str]:
    out = {}
    for line in _run("readelf", "-hW", str(path)).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def readelf_build_id(path) -> str | None:
    m = re.search(r"Build ID: ([0-9a-f]+)", _run("readelf", "-nW", str(path)))
    return m.group(1) if m else None


def readelf_symbol_counts(path) -> dict[str, int]:
    """Entries per symbol table, from readelf's "Symbol table '.x' contains N entries"."""
    return {m[0]: int(m[1]) for m in re.findall(r"Symbol table '([^']+)' contains (\d+) entr",
                                                  _run("readelf", "-sW", str(path)))}


def readelf_symbol_relocs(path) -> set[tuple[int, str, str]]:
    """(offset, type, symbol@version) of every relocation that names a symbol."""
    out = set()
    for line in _run("readelf", "-rW", str(path)).splitlines():
        parts = line.split()
        if len(parts) >= 5 and re.fullmatch(r"[0-9a-f]{8,16}", parts[0]) and parts[2].startswith("R_"):
            name = parts[4]
            if re.fullmatch(r"[0-9a-f]+", parts[3]) and not name.startswith("+"):
                out.add((int(parts[0], 16), parts[2], name))
    return out


def objdump_binds(path, arch: str | None = None) -> set[tuple[int, str, str]]:
    """(address, dylib short name, symbol) from the bind, lazy-bind and chained-fixup tables."""
    extra = [f"--arch={arch}"] if arch else []
    out = set()
    text = _run(OBJDUMP, "--macho", "--bind", "--lazy-bind", *extra, str(path))
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].startswith("__") and re.fullmatch(r"0x[0-9A-Fa-f]+", parts[2]):
            out.add((int(parts[2], 16), parts[-2], parts[-1]))
    text = _run(OBJDUMP, "--macho", "--dyld-info", *extra, str(path))
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[4] == "bind":
            out.add((int(parts[2], 16), parts[6], parts[7]))
    return out


def objdump_load_commands(path, arch: str | None = None) -> dict:
    extra = [f"--arch={arch}"] if arch else []
    text = _run(OBJDUMP, "--macho", "--private-headers", *extra, str(path))
    segs = [(m.group(1), int(m.group(2), 16), int(m.group(3), 16))
            for m in re.finditer(r"segname (\S+)\s+vmaddr (0x[0-9a-f]+)\s+vmsize (0x[0-9a-f]+)", text)]
    uuid = re.search(r"uuid ([0-9A-F-]+)", text)
    dylibs = re.findall(r"cmd LC_(?:LOAD|LOAD_WEAK|REEXPORT)_DYLIB\n\s+cmdsize \d+\n\s+name (\S+)", text)
    return {"segments": segs, "uuid": uuid.group(1) if uuid else None, "dylibs": dylibs}


def readelf_sections(path) -> list[dict]:
    """Every section header: name, type, address, offset, size, flags (readelf -SW)."""
    out = []
    pat = re.compile(r"^\s*\[\s*(\d+)\]\s+(\S*)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+"
                     r"([A-Za-z]*)\s+\d+\s+\d+\s+\d+\s*$")
    for line in _run("readelf", "-SW", str(path)).splitlines():
        m = pat.match(line)
        if m:
            out.append({"name": m[2], "type": m[3], "addr": int(m[4], 16), "offset": int(m[5], 16),
                        "size": int(m[6], 16), "flags": m[7]})
    return out


def section_holding(sections: list[dict], addr: int) -> str | None:
    """The smallest allocated section whose range holds addr; TLS zero-fill
    (.tbss) takes no address space and is skipped."""
    best = None
    for s in sections:
        if not s["addr"] or not s["size"] or ("T" in s["flags"] and s["type"] == "NOBITS"):
            continue
        if s["addr"] <= addr < s["addr"] + s["size"] and (best is None or s["size"] < best["size"]):
            best = s
    return best["name"] if best else None


# glibc's LD_DEBUG=symbols,bindings: "symbol=NAME;  lookup in file=FILE [NS]" per object searched, then
# "binding file REQ [NS] to PROV [NS]: normal symbol `NAME' [VERSION]" when the lookup succeeded
_LOOKUP = re.compile(r"^\s*(\d+):\s+symbol=(.+?);  lookup in file=(.+?) \[\d+\]$")
_BINDING = re.compile(r"^\s*(\d+):\s+binding file (.+?) \[\d+\] to (.+?) \[\d+\]: \S+ symbol `([^']+)'"
                      r"(?: \[([^\]]+)\])?$")


def ld_debug_lines(text: str) -> list[str]:
    """glibc's lines, each whole: ld.so writes a binding line in two write(2)s (elf/dl-lookup.c,
    _dl_debug_bindings: "… symbol `NAME'", then " [VERSION]\n" or "\n"), so another process writing
    to the same file or stderr in between leaves its own line after the quote and the first line's
    end alone on the next line. Each such end is given back to the last line cut."""
    out: list[str] = []
    cut: list[int] = []  # indexes in out of lines still waiting for their end
    for line in text.splitlines():
        if cut and not re.match(r"\s*\d+:", line):
            out[cut.pop()] += line
            continue
        parts = re.split(r"(?<=')(?=\s+\d+:\t)", line)
        for part in parts[:-1]:
            cut.append(len(out))
            out.append(part)
        out.append(parts[-1])
    return out


def ld_debug_bindings(text: str) -> list[dict]:
    """Each successful lookup glibc reported: pid, requester, provider, symbol, version, and the
    objects it searched, in order (None when its lookup lines could not be told apart)."""
    current: dict[str, tuple[str | None, list[str]]] = {}
    out = []
    for line in ld_debug_lines(text):
        m = _LOOKUP.match(line)
        if m:
            pid, sym, f = m.groups()
            s, files = current.get(pid, (None, []))
            if s != sym or f in files:  # another lookup began (a failed one leaves no binding line)
                files = []
            current[pid] = (sym, files + [f])
            continue
        m = _BINDING.match(line)
        if m:
            pid, req, prov, sym, ver = m.groups()
            s, files = current.pop(pid, (None, []))
            out.append({"pid": int(pid), "requester": req, "provider": prov, "symbol": sym, "version": ver,
                        "searched": files if s == sym else None})
    return out


# glibc's LD_DEBUG=libs: "find library=NAME [0]; searching", then per place " search path=DIRS\t\t(SOURCE)"
# or " search cache=/etc/ld.so.cache", each followed by "  trying file=PATH" lines
_FIND = re.compile(r"^\s*\d+:\s+find library=(\S+) \[\d+\]; searching$")
_SEARCH = re.compile(r"^\s*\d+:\s+search path=(.*?)\t\t\((.+)\)$")
_CACHE = re.compile(r"^\s*\d+:\s+search cache=(\S+)$")
_TRYING = re.compile(r"^\s*\d+:\s+trying file=(.+)$")


def ld_debug_searches(text: str) -> list[dict]:
    """Each library search glibc reported: the name, its places [(source, base directories)] — the
    glibc-hwcaps, tls and platform subdirectories ld.so adds under each directory left out — and the
    last file tried (the one that hit, when the program went on). An i386 ld.so's nested legacy
    subdirectories (tls/i686/sse2 before tls/i686) can make a subdirectory pass for a base: compare
    the directories that exist (none of those subdirectories does here)."""
    out: list[dict] = []
    for line in text.splitlines():
        m = _FIND.match(line)
        if m:
            out.append({"name": m.group(1), "places": [], "last_tried": None})
            continue
        if not out:
            continue
        m = _SEARCH.match(line)
        if m:
            # each directory comes after its own subdirectories: a base is the entry that closes them
            base, pending = [], []
            for d in (d for d in m.group(1).split(":") if d):
                if all(p.startswith(d + "/") for p in pending):
                    base.append(d)
                    pending = []
                else:
                    pending.append(d)
            out[-1]["places"].append((m.group(2), base))
            continue
        m = _CACHE.match(line)
        if m:
            out[-1]["places"].append(("ld.so.cache", [m.group(1)]))
            continue
        m = _TRYING.match(line)
        if m:
            out[-1]["last_tried"] = m.group(1)
    return out


LOADER_PREFIXES = ("LD_", "DYLD_", "GLIBC_TUNABLES=")  # written out here, not imported from tracer


def stopped_images(proc, marker: str, timeout_s: float = 300) -> list[dict]:
    """The kernel's account of every program image of a traced tree that stopped itself (SIGSTOP:
    tests/csrc/selfstop.c, or a script's `kill -STOP $$`) while ``proc`` (gotrace) runs: its
    /proc/PID/cmdline, the dynamic linker's variables of /proc/PID/environ in order, and
    readlink(/proc/PID/exe), read while it is stopped; then it is continued. The tree's
    processes are those whose environment holds ``marker`` (an entry NAME=VALUE)."""
    import signal
    import time

    seen: list[dict] = []
    last: dict[int, dict] = {}
    deadline = time.monotonic() + timeout_s
    want = marker.encode()
    while proc.poll() is None and time.monotonic() < deadline:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    state = fh.read().rsplit(b")", 1)[1].split()[0]
                if state != b"T":
                    continue
                with open(f"/proc/{pid}/environ", "rb") as fh:
                    environ = fh.read().split(b"\0")
                if want not in environ:
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    argv = [a.decode() for a in fh.read().split(b"\0")[:-1]]
                snap = {"pid": pid, "argv": argv, "exe": os.readlink(f"/proc/{pid}/exe"),
                        "loader_env": [e.decode() for e in environ if e.startswith(tuple(p.encode() for p in LOADER_PREFIXES))]}
                if last.get(pid) != snap:  # not one still shown stopped just after its SIGCONT
                    seen.append(snap)
                    last[pid] = snap
                os.kill(pid, signal.SIGCONT)
            except (OSError, IndexError):
                continue
        time.sleep(0.005)
    return seen


def readelf_dyn_defined(path) -> set[str]:
    """Names the object's dynamic symbol table defines (GLOBAL or WEAK, in a section), without
    their @VERSION: what ld.so may bind a lookup to in this object."""
    out = set()
    for f in (line.split() for line in _run("readelf", "-W", "--dyn-syms", str(path)).splitlines()):
        if len(f) >= 8 and f[0].endswith(":") and f[6] != "UND" and f[4] in ("GLOBAL", "WEAK"):
            out.add(f[7].split("@")[0])
    return out


def readelf_canonical_plt(path) -> set[str]:
    """Functions an executable does not define but gave a value (readelf --dyn-syms: FUNC, UND, a
    non-zero address): its canonical PLT entries. glibc's check_match (elf/dl-lookup.c) takes such
    a symbol for every lookup but a call slot's (ELF_RTYPE_CLASS_PLT)."""
    out = set()
    for f in (line.split() for line in _run("readelf", "-W", "--dyn-syms", str(path)).splitlines()):
        if len(f) >= 8 and f[0].endswith(":") and f[6] == "UND" and f[3] == "FUNC" and int(f[1], 16) != 0:
            out.add(f[7].split("@")[0])
    return out


def readelf_copy_relocs(path) -> set[str]:
    """Symbols the object holds a copy of (R_*_COPY relocations, by name without @VERSION)."""
    out = set()
    for f in (line.split() for line in _run("readelf", "-rW", str(path)).splitlines()):
        if len(f) >= 5 and f[2].startswith("R_") and f[2].endswith("_COPY"):
            out.add(f[4].split("@")[0])
    return out


def readelf_interpreter(path) -> str | None:
    m = re.search(r"\[Requesting program interpreter: ([^\]]+)\]", _run("readelf", "-lW", str(path)))
    return m.group(1) if m else None
