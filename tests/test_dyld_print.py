"""dyld's DYLD_PRINT_* account, read without a Mac.

Not run on macOS: every line here is built from the verbatim format strings of dyld's
sources (tests/dyldlog.py, ../shared/research/macos-dyld.md), for each dyld generation,
and written the way dyld writes (prefix, then the body in 32-byte pieces) with the
processes' writes interleaved as O_APPEND lands them. The oracle is what the generator
wrote for each pid, never gotrace's parser.
"""
from __future__ import annotations

import collections
import re
import subprocess

import pytest

from dyldlog import GENERATIONS, bind_line, interleave, program, segment_line, sequential, timed, writes
from tracer.capture.dyld_print import lines as L
from tracer.capture.dyld_print.log import DyldLog


def read(data: bytes, chunk: int = 4096):
    log = DyldLog()
    rows = []
    for i in range(0, len(data), chunk):
        rows += log.feed(data[i:i + chunk], i)
    rows += log.close(len(data))
    return log, rows


def leaf(p):
    return None if p is None else p.rsplit("/", 1)[-1]


def by_pid(rows, full=True):
    out = collections.defaultdict(collections.Counter)
    for _ts, pid, _exe, req, sym, prov, kind, ok in rows:
        out[pid][(req, sym, prov, kind, ok) if full else (leaf(req), sym, kind)] += 1
    return out


def truth(procs, full=True):
    return {p.pid: collections.Counter(b if full else (leaf(b[0]), b[1], b[3]) for b in p.bindings) for p in procs}


@pytest.mark.parametrize("gen", GENERATIONS)
def test_bind_forms_of_each_generation(gen):
    line = bind_line(gen, "prog", 7, 0x18004F866, "libSystem.B.dylib", "_dlopen")
    assert L.parse(line) == (L.BINDING, "prog", 7, 0x18004F866, "libSystem.B.dylib", "_dlopen", gen != "dyld-1323")
    assert L.viable(line, complete=True)


@pytest.mark.parametrize("body, parsed", [
    # macOS 26: function variants; weak-def overrides keep the older form in every generation
    ("<prog/bind#3> -> 0x1a2b <libsystem_platform.dylib/variant-table#2('_memcpy')>)",
     (L.BINDING, "prog", 3, 0x1A2B, "libsystem_platform.dylib", "_memcpy", False)),
    ("<prog/bind#0> -> 0x1a2b (libc++abi.dylib/__ZdlPv)", (L.BINDING, "prog", 0, 0x1A2B, "libc++abi.dylib", "__ZdlPv", True)),
    ("<prog/bind#9> -> 0x1 <<none>/_abs>)", (L.BINDING, "prog", 9, 1, None, "_abs", False)),
    ("<prog/bind#4> -> missing-weak-bind (_weak_thing)", (L.MISSING_WEAK, "prog", 4, "_weak_thing")),
    # PrebuiltLoader: no names
    ("<sh/bind#1> -> 0x10", (L.BINDING, "sh", 1, 0x10, None, None, False)),
    ("<sh/bind#1> -> 0x10 (libc++.1.dylib+0x0000ABCD)", (L.BINDING, "sh", 1, 0x10, "libc++.1.dylib", None, False)),
    ("<sh/bind#2(variant-table#1)> -> 0x10", (L.BINDING, "sh", 2, 0x10, None, None, False)),
    ("<sh/bind#5> -> missing-weak-bind", (L.MISSING_WEAK, "sh", 5, None)),
    ("<1B2C3D4E-0000-1111-2222-333344445555> /usr/lib/libSystem.B.dylib",
     (L.LIB, "1B2C3D4E-0000-1111-2222-333344445555", "/usr/lib/libSystem.B.dylib")),
    ("<no uuid> /tmp/prog", (L.LIB, None, "/tmp/prog")),
    ("Mapping /tmp/a.dylib (slice offset=0x4000)", (L.MAP, "Mapping", "/tmp/a.dylib")),
    ("Kernel mapped /tmp/prog", (L.MAP, "Kernel mapped", "/tmp/prog")),
    ("Using mapping in dyld cache for /usr/lib/libc++.1.dylib", (L.MAP, "Using mapping in dyld cache for",
                                                                 "/usr/lib/libc++.1.dylib")),
    ("__TEXT (r.x) 0x000104A3C000->0x000104A40000 ", (L.SEG, "__TEXT", "r.x", 0x104A3C000, 0x104A40000)),
    ("       ROSETTA (r.x) 0x000104A40000->0x000104A48000", (L.SEG, "ROSETTA", "r.x", 0x104A40000, 0x104A48000)),
    ('dlopen("/tmp/p.dylib", 0x00000001)', (L.OPEN, "/tmp/p.dylib")),
    ("      dlopen(p.dylib) => 0x2d1f", (L.OPENED, "p.dylib", 0x2D1F, None)),
    ("      dlopen(q.dylib) => NULL, 'no such file'", (L.OPENED, "q.dylib", None, "no such file")),
    ('dlsym(0xfffffffffffffffe, "foo")', (L.SYM, 0xFFFFFFFFFFFFFFFE, "foo")),
    ('     dlsym("foo") => 0x104a3c100', (L.FOUND, "foo", 0x104A3C100, "")),
    ('     dlsym("bar") => NULL (blocked)', (L.FOUND, "bar", None, "(blocked)")),
    ("fixup: *0x0001000080A0 = 0x0000000180123456 <prog/bind#3>", (L.FIX, "prog", 3)),
    ("rebase: *0x000100008000 = 0x000100003F40 (*prog+0x000000008000 = 0x000100000000+0x000000003F40)",
     (L.IGNORED,)),
    ("something dyld prints one day", (L.UNKNOWN,)),
])
def test_line_forms(body, parsed):
    assert L.parse(body) == parsed


def test_one_process_log_in_full():
    procs = [program(501, "/Users/me/go/bin/hello", dylibs=("/opt/homebrew/lib/libz.1.dylib",), binds=30,
                     dlsyms=(("deflate", True), ("nope", False)), missing_weak=("_weak_one",))]
    log, rows = read(sequential(procs))
    assert by_pid(rows) == truth(procs)
    (proc,) = log.processes()
    assert proc["exe"] == "/Users/me/go/bin/hello" and proc["arch"] == "arm64" and proc["translator"] is None
    images = {r["path"]: r for r in log.images()}
    assert {p: images[p]["load_base"] for p in procs[0].images} == procs[0].images
    assert log.stats().malformed == 0


@pytest.mark.parametrize("gen", GENERATIONS)
def test_processes_one_after_the_other(gen):
    procs = [program(100 + i, f"/usr/local/bin/tool{i % 3}", gen=gen, dylibs=(f"/opt/lib/libz{i}.dylib",),
                     binds=25, dlsyms=(("foo", True),), seed=i) for i in range(5)]
    log, rows = read(sequential(procs))
    assert by_pid(rows) == truth(procs)
    assert [p["pid"] for p in log.processes()] == [100, 101, 102, 103, 104]  # start order
    assert log.stats().malformed == 0


def test_a_prefix_followed_by_another_prefix():
    """The case the research note describes: two prefixes, then both bodies."""
    a = bind_line("dyld-1323", "cc-real", 0, 0x180001000, "libSystem.B.dylib", "_malloc")
    b = bind_line("dyld-1323", "ld-real", 0, 0x180002000, "libSystem.B.dylib", "_free")
    head = [program(11, "/usr/bin/cc-real", binds=0), program(12, "/usr/bin/ld-real", binds=0)]
    data = sequential(head)
    data += b"dyld[11]: dyld[12]: " + (a + "\n").encode() + (b + "\n").encode()
    _log, rows = read(data)
    got = {(pid, sym) for _t, pid, _e, _r, sym, *_ in rows}
    assert got == {(11, "_malloc"), (12, "_free")}


def test_pieces_of_32_bytes():
    """_simple_vdprintf's pieces: lines ending just before, on and after a 32-byte
    boundary, two processes' pieces alternating; and a body with no newline."""
    for n in (63, 64, 65, 96, 97):
        exe = {pid: f"/p{pid}/" + "x" * (n - 1 - 14 - 5) for pid in (21, 22)}
        head = b"".join(w for pid in exe for line in writes(pid, [f"<no uuid> {exe[pid]}"]) for w in line)
        (wa,), (wb,) = writes(21, [f"Kernel mapped {exe[21]}"]), writes(22, [f"Kernel mapped {exe[22]}"])
        assert len(f"Kernel mapped {exe[21]}\n") == n
        assert all(len(p) == 32 for p in wa[1:-1]) and 0 < len(wa[-1]) <= 32
        data = head + b"".join(x for pair in zip(wa, wb, strict=True) for x in pair)  # prefix, prefix, piece, piece ...
        log, _ = read(data)
        assert sorted(log.accounts) == [21, 22]  # both processes, or the next line checks nothing
        assert all(a.programs[0].kernel_mapped for a in log.accounts.values()), n
        assert log.stats().malformed == 0
    log, _ = read(b"dyld[7]: <no uuid> /bin/x\ndyld[7]: _dyld_get_shared_cache_range(0x1)dyld[7]:  => 0x0,0x0\n")
    assert log.processes()[0]["exe"] == "/bin/x" and log.stats().malformed == 0


def test_lines_that_swap_cleanly_are_counted_not_guessed():
    """Two library lines whose second pieces could be either's: no rule of dyld's
    tells them apart, so neither is given to a pid."""
    lines = {pid: f"<11111111-2222-3333-4444-5555555555{pid}> /p{pid}/xxxxxxxxxxxxxxxxxxx" for pid in (21, 22)}
    (wa,), (wb,) = writes(21, [lines[21]]), writes(22, [lines[22]])
    log, _ = read(b"".join(x for pair in zip(wa, wb, strict=True) for x in pair))
    assert len(log.processes()) == 2 and all(p["exe"] is None for p in log.processes())
    assert log.stats().ambiguous == 2


def test_unknown_lines_are_counted():
    procs = [program(5, "/bin/t", binds=3)]
    procs[0].lines[5:5] = ["a line of a future dyld", "another one"]
    log, rows = read(sequential(procs))
    assert by_pid(rows) == truth(procs)
    assert log.stats().unknown == 2


def test_rosetta_segment_and_the_x86_64_cache():
    procs = [program(7, "/usr/local/bin/amd64tool", dylibs=("/usr/local/lib/liba.dylib",), rosetta=True),
             program(8, "/opt/homebrew/bin/native", binds=2)]
    log, _ = read(sequential(procs))
    rows = {p["pid"]: p for p in log.processes()}
    assert (rows[7]["arch"], rows[7]["translator"]) == ("x86_64", "rosetta")
    assert (rows[8]["arch"], rows[8]["translator"]) == ("arm64", None)


def test_exec_in_the_same_pid_is_a_new_program():
    first, second = program(9, "/usr/bin/arch-like", binds=2), program(9, "/usr/local/bin/real", binds=4)
    log, rows = read(sequential([first, second]))
    assert [p["exe"] for p in log.processes()] == ["/usr/bin/arch-like", "/usr/local/bin/real"]
    assert collections.Counter(r[2] for r in rows) == {"/usr/bin/arch-like": 2, "/usr/local/bin/real": 4}


@pytest.mark.parametrize("gen", GENERATIONS)
@pytest.mark.parametrize("seed", range(4))
def test_interleaved_writes_never_go_to_the_wrong_pid(gen, seed):
    """Processes of the same and of different programs writing at once, at every
    speed from lockstep to sparse; whatever cannot be told apart is counted."""
    for n, gap, how in ((2, 2.0, "timed"), (3, 5.0, "timed"), (4, 20.0, "timed"), (6, 5.0, "timed"),
                        (3, 0.0, "random")):
        procs = [program(100 + i, f"/usr/local/bin/tool{i % 3}", gen=gen, dylibs=(f"/opt/lib/libz{i % 3}.dylib",),
                         binds=60, dlsyms=(("foo", True), ("bar", False)), seed=seed) for i in range(n)]
        data = timed(procs, seed=seed, gap_us=gap) if how == "timed" else interleave(procs, seed=seed, burst=0.5)
        log, rows = read(data, chunk=1000 + 37 * seed)  # the file read as it grows, in odd sizes
        expected = truth(procs, full=False)
        for pid, got in by_pid(rows, full=False).items():
            assert not got - expected[pid], (n, gap, pid, got - expected[pid])
        st = log.stats()
        written = sum(len(p.lines) for p in procs)
        assert st.bodies + st.ambiguous + st.lost == written


def test_lightly_interleaved_logs_are_mostly_attributed():
    """Two programs starting together, ~20 µs of work between lines (dyld resolving
    symbols): most lines go to their process (figures measured, not a promise)."""
    procs = [program(100 + i, f"/usr/local/bin/tool{i}", dylibs=(f"/opt/lib/libz{i}.dylib",), binds=200, seed=1)
             for i in range(2)]
    log, rows = read(timed(procs, seed=5, gap_us=20.0))
    st = log.stats()
    assert st.bodies / (st.bodies + st.malformed) > 0.85
    assert sum(by_pid(rows, full=False)[p.pid].total() for p in procs) > 0.8 * sum(len(p.bindings) for p in procs)


def test_slide_from_the_file_on_this_machine(binaries):
    """Link-time __TEXT vmaddr and LC_UUID as llvm-objdump reads them (the oracle), the
    load address as dyld would log it: the slide comes out, and a file whose UUID is
    not the one dyld logged (rebuilt since) gives none."""
    exe = str(binaries("go-darwin-arm64"))
    text = subprocess.run(["llvm-objdump-16", "--macho", "--private-headers", exe], capture_output=True,
                          text=True, check=True).stdout
    vmaddr = int(re.search(r"segname __TEXT\n\s+vmaddr (0x[0-9a-f]+)", text).group(1), 16)
    uuid = re.search(r"uuid ([0-9A-F-]{36})", text).group(1)
    slide = 0x4A3C000
    for logged_uuid, expect in ((uuid, slide), ("00000000-0000-0000-0000-000000000000", None)):
        lines = [f"<{logged_uuid}> {exe}", f"Kernel mapped {exe}",
                 segment_line("__PAGEZERO", "...", slide, 2 * slide + vmaddr, True),
                 segment_line("__TEXT", "r.x", vmaddr + slide, vmaddr + slide + 0x4000, True)]
        log, _ = read(b"".join(w for line in writes(3, lines) for w in line))
        (img,) = log.images()
        assert img["load_base"] == vmaddr + slide and img["uuid"] == logged_uuid
        assert img["slide"] == expect and img["link_base"] == (vmaddr if expect is not None else None)


def test_unnamed_binds_are_counted():
    """PrebuiltLoader's bind lines name no symbol (dyld-1323's "<%s/bind#%llu> -> %p" and
    "<%s/bind#%llu> -> %p (%s+0x%08llX)", ../shared/research/macos-dyld.md): the session's
    unnamed_binds is the number of such lines written here."""
    from dyldlog import CACHE_TEXT_ARM64

    p = program(77, "/usr/local/bin/tool", binds=4)
    lib = "/usr/lib/libSystem.B.dylib"
    extra = [f"<tool/bind#{4 + k}> -> 0x{CACHE_TEXT_ARM64[lib] + 0x40 * k + 0x10:x}" for k in range(3)]
    extra += [f"<tool/bind#{7 + k}> -> 0x{CACHE_TEXT_ARM64[lib] + 0x20 * k:x} (libSystem.B.dylib+0x{0x20 * k:08X})"
              for k in range(2)]
    p.lines += extra
    log, _rows = read(sequential([p]))
    assert log.stats().prebuilt == len(extra)


def test_a_process_starts_when_its_first_line_is_read():
    """start_ns of a process is the time its first line was read (dyld prints none): the
    times here are the offsets of the chunks the test hands over, one line a chunk."""
    procs = [program(100 + i, f"/usr/local/bin/tool{i}", binds=3, seed=i) for i in range(2)]
    log = DyldLog()
    first_read = {}
    t = 0
    for p in procs:
        for line in writes(p.pid, p.lines):
            first_read.setdefault(p.pid, t)
            log.feed(b"".join(line), t)
            t += 1000
    log.close(t)
    assert {r["pid"]: r["start_ns"] for r in log.processes()} == first_read


def test_dlsym_without_segments_goes_to_the_image_dlopen_named():
    """Without DYLD_PRINT_SEGMENTS no address can be placed: a dlsym's provider is then
    the image behind the handle dlopen returned (the generator's truth)."""
    p = program(55, "/Users/me/go/bin/hello", dylibs=("/opt/homebrew/lib/libz.1.dylib",), binds=5,
                dlsyms=(("deflate", True), ("nope", False)))
    segments = re.compile(r"^(Mapping |Kernel mapped |Using mapping in dyld cache for | *\S+ \([r.][w.][x.]\) 0x)")
    p.lines = [x for x in p.lines if not segments.match(x)]
    log, rows = read(sequential([p]))
    assert by_pid(rows) == truth([p])


@pytest.mark.parametrize("seed", range(3))
def test_lines_gotrace_ignores_interleaved(seed):
    """DYLD_PRINT_FIXUPS' rebase lines ("fixup: *0x%010lX = 0x%016lX <rebase>") and
    DYLD_PRINT_INITIALIZERS' ("running initializer %p in %s"), dyld's format strings, in
    logs written at once: still nothing in the wrong pid, every line accounted."""
    procs = []
    for i in range(3):
        p = program(300 + i, f"/usr/local/bin/tool{i % 2}", dylibs=(f"/opt/lib/libz{i}.dylib",), binds=20,
                    dlsyms=(("foo", True),), seed=seed)
        out = []
        for k, x in enumerate(p.lines):
            out.append(x)
            if x.startswith("<") and "/bind#" in x:
                out.append(f"fixup: *0x{0x100008000 + 8 * k:010X} = 0x{0x100000000 + 16 * k:016X} <rebase>")
        out.append(f"running initializer 0x{0x100003f00 + i:x} in {p.exe}")
        p.lines = out
        procs.append(p)
    for data in (interleave(procs, seed=seed, burst=0.3), timed(procs, seed=seed, gap_us=3.0)):
        log, rows = read(data, chunk=777)
        expected = truth(procs, full=False)
        for pid, got in by_pid(rows, full=False).items():
            assert not got - expected[pid]
        st = log.stats()
        assert st.bodies + st.ambiguous + st.lost == sum(len(p.lines) for p in procs)


@pytest.mark.parametrize("form", ["no library lines", "no uuid"])
def test_logs_of_the_rarer_forms_are_read_whole(form):
    """Two processes one after the other (so nothing is ambiguous), each logged without
    DYLD_PRINT_LIBRARIES, or with images that have no LC_UUID ("<%s> %s" with "no uuid",
    dyld's format): every binding goes to its pid and no line is lost."""
    procs = [program(400 + i, f"/usr/local/bin/tool{i}", dylibs=(f"/opt/lib/libz{i}.dylib",), binds=10,
                     dlsyms=(("foo", True),), seed=i) for i in range(2)]
    lib = re.compile(r"^<([0-9A-F-]{36})> (/.*)$")
    for p in procs:
        if form == "no library lines":
            p.lines = [x for x in p.lines if not lib.match(x)]
        else:
            p.lines = [lib.sub(r"<no uuid> \2", x) for x in p.lines]
    for data in (sequential(procs), timed(procs, seed=1, gap_us=5.0, start_spread_us=1e9)):
        log, rows = read(data, chunk=97)
        assert by_pid(rows, full=False) == truth(procs, full=False)
        st = log.stats()
        assert (st.ambiguous, st.lost) == (0, 0)


def test_an_exec_takes_its_main_image_to_the_new_program():
    """An exec in the same pid: the new program's library line ("<%s> %s", its UUID) comes
    before its "Kernel mapped" line, while the pid still runs the old program. The
    image table has the new main executable once, with the UUID its line printed."""
    from dyldlog import uuid_for

    first, second = program(9, "/usr/bin/arch-like", binds=2), program(9, "/usr/local/bin/real", binds=4)
    log, _rows = read(sequential([first, second]))
    mine = [r for r in log.images() if r["path"] == "/usr/local/bin/real"]
    assert [r["uuid"] for r in mine] == [uuid_for("/usr/local/bin/real")]
    assert [r["load_base"] for r in mine] == [second.images["/usr/local/bin/real"]]


@pytest.mark.parametrize("seed", range(4))
def test_no_line_dyld_really_wrote_next_is_refused(seed):
    """account.accepts and start_ok promise never to refuse a line that really is the pid's
    next (dyld's own orders). Two or three processes at once keep the guesses far below
    the demux's bound, so a line is lost only when every guess was refused, the true one
    included: here none may be. The logs are the generator's, in dyld's orders, with
    images without LC_UUID ("<no uuid> %s") among them."""
    lib = re.compile(r"^<([0-9A-F-]{36})> (/opt/.*)$")
    for n, gap, how in ((2, 2.0, "timed"), (2, 20.0, "timed"), (2, 0.0, "random"), (3, 5.0, "timed")):
        procs = [program(100 + i, f"/usr/local/bin/tool{i % 3}", dylibs=(f"/opt/lib/libz{i % 3}.dylib",),
                         binds=60, dlsyms=(("foo", True), ("bar", False)), seed=seed, rosetta=(i == 1))
                 for i in range(n)]
        for p in procs[1:]:
            p.lines = [lib.sub(r"<no uuid> \2", x) for x in p.lines]
        data = timed(procs, seed=seed, gap_us=gap) if how == "timed" else interleave(procs, seed=seed, burst=0.5)
        log, _rows = read(data, chunk=1000)
        assert log.stats().lost == 0, (n, gap, how)


def test_a_no_uuid_library_line_inside_another_pids_line_is_its_own():
    """dyld writes an image's library line ("<no uuid> PATH" for an image without LC_UUID) after its
    Mapping and segment lines; written while another process's line is cut in two, it is still
    the only line that pid can write next (its path is the one it mapped). Oracle: the
    generator's own lines (dyld's format strings) and which process wrote each."""
    lib = "/opt/homebrew/Cellar/something/1.2.3/lib/libsomething-long.dylib"
    a = program(100, "/usr/local/bin/toolA", dylibs=(lib,), binds=5, seed=1)
    b = program(101, "/usr/local/bin/toolB", dylibs=("/opt/lib/libq.dylib",), binds=5, seed=2)
    a.lines = [re.sub(r"^<[0-9A-F-]{36}> (/opt/.*)$", r"<no uuid> \1", x) for x in a.lines]
    i = next(k for k, x in enumerate(a.lines) if x == f"<no uuid> {lib}")
    j = next(k for k, x in enumerate(b.lines) if len(x) > 40)
    wa, wb = writes(100, a.lines), writes(101, b.lines)
    order = wa[:i] + wb[:j] + [wb[j][:2], wa[i], wb[j][2:]] + wa[i + 1:] + wb[j + 1:]
    log, rows = read(b"".join(w for group in order for w in group))
    assert (log.stats().lost, log.stats().ambiguous) == (0, 0)
    assert by_pid(rows) == truth([a, b])


def _launches():
    """Programs as dyld logs them (the generator: dyld's format strings), of every kind of line:
    cache and own dylibs, Rosetta's segment, dlopen and dlsym calls with their results, an image
    without LC_UUID, a missing weak bind."""
    out = [program(100, "/usr/local/bin/tool", dylibs=("/opt/lib/liba.dylib", "/opt/lib/libb.dylib"), binds=6,
                   dlsyms=(("foo", True), ("bar", False)), missing_weak=("_w",), seed=3),
           program(101, "/usr/local/bin/amd64tool", dylibs=("/opt/lib/libx.dylib",), binds=4,
                   dlsyms=(("baz", True),), rosetta=True, seed=4)]
    out[1].lines = [re.sub(r"^<[0-9A-F-]{36}> (/opt/.*)$", r"<no uuid> \1", x) for x in out[1].lines]
    return out


def _account_after(p, lines):
    """The account of ``p``'s pid once ``lines`` (its first ones) are taken."""
    import copy

    head = copy.deepcopy(p)
    head.lines = list(lines)
    log, _ = read(sequential([head]))
    return log._account(p.pid)  # a pid with nothing taken yet has a fresh one


def test_no_line_is_refused_whatever_of_its_past_is_still_pending():
    """account.accepts(body, pending) promises never to refuse a line the pid really writes next,
    whichever of its previous lines the demux still holds undecided (pending) rather than taken:
    a bind into a cache image whose Mapping and segment lines are pending among them. Oracle: the
    generator's lines, in the order dyld writes them."""
    for p in _launches():
        for i in range(len(p.lines)):
            acc = _account_after(p, p.lines[:i])
            refused = [k for k in range(i, len(p.lines)) if not acc.accepts(p.lines[k], p.lines[i:k])]
            assert not refused, (p.pid, i, [p.lines[k] for k in refused[:2]])


def test_lines_given_up_with_candidates_leave_the_next_ones_acceptable():
    """Lines the demux gave up with candidates (here: exactly the lines the pid wrote there) must
    leave every later true line acceptable — a dlopen call among them opens a call its result
    closes later. Oracle: the generator's lines."""
    for p in _launches():
        for i in range(len(p.lines)):
            for j in range(i + 1, min(i + 5, len(p.lines)) + 1):
                acc = _account_after(p, p.lines[:i])
                acc.lost_lines(p.lines[i:j])
                for k in range(j, len(p.lines)):
                    assert acc.accepts(p.lines[k], []), (p.pid, i, j, p.lines[k])
                    acc.take(p.lines[k], k, k, [])


def test_lines_dyld_cannot_write_next_are_refused():
    """What the demux decides by: a line its pid cannot write next is refused. dyld logs one result
    per dlopen call ("      dlopen(%s) => %p" after "dlopen(\\"%s\\", 0x%08X)") and segment lines only
    right after their image's Mapping line or another segment line (Loader.cpp's mapSegments)."""
    (p, _) = _launches()
    call = next(k for k, x in enumerate(p.lines) if x.startswith("dlopen("))
    result = p.lines[call + 1]
    assert "=> 0x" in result
    acc = _account_after(p, p.lines[:call])
    assert acc.accepts(result, [p.lines[call]])  # the result of the open call
    assert not acc.accepts(result, [p.lines[call], result])  # a second result of one call
    seg = next(x for x in p.lines if x.lstrip().startswith("__DATA"))
    lib = max(k for k, x in enumerate(p.lines[:call]) if x.startswith("<"))  # a library line, no Mapping after it
    acc = _account_after(p, p.lines[:lib + 1])
    assert not acc.accepts(seg, [])
