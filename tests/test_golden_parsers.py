"""Parsers against real recordings (tests/golden/README.md says how they were made).

The golden JSON files hold what the parsers made of the recordings when they were last
reviewed: a guard against unnoticed change, not an oracle. Beside each, the recording is read
again here with nothing from tracer — LD_DEBUG's lines by their own grammar, bindsnoop.bt's
records by the format its header documents — and the parser's events must be that reading,
binding by binding; which PLT slots a program has comes from readelf -r of the same source
built again (tests/csrc/modes.c).
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import ROOT, require
from oracles import readelf_symbol_relocs

from tracer.capture.bpftrace.decode import BpftraceDecoder
from tracer.capture.ld_debug.parse import LdDebugFileParser

GOLDEN = Path(__file__).parent / "golden"
# What the real files' PLTs hold, for the symbols that matter, so the result does
# not depend on this machine's copies of the binaries.
SLOTS = {"/tmp/modes-lazy": frozenset({"cos", "dlopen", "dlsym", "printf", "atof", "fprintf", "dlerror"}),
         "/lib/x86_64-linux-gnu/libm.so.6": frozenset({"__cxa_finalize"})}


@pytest.fixture(scope="module")
def modes_slots(tmp_path_factory) -> frozenset:
    """readelf's account of modes-lazy's PLT: its JUMP_SLOT symbols, built again as README.md says."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    exe = tmp_path_factory.mktemp("golden") / "modes-lazy"
    subprocess.run(["gcc", "-O0", "-o", str(exe), str(ROOT / "tests/csrc/modes.c"), "-lm", "-ldl", "-Wl,-z,lazy"],
                   check=True)
    return frozenset(n.split("@")[0] for _o, t, n in readelf_symbol_relocs(exe) if t == "R_X86_64_JUMP_SLOT")


def ld_debug_reading(text: str, slots: dict[str, frozenset], plt_only: dict[str, frozenset] | None = None) -> Counter:
    """Each binding line of one LD_DEBUG_OUTPUT file as (pid, requester, provider, symbol, version,
    phase, kind): requester and provider by file name, as glibc prints them; the phase is start-up
    while ld.so relocates objects, run time once it calls their code (the first "calling init",
    "initialize program" or "transferring control" after a relocation), and a new image (an exec in
    the same pid) starts with ld.so setting up the vDSO (its __vdso_clock_gettime); kind: eager at
    start-up; at run time lazy for the first binding of a symbol the requester has a PLT slot for
    (``slots``, by file name; None: not known), else dlsym. ``plt_only``: symbols an object references
    through PLT slots alone (readelf -r): ld.so binds none of those while it relocates that object lazily,
    so such a binding at start-up, once the object's lazy block is done, is a call (an early initialiser's)."""
    out: Counter = Counter()
    running, bound = False, set()
    lazy_done: set = set()  # objects relocated lazily whose block has ended
    block = None
    for line in text.splitlines():
        m = re.match(r"^\s*(\d+):\t(.*)$", line)
        if not m:
            continue
        pid, body = int(m.group(1)), m.group(2)
        if body.startswith(("calling init:", "initialize program:", "transferring control:")):
            running = True  # ld.so runs the objects' code from here on: their PLT calls bind lazily
            continue
        if body.startswith("relocation processing:"):
            running = False  # an object relocated (at start-up, or loaded by dlopen): its references bind now
            if block is not None and block[1]:
                lazy_done.add(block[0])
            name = body.split(":", 1)[1].strip()
            block = (os.path.basename(name.removesuffix(" (lazy)")), name.endswith(" (lazy)"))
            continue
        b = re.match(r"^binding file (.+?) \[\d+\] to (.+?) \[\d+\]: \w+ symbol `(.*?)'(?: \[(.*)\])?$", body)
        if not b:
            continue
        req, prov = os.path.basename(b.group(1)), os.path.basename(b.group(2))
        sym, ver = b.group(3), b.group(4)
        if running and req == prov == "linux-vdso.so.1" and sym == "__vdso_clock_gettime":
            running, bound = False, set()  # the next program's ld.so starting in this pid
        kind = None
        call = not running and req in lazy_done and sym in (plt_only or {}).get(req, ())
        if call:
            kind = ("lazy" if (req, sym) not in bound else "dlsym") if req in slots else None
        elif not running:
            kind = "eager"
        elif req in slots:
            kind = "lazy" if sym in slots[req] and (req, sym) not in bound else "dlsym"
        bound.add((req, sym))
        out[(pid, req, prov, sym, ver, "start-up" if not running and not call else "run time", kind)] += 1
    return out


KINDS = {1: "eager", 2: "lazy", 3: "dlsym"}  # bindsnoop.bt's header: "kind 1 eager, 2 lazy, 3 dlsym", +4 never returned


def bindsnoop_reading(text: str) -> tuple[Counter, list[tuple]]:
    """dscripts/bindsnoop.bt's output read by the format its header documents: the bindings as
    (pid, tid, ts_ns, exe, requester, provider, symbol, version, kind, resolved, latency_ns) — a
    link_map named by its N record of the same pid and image generation (an empty name is the
    program, whose path the E record of that generation gives), provider 0 a failed lookup — and
    the programs as (pid, ppid, exe, argv, exit code), one per exec."""
    names, exes, forks, argv, execs, exits = {}, {}, {}, {}, [], {}
    for line in text.splitlines():
        f = line.split("\t")
        if f[0] == "E":
            exes[(int(f[2]), int(f[1]))] = f[3]
            execs.append((int(f[2]), f[3], argv.pop(int(f[2]), [])))
        elif f[0] == "N":
            names[(int(f[1]), int(f[2]), int(f[3]))] = f[5]
        elif f[0] == "A":
            argv.setdefault(int(f[1]), []).append(f[3])
        elif f[0] == "F":
            forks[int(f[3])] = int(f[2])
        elif f[0] == "X":
            exits[int(f[2])] = int(f[3])
    bindings: Counter = Counter()
    for m in re.finditer(r"^@b\[(\d+), (\d+)\]: \((\d+), (\d+), (\d+), (\d+), (\d+), (\d+), ([^,]*), (.*)\)$", text,
                         re.M):
        tid, ts, pid, gen, req, prov, lat, kind = (int(x) for x in m.groups()[:8])
        exe = exes[(pid, gen)]
        name = {0: None} | {lm: (n or exe) for (p, g, lm), n in names.items() if (p, g) == (pid, gen)}
        bindings[(pid, tid, ts, exe, name[req], name[prov], m.group(10), m.group(9) or None, KINDS[kind & 3],
                  prov != 0, lat)] += 1
    last = {pid: exe for pid, exe, _a in execs}
    procs = [(pid, forks.get(pid), exe, a, (exits[pid] >> 8) if last[pid] == exe and pid in exits
              and exits[pid] & 0x7F == 0 else None) for pid, exe, a in execs]
    return bindings, procs


def _rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def test_ld_debug_golden(golden, modes_slots):
    out: list[tuple] = []
    parsers = {}
    for f in sorted((GOLDEN / "ld_debug").glob("ld.*")):
        pid = int(f.name.split(".")[1])
        p = parsers[pid] = LdDebugFileParser(pid, "/usr/bin:/bin", jump_slots=lambda path: SLOTS.get(path))
        lines = f.read_text().splitlines()
        half = len(lines) // 2  # fed in two pieces, as the tailer does
        p.feed(lines[:half], 1, out)
        p.feed(lines[half:], 2, out)
        p.flush(out)
    events = [dict(zip(["ts_ns", "pid", "exe", "requester", "symbol", "version", "provider", "kind"], r))
              for r in out]
    result = {
        "events": events,
        "images": sorted(r for p in parsers.values() for r in p.image_rows()),
        "exes": {pid: p.exes() for pid, p in parsers.items()},
        "other_pids": {pid: sorted(p.other_pids) for pid, p in parsers.items()},
    }
    # independent facts about the same recording
    by_pid: dict[int, int] = {}
    for f in (GOLDEN / "ld_debug").glob("ld.*"):
        for line in f.read_text().splitlines():
            if "\tbinding file " in line:
                pid = int(line.split(":", 1)[0])
                by_pid[pid] = by_pid.get(pid, 0) + 1
    ours: dict[int, int] = {}
    for e in events:
        ours[e["pid"]] = ours.get(e["pid"], 0) + 1
    assert ours == by_pid
    kinds = {(e["exe"], e["symbol"]): e["kind"] for e in events if e["symbol"] in ("cos", "sin")}
    assert set(kinds.values()) == {"lazy", "dlsym"}
    assert all(k == ("lazy" if sym == "cos" else "dlsym") for (_, sym), k in kinds.items())
    # the recording read again, line by line: the same bindings, and the kinds its phases and the
    # program's PLT (readelf, above) give; libm has no PLT slot for what it binds at run time (sin:
    # dlsym on its handle), as readelf says of this machine's libm too
    assert modes_slots == SLOTS["/tmp/modes-lazy"], "README's build of modes.c has these PLT slots"
    slots = {"modes-lazy": modes_slots, "libm.so.6": frozenset()}
    # libc calls ld.so's __tunable_get_val through a PLT slot only (readelf -r: a JUMP_SLOT, no GLOB_DAT), and
    # is relocated lazily in the recording: its start-up binding of it is an early initialiser's call
    relocs = subprocess.run(["readelf", "-rW", "/lib/x86_64-linux-gnu/libc.so.6"], capture_output=True, text=True).stdout
    jump = {m[1] for m in re.finditer(r"R_X86_64_JUMP_SLOT\s+\S+\s+(\w+)", relocs)}
    other = {m[2] for m in re.finditer(r"R_X86_64_(?!JUMP_SLOT)(\w+)\s+[0-9a-f]+\s+(\w+)", relocs)}
    plt_only = {"libc.so.6": frozenset(jump - other)}
    assert "__tunable_get_val" in plt_only["libc.so.6"]
    theirs: Counter = Counter()
    for f in sorted((GOLDEN / "ld_debug").glob("ld.*")):
        theirs += ld_debug_reading(f.read_text(), slots, plt_only)
    assert sum(theirs.values()) == sum(by_pid.values())
    mine = Counter((e["pid"], os.path.basename(e["requester"]), os.path.basename(e["provider"]), e["symbol"],
                    e["version"], "start-up" if e["kind"] == "eager" else "run time",
                    e["kind"] if os.path.basename(e["requester"]) in slots or e["kind"] == "eager" else None)
                   for e in events)
    assert mine == theirs
    run_time = {(k[1], k[3], k[6]) for k in theirs if k[5] == "run time" and k[6] is not None}
    assert ("modes-lazy", "cos", "lazy") in run_time and ("libm.so.6", "sin", "dlsym") in run_time
    golden("ld_debug/expected.json", result)  # last: what the oracle above cannot see did not change either


def test_bpftrace_golden(golden):
    data = (GOLDEN / "bpftrace" / "modes-fork-exec.tsv").read_bytes()
    dec = BpftraceDecoder()
    root = int(data.split(b"READY\t", 1)[1].split(b"\n", 1)[0])
    dec.tree.root(root, 1, ["bash", "-c", "/tmp/modes-lazy 0.25 >/dev/null; exec /tmp/modes-lazy 1 >/dev/null"], 0)
    cut = data.index(b"\n@b", len(data) // 2) + 1  # split mid-stream, on a line boundary
    tables = [t for t in (dec.feed(data[:cut]), dec.feed(data[cut:]), dec.finish()) if t is not None]
    events = pa.concat_tables(tables)
    # recorded before bindsnoop.bt measured off-CPU time (its READY has no record size): not measured,
    # never 0; left out of the golden file, which predates the column
    assert events["offcpu_ns"].null_count == events.num_rows
    result = {
        "events": _rows(events.drop(["offcpu_ns"])),
        "processes": dec.tree.processes_rows(),
        "relocations": dec.relocations_rows(),
        "images": [dict(zip(["pid", "path", "l_addr"], r)) for r in sorted(dec.image_biases())],
        "lost": dec.lost, "malformed": dec.malformed,
    }
    assert events.num_rows == data.count(b"\n@b") == int(data.split(b"@emitted: ", 1)[1].split(b"\n", 1)[0])
    assert dec.lost == 0 and dec.malformed == 0
    ev = events.to_pandas()
    # batched records arrive after the bash exec'd modes-lazy: each still names the program it ran in
    exec_ts = int(data.split(f"\t{root}\t/tmp/modes-lazy".encode(), 1)[0].rsplit(b"E\t", 1)[1])
    mine = ev[ev["pid"] == root]
    assert set(mine.loc[mine["ts_ns"] < exec_ts, "exe"]) == {"/usr/bin/bash"}
    assert set(mine.loc[mine["ts_ns"] > exec_ts, "exe"]) == {"/tmp/modes-lazy"}
    assert set(ev.loc[ev["symbol"] == "cos", "kind"]) == {"lazy"}
    assert set(ev.loc[ev["symbol"] == "sin", "kind"]) == {"dlsym"}
    assert ev.loc[~ev["resolved"], "provider"].isna().all()
    # the recording read again by the script's documented format: the same bindings, record by record,
    # and the same programs (the root's argv and parent are the ones the test gave the decoder)
    theirs, programs = bindsnoop_reading(data.decode())
    assert sum(theirs.values()) == events.num_rows
    mine = Counter((r["pid"], r["tid"], r["ts_ns"], r["exe"], r["requester"], r["provider"], r["symbol"], r["version"],
                    r["kind"], r["resolved"], r["latency_ns"]) for r in events.to_pylist())
    assert mine == theirs
    rows = [(p["pid"], p["ppid"], p["exe"], p["argv"], p["exit_code"]) for p in dec.tree.processes_rows()]
    programs = [(pid, ppid if ppid is not None else 1, exe, a, code) for pid, ppid, exe, a, code in programs]
    assert sorted(rows) == sorted(programs)
    golden("bpftrace/expected.json", result)  # last: what the oracle above cannot see did not change either


def test_bpftrace_out_of_order_names_lost_and_malformed():
    dec = BpftraceDecoder()
    dec.tree.root(10, 1, ["prog"], 0)
    first = dec.feed(b"E\t5\t10\t/usr/bin/prog\n"
                     b"@b[10, 7]: (10, 5, 170, 187, 900, 2, GLIBC_2.2.5, puts)\n"
                     b"N\t10\t5\t170\t0\t\n"
                     b"@b[10, 8]: (10, broken)\n"
                     b"Lost 3 events\n")
    assert first is None or first.num_rows == 0  # 187 (the provider) is not named yet
    second = dec.feed(b"N\t10\t5\t187\t139637976727552\t/lib/libc.so.6\n"
                      b"@b[10, 9]: (10, 5, 170, 0, 800, 1, , weak)\n"
                      b"@b[10, 11]: (10, 5, 170, 187, 700, 3, , operator, comma)\n")
    rows = second.to_pylist()
    assert [(r["symbol"], r["requester"], r["provider"], r["kind"], r["resolved"], r["version"]) for r in rows] == [
        ("puts", "/usr/bin/prog", "/lib/libc.so.6", "lazy", True, "GLIBC_2.2.5"),
        ("weak", "/usr/bin/prog", None, "eager", False, None),
        ("operator, comma", "/usr/bin/prog", "/lib/libc.so.6", "dlsym", True, None),
    ]
    assert dec.lost == 3 and dec.malformed == 1
    # the script made 5 records and 4 arrived (one malformed): one lost in a full map, 3 in the perf buffer
    dec.feed(b"@emitted: 4\nMARK\t0\n@emitted: 5\nMARK\t1\n@emitted: 0\n")  # the highest count holds
    assert dec.lost == 3 + 1 and dec.marks == {0, 1}
    # a record that arrives after its pid exec'd again keeps its own image's names and program
    dec.feed(b"E\t20\t10\t/usr/bin/other\nN\t10\t20\t170\t0\t\n")
    late = dec.feed(b"@b[10, 13]: (10, 5, 170, 187, 600, 2, , late)\n@b[10, 21]: (10, 20, 170, 0, 1, 1, , new)\n")
    assert [(r["symbol"], r["exe"], r["requester"]) for r in late.to_pylist()] == [
        ("late", "/usr/bin/prog", "/usr/bin/prog"), ("new", "/usr/bin/other", "/usr/bin/other")]
    # an object never named is reported by address at the end, not dropped
    dec.feed(b"@b[10, 12]: (10, 5, 204, 0, 1, 1, , x)\n")
    tail = dec.finish()
    assert tail.to_pylist()[0]["requester"] == "<link_map 0xcc>"


def _record(tid, ts, ints, version: bytes, symbol: bytes, width=128) -> tuple[bytes, bytes]:
    return (struct.pack("<QQ", tid, ts),
            struct.pack("<6Q", *ints) + version.ljust(width, b"\0")[:width] + symbol.ljust(width, b"\0")[:width])


def test_bpftrace_map_records_decode_like_printed_ones():
    """The same bindings as map entries (the kernel's bytes, as bpf_map reads them)
    and as bpftrace's print: the same events. Also: a symbol that fills its whole
    char[] has no NUL, a symbol that is not UTF-8 is kept with replacements, and a
    garbage byte after a string's NUL is not part of it."""
    printed = BpftraceDecoder()
    raw = BpftraceDecoder()
    head = b"E\t5\t10\t/usr/bin/prog\nN\t10\t5\t170\t0\t\nN\t10\t5\t187\t4096\t/lib/libc.so.6\n"
    for dec in (printed, raw):
        dec.tree.root(10, 1, ["prog"], 0)
        dec.feed(head)
    a = printed.feed(b"@b[10, 7]: (10, 5, 170, 187, 900, 2, GLIBC_2.2.5, puts)\n"
                     b"@b[11, 9]: (10, 5, 170, 0, 800, 1, , operator, comma)\n")
    recs = [_record(10, 7, (10, 5, 170, 187, 900, 2), b"GLIBC_2.2.5", b"puts"),
            _record(11, 9, (10, 5, 170, 0, 800, 1), b"", b"operator, comma\0junk")]
    b = raw.feed_records(b"".join(k for k, _ in recs), b"".join(v for _, v in recs), 2, 48 + 256)
    assert a.to_pylist() == b.to_pylist() and a.schema == b.schema
    odd = [_record(12, 1, (10, 5, 170, 187, 1, 3), b"", b"x" * 128), _record(12, 2, (10, 5, 170, 187, 1, 3), b"",
                                                                            b"bad\xff\xfe")]
    c = raw.feed_records(b"".join(k for k, _ in odd), b"".join(v for _, v in odd), 2, 48 + 256)
    assert c["symbol"].to_pylist() == ["x" * 128, "bad\ufffd\ufffd"]
    assert raw.received == 4 and raw.lost == 0


def test_bpftrace_forked_child_names_objects_through_its_parent():
    """A forked child that has not exec'd binds with its parent's objects, at the same
    addresses (gcc's vfork children bind execv lazily): the script announces a provider
    only where it is relocated, in the parent, and F carries the parent's image."""
    dec = BpftraceDecoder()
    dec.tree.root(10, 1, ["gcc"], 0)
    dec.feed(b"E\t5\t10\t/usr/bin/gcc\nN\t10\t5\t170\t0\t\nN\t10\t5\t187\t4096\t/lib/libc.so.6\n"
             b"F\t6\t10\t11\t5\nF\t7\t11\t12\t0\n")
    out = dec.feed(b"@b[11, 8]: (11, 0, 170, 187, 900, 2, GLIBC_2.2.5, execv)\n"
                   b"@b[12, 9]: (12, 0, 170, 187, 900, 2, GLIBC_2.2.5, execvp)\n"
                   b"@b[13, 9]: (13, 0, 170, 187, 900, 2, GLIBC_2.2.5, orphan)\n")
    assert [(r["pid"], r["exe"], r["requester"], r["provider"]) for r in out.to_pylist()] == [
        (11, "/usr/bin/gcc", "/usr/bin/gcc", "/lib/libc.so.6"), (12, "/usr/bin/gcc", "/usr/bin/gcc", "/lib/libc.so.6")]
    tail = dec.finish()  # pid 13's fork was never seen: named by address, not guessed
    assert tail.to_pylist()[0]["provider"] == "<link_map 0xbb>"


def test_bpftrace_a_fork_cycle_of_reused_pids_ends():
    """Pids are reused: 20 forks 21, both end without exec; a new 21 forks a new 20. Looking
    for a link_map's name up the forks (none of them exec'd, none relocated anything) then
    goes round 20 -> 21 -> 20: it must end, naming both objects by the records' own link_map
    addresses (170 and 187, in hex)."""
    dec = BpftraceDecoder()
    dec.feed(b"F\t1\t20\t21\t0\nF\t2\t21\t20\t0\n")
    assert dec.feed(b"@b[20, 3]: (20, 0, 170, 187, 900, 2, GLIBC_2.2.5, execv)\n") is None
    (row,) = dec.finish().to_pylist()
    assert (row["requester"], row["provider"]) == (f"<link_map {hex(170)}>", f"<link_map {hex(187)}>")


def test_bpftrace_a_relocation_whose_name_was_lost_is_listed_by_address():
    """A perf buffer that overflowed ("Lost N events") can drop the N record of an object whose
    R arrives: its relocation is listed under the R record's own link_map address (187, in hex)."""
    dec = BpftraceDecoder()
    dec.feed(b"Lost 1 events\nR\t50\t10\t0\t187\t1200\n")
    assert dec.relocations_rows() == [{"ts_ns": 50, "pid": 10, "path": f"<link_map {hex(187)}>", "duration_ns": 1200}]
    assert dec.lost == 1
