"""DYLD_PRINT_* logs written the way dyld writes them, for tests (no Mac here).

Every line comes from a format string of dyld's sources (../shared/research/macos-dyld.md,
apple-oss-distributions/dyld): ``fmt`` reproduces libplatform's _simple_vdprintf for them
(``%p`` → 0x + lowercase hex, ``%012lX`` zero-padded upper hex, ``%14.*s`` the name as it
is, ``%14s`` padded). A process's lines go out as dyld's writes do: the ``dyld[pid]: ``
prefix in one write, then the body in writes of 32 bytes and a last one with the
newline. ``interleave`` lands several processes' writes in one file the way O_APPEND
does: whole writes, each process's in its own order, the processes' mixed at random.

The generator also returns, per pid, the bindings it wrote (the oracle the tests
compare against), computed here and never by gotrace's parser.
"""
from __future__ import annotations

import hashlib
import random
import zlib
from dataclasses import dataclass, field

GENERATIONS = ("dyld-1122", "dyld-1286", "dyld-1323")  # %lu (...) / %llu (...) / %llu <...>)


def bind_line(gen: str, leaf: str, n: int, addr: int, target: str, symbol: str) -> str:
    if gen == "dyld-1323":
        return f"<{leaf}/bind#{n}> -> 0x{addr:x} <{target}/{symbol}>)"
    return f"<{leaf}/bind#{n}> -> 0x{addr:x} ({target}/{symbol})"  # %lu and %llu print the same


def segment_line(name: str, prot: str, start: int, end: int, trailing_space: bool = False) -> str:
    return f"{name} ({prot}) 0x{start:012X}->0x{end:012X}" + (" " if trailing_space else "")


def library_line(uuid: str | None, path: str) -> str:
    return f"<{uuid or 'no uuid'}> {path}"


def uuid_for(name: str, pid: int = 0) -> str:
    h = hashlib.md5(name.encode()).hexdigest().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Proc:
    """One process's log and what it bound."""

    pid: int
    exe: str
    lines: list[str] = field(default_factory=list)
    bindings: list[tuple] = field(default_factory=list)  # (requester, symbol, provider, kind, resolved)
    images: dict = field(default_factory=dict)  # path -> __TEXT start


CACHE = ["/usr/lib/libSystem.B.dylib", "/usr/lib/system/libsystem_c.dylib", "/usr/lib/libc++.1.dylib"]
CACHE_TEXT_ARM64 = {p: 0x180000000 + 0x100000 * i for i, p in enumerate(CACHE)}
CACHE_TEXT_X86 = {p: 0x7FF800000000 + 0x100000 * i for i, p in enumerate(CACHE)}
SYMBOLS = ["_malloc", "_free", "_printf", "_strlen", "_memcpy", "_puts", "_exit", "_getenv", "_write",
           "_open", "_close", "_read", "__ZNSt3__14coutE", "_pthread_create", "_dlopen", "_dlsym"]


def program(pid: int, exe: str, gen: str = "dyld-1323", dylibs: tuple[str, ...] = (), binds: int = 20,
            dlsyms: tuple[tuple[str, bool], ...] = (), rosetta: bool = False, seed: int = 0,
            missing_weak: tuple[str, ...] = ()) -> Proc:
    """A program's launch as DYLD_PRINT_LIBRARIES/SEGMENTS/BINDINGS/APIS log it:
    the main executable, the cache dylibs, its own dylibs, their bind targets,
    then dlopen of its first dylib and dlsym calls (name, found)."""
    rnd = random.Random(seed * 7919 + zlib.crc32(exe.encode()) % 7919)  # one program binds alike in every process
    p = Proc(pid, exe)
    slide = random.Random(pid).randrange(1, 0x4000) << 14  # ASLR: each process its own
    cache = CACHE_TEXT_X86 if rosetta else CACHE_TEXT_ARM64
    text = (0x100000000 + slide) if not rosetta else (0x100000000 + slide)
    p.lines.append(library_line(uuid_for(exe), exe))
    p.lines.append(f"Kernel mapped {exe}")
    p.lines.append(segment_line("__PAGEZERO", "...", slide, 2 * slide + 0x100000000, True))
    p.lines.append(segment_line("__TEXT", "r.x", text, text + 0x8000, True))
    p.lines.append(segment_line("__DATA_CONST", "rw.", text + 0x8000, text + 0xC000, True))
    p.lines.append(segment_line("__LINKEDIT", "r..", text + 0xC000, text + 0x10000, True))
    p.images[exe] = text
    for path in CACHE:
        p.lines.append(f"Using mapping in dyld cache for {path}")
        p.lines.append(segment_line("__TEXT", "r.x", cache[path], cache[path] + 0x80000, True))
        p.lines.append(segment_line("__DATA_CONST", "rw.", cache[path] + 0x40000000, cache[path] + 0x40004000, True))
        p.lines.append(library_line(uuid_for(path), path))
        p.images[path] = cache[path]
    base = text + 0x100000
    for k, path in enumerate(dylibs):
        start = base + k * 0x20000 + (random.Random(pid + k).randrange(0, 16) << 14)
        p.lines.append(f"Mapping {path}")
        p.lines.append(segment_line("__TEXT", "r.x", start, start + 0x4000))
        p.lines.append(segment_line("__DATA", "rw.", start + 0x4000, start + 0x8000))
        if rosetta:
            p.lines.append(f"{'ROSETTA':>14} (r.x) 0x{start + 0x8000:012X}->0x{start + 0xC000:012X}")
        p.lines.append(library_line(uuid_for(path), path))
        p.images[path] = start
    leaf = exe.rsplit("/", 1)[-1]
    for n in range(binds):
        sym = SYMBOLS[rnd.randrange(len(SYMBOLS))]
        target = CACHE[rnd.randrange(len(CACHE))]
        addr = cache[target] + rnd.randrange(0x100, 0x7FF00)
        p.lines.append(bind_line(gen, leaf, n, addr, target.rsplit("/", 1)[-1], sym))
        p.bindings.append((exe, sym, target, "eager", True))
        if rnd.random() < 0.3:
            p.lines.append(f"fixup: *0x{text + 0x8000 + 8 * n:010X} = 0x{addr:016X} <{leaf}/bind#{n}>")
    for w, sym in enumerate(missing_weak, start=binds):
        p.lines.append(f"<{leaf}/bind#{w}> -> missing-weak-bind ({sym})")
        p.bindings.append((exe, sym, None, "eager", False))
    for path in dylibs:
        dleaf = path.rsplit("/", 1)[-1]
        for n in range(3):
            sym = SYMBOLS[rnd.randrange(len(SYMBOLS))]
            addr = cache[CACHE[0]] + rnd.randrange(0x100, 0x7FF00)
            p.lines.append(bind_line(gen, dleaf, n, addr, CACHE[0].rsplit("/", 1)[-1], sym))
            p.bindings.append((path, sym, CACHE[0], "eager", True))
    if dlsyms and dylibs:
        lib = dylibs[0]
        handle = 0x2000000000 + random.Random(pid).randrange(1, 1 << 20) * 16
        p.lines.append(f'dlopen("{lib}", 0x00000002)')
        p.lines.append(f"      dlopen({lib.rsplit('/', 1)[-1]}) => 0x{handle:x}")
        for name, found in dlsyms:
            p.lines.append(f'dlsym(0x{handle:x}, "{name}")')
            if found:
                addr = p.images[lib] + random.Random(pid + len(name)).randrange(0x10, 0x3FF0)
                p.lines.append(f'     dlsym("{name}") => 0x{addr:x}')
                p.bindings.append((None, "_" + name, lib, "dlsym", True))
            else:
                p.lines.append(f'     dlsym("{name}") => NULL')
                p.bindings.append((None, "_" + name, None, "dlsym", False))
    return p


def writes(pid: int, lines: list[str]) -> list[list[bytes]]:
    """Each line as dyld's writes: [prefix, 32-byte pieces..., the last piece with the newline]."""
    out = []
    for line in lines:
        body = (line + "\n").encode()
        out.append([f"dyld[{pid}]: ".encode()] + [body[i:i + 32] for i in range(0, len(body), 32)])
    return out


def interleave(procs: list[Proc], seed: int = 0, burst: float = 0.5) -> bytes:
    """The file several processes appending at once leave: whole writes, each
    process's in order, the processes' mixed at random. ``burst`` is the chance
    that a process writes its next write right away (the others then wait)."""
    rnd = random.Random(seed)
    queues = [[w for line in writes(p.pid, p.lines) for w in line] for p in procs]
    pos = [0] * len(queues)
    out = []
    live = [i for i, q in enumerate(queues) if q]
    cur = None
    while live:
        if cur is None or cur not in live or rnd.random() > burst:
            cur = rnd.choice(live)
        out.append(queues[cur][pos[cur]])
        pos[cur] += 1
        if pos[cur] == len(queues[cur]):
            live.remove(cur)
    return b"".join(out)


def sequential(procs: list[Proc]) -> bytes:
    """One process after the other (no interleaving at all)."""
    return b"".join(b"".join(w for line in writes(p.pid, p.lines) for w in line) for p in procs)


def timed(procs: list[Proc], seed: int = 0, write_us: float = 2.0, gap_us: float = 4.0,
          start_spread_us: float = 200.0) -> bytes:
    """The file processes running at once leave, with time in it: each write takes
    ``write_us``, a process does ``gap_us`` (on average, exponential) of work between
    two lines, and the processes start within ``start_spread_us`` of each other.
    Writes land in time order (a process's own always in its order)."""
    rnd = random.Random(seed)
    stamped = []
    for k, p in enumerate(procs):
        t = rnd.uniform(0, start_spread_us)
        for line in writes(p.pid, p.lines):
            for w in line:
                stamped.append((t, k, len(stamped), w))
                t += write_us * rnd.uniform(0.5, 1.5)
            t += rnd.expovariate(1 / gap_us)
    stamped.sort()
    return b"".join(w for _t, _k, _i, w in stamped)
