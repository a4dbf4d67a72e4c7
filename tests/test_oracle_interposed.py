"""Interposition, counted against glibc and readelf rather than against gotrace's own replay.

The oracle: glibc's LD_DEBUG=bindings account of the same program (who bound what where) and
readelf of every object it names (which symbols an object defines, its DT_NEEDED, the copy
relocations of an executable, PT_INTERP). A binding is interposed when the requester would
have got the symbol from another object alone: its own definition (a copy-relocated variable
is not the executable's own: R_*_COPY fills it from the library), else the first object of
its own dependencies, breadth-first, that defines it. A library's reference that binds to an
executable's copy of its variable is the library's variable moved (the copy), not another
definition. ld.so's own lookups are counted apart, as the report counts them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter

import pytest

from conftest import ROOT, gotrace_cli, require, require_backend
from linkbins import build
from oracles import (ld_debug_bindings, readelf_canonical_plt, readelf_copy_relocs, readelf_dyn_defined,
                     readelf_interpreter, readelf_needed)


@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    out = tmp_path_factory.mktemp("interposed")
    bins = build(out / "why")
    copyrel = out / "copyrel"
    subprocess.run(["gcc", "-O0", "-no-pie", "-fno-pie", "-o", str(copyrel), str(ROOT / "tests/csrc/copyrel.c")],
                   check=True)
    src, canon = ROOT / "tests/csrc/canonplt.c", out / "canon"
    canon.mkdir()
    for flags in (["-shared", "-fPIC", "-DLIBF", "-o", canon / "libf.so", "-Wl,-soname,libf.so"],
                  ["-shared", "-fPIC", "-DLIBG", "-o", canon / "libg.so", f"-L{canon}", "-lf", "-Wl,-soname,libg.so"],
                  ["-no-pie", "-fno-pie", "-o", canon / "canonplt", f"-L{canon}", "-lg", "-lf", "-Wl,-rpath,$ORIGIN"]):
        subprocess.run(["gcc", "-O0", str(src), *map(str, flags)], check=True)
    return {"picker": bins["picker"], "copyrel": copyrel, "canonplt": canon / "canonplt"}


def oracle(argv: list[str], text: str | None = None) -> dict:
    """glibc + readelf: the interposed bindings (requester, symbol, provider) of one run, those
    ld.so itself asked for, and how many distinct lookups (process, requester, symbol, version,
    provider, start-up or run time) were of a symbol two objects of their process define — the
    ones the report replays (docs/report-json.md: "replayed"). An executable's canonical PLT entry
    counts as a definition (glibc's check_match binds data references to it), and a binding to it is
    the function's own address, not another definition. ``text``: the run's LD_DEBUG=files,bindings
    account when given (else argv is run for it)."""
    if text is None:
        text = subprocess.run(argv, env={**os.environ, "LD_DEBUG": "files,bindings"}, capture_output=True,
                              text=True).stderr
    bindings = ld_debug_bindings(text)
    phase, running = [], {}
    for line in text.splitlines():  # start-up or run time, per process, for each binding line in order
        pid = line.split(":", 1)[0].strip()
        if "\tcalling init:" in line or "\ttransferring control:" in line:
            running[pid] = True
        elif "\tbinding file " in line:
            phase.append(running.get(pid, False))
    assert len(phase) == len(bindings)
    assert bindings, "LD_DEBUG printed no binding"
    files = {os.path.basename(p): p for b in bindings for p in (b["requester"], b["provider"]) if os.path.isfile(p)}
    interp = os.path.realpath(readelf_interpreter(argv[0]))
    defined, copies, needed, plt = {}, {}, {}, {}
    for name, path in files.items():
        defined[name], copies[name], needed[name] = (readelf_dyn_defined(path), readelf_copy_relocs(path),
                                                     readelf_needed(path))
        plt[name] = readelf_canonical_plt(path)

    def own(req: str, sym: str) -> str | None:
        if sym in defined[req] and sym not in copies[req]:
            return req
        order, i = [req], 0
        while i < len(order):
            for dep in needed.get(order[i], []):
                if dep in files and dep not in order:
                    order.append(dep)
            i += 1
        return next((o for o in order[1:] if sym in defined[o]), None)

    objects: dict[int, set[str]] = {}
    for b in bindings:
        objects.setdefault(b["pid"], set()).update(
            n for n in (os.path.basename(b["requester"]), os.path.basename(b["provider"])) if n in files)
    replayed = {(b["pid"], b["requester"], b["symbol"], b["version"], b["provider"], ph)
                for b, ph in zip(bindings, phase, strict=True)
                if sum(b["symbol"] in defined[o] | plt[o] for o in objects[b["pid"]]) >= 2}
    out = {"interposed": [], "by_ldso": [], "replayed": len(replayed)}
    for b in bindings:
        req, prov = os.path.basename(b["requester"]), os.path.basename(b["provider"])
        if req not in files or prov not in files:
            continue  # the vDSO: no file
        mine = own(req, b["symbol"])
        if mine is None or mine == prov or b["symbol"] in copies[prov] | plt[prov]:
            continue  # bound to its own, to the copy of it, or to its one address (the PLT entry jumps on to it)
        where = "by_ldso" if os.path.realpath(files[req]) == interp else "interposed"
        out[where].append((b["symbol"], prov, req))
    return out


def report(session) -> dict:
    out = gotrace_cli("report", "--json", str(session))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["interposed"]


@pytest.mark.parametrize("name", ["picker", "copyrel", "both", "canonplt"])
def test_the_reports_interposed_lookups_are_glibcs(name, progs, tmp_path):
    """picker: liba.so defines pick and calls it, libb.so (earlier in the global scope) wins: one
    interposed lookup. copyrel (-no-pie): libc's references to stdout bind to the executable's
    copy (readelf -r: R_X86_64_COPY): none. both: the two run by one shell, each process replayed
    with its own objects (stdout has two definitions in copyrel's process only). canonplt (-no-pie):
    libg.so's data reference to canon binds to the program's canonical PLT entry (readelf: canon UND
    with a value), its call to libf.so: both lookups replayed, neither interposed."""
    argv = ([str(progs[name])] if name != "both" else
            ["/bin/sh", "-c", f"{progs['picker']} && {progs['copyrel']}"])
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", *argv)
    assert out.returncode == 0, out.stderr
    theirs = oracle(argv)
    mine = report(tmp_path / "s")
    assert mine["lookups"] == len(theirs["interposed"]), (mine, theirs)
    assert {(r["symbol"], r["provider"], r["requester"]): r["lookups"] for r in mine["top"]} == Counter(
        theirs["interposed"])  # each row's count is glibc's number of such bindings
    assert mine["by_the_dynamic_linker"] == len(theirs["by_ldso"])
    assert mine["replayed"] == theirs["replayed"] and mine["disagreed"] == 0
    if name in ("picker", "both"):
        assert theirs["interposed"] == [("pick", "libb.so", "liba.so")]  # the oracle found the one there is
    elif name == "copyrel":
        assert theirs["interposed"] == [] and "stdout" in readelf_copy_relocs(argv[0])
    else:
        assert out.returncode == 0  # the program's own check: one address for canon, and its call reaches libf.so
        assert theirs["interposed"] == [] and "canon" in readelf_canonical_plt(argv[0])
        assert subprocess.run(argv).returncode == 0


def test_a_copy_relocated_variable_is_not_interposed(progs, tmp_path):
    """`why stdout` on the -no-pie program: glibc binds libc.so.6's own reference to the program
    (LD_DEBUG), which holds the copy (readelf -r); that is the copy, not an interposer."""
    exe = str(progs["copyrel"])
    assert "stdout" in readelf_copy_relocs(exe)
    text = subprocess.run([exe], env={**os.environ, "LD_DEBUG": "bindings"}, capture_output=True, text=True).stderr
    libc_to_exe = [b for b in ld_debug_bindings(text) if b["symbol"] == "stdout"
                   and os.path.basename(b["requester"]) == "libc.so.6" and b["provider"] == exe]
    assert libc_to_exe, "glibc bound libc's stdout to the executable's copy"
    assert gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", exe).returncode == 0
    out = gotrace_cli("why", "--json", str(tmp_path / "s"), "stdout")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    lk = next(lk for lk in res["lookups"] if os.path.basename(lk["requester"]) == "libc.so.6")
    assert lk["chosen"] == exe and lk["agrees"]
    assert lk["interposed"] is False and "copy" in lk["reason"]
    assert res["interposed"] == 0
    import re  # the JSON's version is the one docs/why-json.md documents

    documented = re.search(r'"why_version": (\d+)', (ROOT / "docs/why-json.md").read_text())
    assert documented and res["why_version"] == int(documented.group(1))


def test_lookups_the_replay_puts_elsewhere_are_counted(tmp_path):
    """`disagreed`: picker run with libpre.so preloaded, then libpre.so rebuilt without pick.
    glibc's own accounts, before and after the change (LD_DEBUG=bindings of the same command),
    say which lookups of pick now go elsewhere. The session kept libpre.so as it ran, so its
    replay agrees with the account before the change (nothing disagrees); a session that kept no
    objects (an older gotrace's) replays today's files and must count exactly those as disagreeing."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    bins = build(tmp_path / "why")
    argv, env = [str(bins["picker"])], {**os.environ, "LD_PRELOAD": str(bins["libpre"])}
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", *argv, env=env)
    assert out.returncode == 0, out.stderr

    def picks() -> dict[str, str]:
        text = subprocess.run(argv, env={**env, "LD_DEBUG": "bindings"}, capture_output=True, text=True).stderr
        return {os.path.basename(b["requester"]): os.path.basename(b["provider"])
                for b in ld_debug_bindings(text) if b["symbol"] == "pick"}

    before = picks()
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", str(bins["libpre"]), str(ROOT / "tests/csrc/why/pick.c"),
                    "-DWHO='p'", "-Dpick=not_pick", f"-Wl,-soname,{bins['libpre'].name}"], check=True)
    after = picks()
    assert before == {"picker": "libpre.so", "liba.so": "libpre.so"} and after == {"picker": "libb.so",
                                                                                   "liba.so": "libb.so"}
    moved = sum(before[r] != after[r] for r in before)
    assert report(tmp_path / "s")["disagreed"] == 0
    for table in ("objects", "symbols", "loaded"):
        (tmp_path / "s" / f"{table}.parquet").unlink()
    assert report(tmp_path / "s")["disagreed"] == moved == 2


@pytest.mark.parametrize("gone", ["libpre", "libb"])
def test_lookups_whose_searched_objects_are_gone_are_not_replayed(gone, tmp_path):
    """A session that kept no objects, a library of it deleted since: a lookup whose search passed through
    that library cannot be replayed (it might have defined the symbol), one that found its provider
    before it can. Oracles: glibc's LD_DEBUG=symbols,bindings of the same command (each lookup's
    searched objects, up to its provider) and readelf --dyn-syms of the files still there (which
    symbols more than one object defines: the lookups the report replays). libpre.so is every pick
    lookup's provider; libb.so comes after it in the scope, before libc for ld.so's own lookups."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    bins = build(tmp_path / "why")
    argv, env = [str(bins["picker"])], {**os.environ, "LD_PRELOAD": str(bins["libpre"])}
    text = subprocess.run(argv, env={**env, "LD_DEBUG": "symbols,bindings"}, capture_output=True, text=True).stderr
    lookups = ld_debug_bindings(text)
    assert lookups and all(lk["searched"] is not None for lk in lookups)
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", *argv, env=env)
    assert out.returncode == 0, out.stderr
    for table in ("objects", "symbols", "loaded"):
        (tmp_path / "s" / f"{table}.parquet").unlink()
    dead = bins[gone].name
    bins[gone].unlink()
    objects = {o for lk in lookups for o in [lk["requester"], lk["provider"], *lk["searched"]]}
    defined = Counter(sym for o in objects if os.path.exists(o) for sym in readelf_dyn_defined(o))
    candidates = [lk for lk in lookups if defined[lk["symbol"]] > 1]
    blind = [lk for lk in candidates if dead in {os.path.basename(o) for o in lk["searched"]}]
    assert blind  # ld.so's own error handlers search the whole scope before libc, libb.so included
    assert bool([lk for lk in blind if lk["symbol"] == "pick"]) == (gone == "libpre")
    rep = report(tmp_path / "s")
    assert rep["not_replayed"] == len(blind)
    assert rep["not_replayed_programs"] == ["picker"]
    seen = Counter((lk["requester"], lk["symbol"], lk["provider"]) for lk in candidates if lk not in blind)
    assert set(seen.values()) <= {1}  # each made once: lookups and distinct lookups are one count
    assert rep["replayed"] == len(seen)


def test_programs_not_replayed_are_named_most_lookups_first(tmp_path):
    """`not_replayed_programs` lists the programs whose lookups could not be replayed, most first
    (docs/report-json.md): picker run twice, picker-rpath once, under a shell, libpre.so preloaded into
    all and deleted after the run from a session that kept no objects. Oracles: glibc's
    LD_DEBUG=symbols,bindings of the same command (each process's lookups and what they searched; a
    process's program is the executable among its requesters) and readelf --dyn-syms."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    bins = build(tmp_path / "why")
    argv = ["sh", "-c", f"{bins['picker']}; {bins['picker']}; {bins['picker-rpath']}"]
    env = {**os.environ, "LD_PRELOAD": str(bins["libpre"])}
    text = subprocess.run(argv, env={**env, "LD_DEBUG": "symbols,bindings"}, capture_output=True, text=True).stderr
    lookups = ld_debug_bindings(text)
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", *argv, env=env)
    assert out.returncode == 0, out.stderr
    for table in ("objects", "symbols", "loaded"):
        (tmp_path / "s" / f"{table}.parquet").unlink()
    bins["libpre"].unlink()
    program = {}  # glibc names a process's program by its argv[0], its libraries by their .so names
    for lk in lookups:
        if not re.search(r"\.so(\.|$)", lk["requester"]):
            program[lk["pid"]] = os.path.basename(lk["requester"])
    assert sorted(program.values()) == ["picker", "picker", "picker-rpath", "sh"], program
    per: Counter = Counter()
    for pid in program:
        mine = [lk for lk in lookups if lk["pid"] == pid]
        objects = {o for lk in mine for o in [lk["requester"], lk["provider"], *(lk["searched"] or [])]}
        defined = Counter(sym for o in objects if os.path.exists(o) for sym in readelf_dyn_defined(o))
        per[program[pid]] += sum(1 for lk in mine if defined[lk["symbol"]] > 1
                                 and "libpre.so" in {os.path.basename(o) for o in lk["searched"] or []})
    assert per["picker"] > per["picker-rpath"] > 0
    names = report(tmp_path / "s")["not_replayed_programs"]
    assert set(names) == {p for p, n in per.items() if n}
    assert [per[p] for p in names] == sorted((per[p] for p in names), reverse=True)


def test_a_preload_set_inside_the_tree_is_replayed_by_the_report(tmp_path):
    """`gotrace bind -- env LD_PRELOAD=libpre.so picker`: gotrace's own environment has no preload, the
    program image has one (bpf records each image's loader variables at its exec). The report replays
    each process with its own: picker's and liba.so's lookups of pick bound to libpre.so, interposed,
    none disagreeing. Oracle: glibc's LD_DEBUG=bindings of the same
    command."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    require_backend("bpf")
    bins = build(tmp_path / "why")
    argv = ["env", f"LD_PRELOAD={bins['libpre']}", str(bins["picker"])]
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    text = subprocess.run(argv, env={**env, "LD_DEBUG": "bindings"}, capture_output=True, text=True).stderr
    truth = Counter((os.path.basename(b["requester"]), os.path.basename(b["provider"]))
                    for b in ld_debug_bindings(text) if b["symbol"] == "pick")
    assert truth == Counter({("picker", "libpre.so"): 1, ("liba.so", "libpre.so"): 1})
    out = gotrace_cli("bind", "-q", "-b", "bpf", "-o", str(tmp_path / "s"), "--", *argv, env=env)
    assert out.returncode == 0, out.stderr
    rep = report(tmp_path / "s")
    assert rep["disagreed"] == 0
    pick = Counter()
    for row in rep["top"]:
        if row["symbol"] == "pick":
            pick[(row["requester"], row["provider"])] += row["lookups"]
    assert pick == truth


def test_a_dictionary_column_is_matched_as_its_values():
    """interposed._is_in on a dictionary-encoded column (Parquet's usual encoding of strings)
    gives what pyarrow's own is_in gives on the decoded values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from tracer.analysis.interposed import _is_in

    values = ["pick", "puts", None, "pick", "malloc", "stdout", None]
    plain = pa.chunked_array([values[:4], values[4:]], pa.string())
    encoded = pa.chunked_array([pa.array(values[:4]).dictionary_encode(), pa.array(values[4:]).dictionary_encode()])
    wanted = pa.array(["pick", "stdout"], pa.string())
    expected = pc.fill_null(pc.is_in(plain, value_set=wanted), False).to_pylist()
    assert _is_in(encoded, wanted).to_pylist() == expected == [True, False, False, True, False, True, False]
    assert _is_in(plain, wanted).to_pylist() == expected


def test_a_symbolic_library_searches_itself_first(tmp_path):
    """liba.so rebuilt -Bsymbolic (readelf -d: SYMBOLIC) and calling getpid: its lookup of getpid
    searches liba.so itself first, then the global scope — glibc's LD_DEBUG=symbols,bindings says
    which objects it searched, in order, and where it bound; `why` must say the same."""
    import re

    require(shutil.which("gcc") is not None, "gcc is not installed")
    bins = build(tmp_path / "why")
    liba = bins["liba"]
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", str(liba), "-x", "c", "-", "-Wl,-Bsymbolic",
                    f"-Wl,-soname,{liba.name}"], check=True, text=True,
                   input="#include <unistd.h>\nint pick(void) { return 'a'; }\n"
                         "int a_pick(void) { return pick() + (getpid() < 0); }\n")
    dyn = subprocess.run(["readelf", "-dW", str(liba)], capture_output=True, text=True, check=True).stdout
    assert "(SYMBOLIC)" in dyn
    argv = [str(bins["picker"])]
    text = subprocess.run(argv, env={**os.environ, "LD_DEBUG": "symbols,bindings"}, capture_output=True,
                          text=True).stderr
    theirs = [b for b in ld_debug_bindings(text) if b["symbol"] == "getpid" and b["requester"].endswith("liba.so")]
    assert len(theirs) == 1
    # the objects glibc searched, read from its lines in order: liba.so first, then the global scope, in
    # which glibc meets liba.so a second time (and searches it again: nothing new to find there)
    looked = [m.group(1) for m in re.finditer(r"symbol=getpid;  lookup in file=(\S+) \[\d+\]", text)]
    assert looked[0].endswith("liba.so") and looked.count(looked[0]) == 2, looked
    theirs[0]["searched"] = looked  # liba.so twice: its own first pass, then in its place in the scope
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", *argv)
    assert out.returncode == 0, out.stderr
    res = json.loads(gotrace_cli("why", "--json", str(tmp_path / "s"), "getpid").stdout)
    (lk,) = [lk for lk in res["lookups"] if os.path.basename(lk["requester"]) == "liba.so"]
    assert [os.path.realpath(x) for x in lk["searched"]] == [os.path.realpath(x) for x in theirs[0]["searched"]]
    assert os.path.basename(lk["chosen"]) == os.path.basename(theirs[0]["provider"]) and lk["agrees"]
    assert lk["interposed"] is False and any("-Bsymbolic" in n for n in lk["notes"])


def test_a_translated_programs_interposed_lookups_are_the_guests(tmp_path):
    """An arm64 program run through qemu-user (binfmt_misc): the session holds qemu's own host
    lookups beside the program's, and the report leaves the translator's out (as its tally does).
    The oracle is the guest's own glibc alone: qemu-aarch64 run by hand with LD_DEBUG in the guest's
    environment only (-E), so the account is the arm64 ld.so's, never the host qemu's; readelf
    reads the arm64 objects it names."""
    from tracer.capture.translated import translation

    cross, qemu, sysroot = "aarch64-linux-gnu-gcc", shutil.which("qemu-aarch64"), "/usr/aarch64-linux-gnu"
    require(shutil.which(cross) is not None, f"{cross} is not installed (gcc-aarch64-linux-gnu)")
    require(qemu is not None and os.path.isdir(sysroot), "qemu-user or the arm64 sysroot is not installed")
    if translation.handler_for("arm64") is None:
        require(os.geteuid() == 0, "no arm64 binfmt_misc handler and not root to register one")
        translation.register_qemu("arm64")
    require(translation.handler_for("arm64") is not None, "arm64 binfmt_misc handler missing")
    prog = tmp_path / "modes-arm64"
    subprocess.run([cross, "-O0", "-o", str(prog), str(ROOT / "tests/csrc/modes.c"), "-lm", "-ldl", "-Wl,-z,lazy"],
                   check=True)
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "--arch", "arm64", "-o", str(tmp_path / "s"), "--",
                      str(prog), "0.25")
    assert out.returncode == 0, out.stderr
    # qemu's -E splits its value on commas: LD_DEBUG=all holds files and bindings
    text = subprocess.run([qemu, "-L", sysroot, "-E", "LD_DEBUG=all", str(prog), "0.25"], capture_output=True,
                          text=True).stderr
    theirs = oracle([str(prog)], text)
    assert theirs["by_ldso"], "the guest's ld.so handed its error handlers to libc (LD_DEBUG)"
    mine = report(tmp_path / "s")
    assert mine["by_the_dynamic_linker"] == len(theirs["by_ldso"])
    assert mine["lookups"] == len(theirs["interposed"])
    assert mine["replayed"] == theirs["replayed"] and mine["disagreed"] == 0


@pytest.mark.parametrize("rows", [1, 2, 5])
def test_a_part_of_any_size_loses_the_translators_rows(rows):
    """interposed._without on a part of one row or more: the translator's rows go, the program's
    (and a row naming no program) stay — counted here by hand from the rows built."""
    import pyarrow as pa

    from tracer.analysis.interposed import _without

    exes = (["/usr/bin/qemu-aarch64", "/tmp/prog", None] * 2)[:rows]
    for column in (pa.array(exes, pa.string()), pa.array(exes, pa.string()).dictionary_encode()):
        part = pa.table({"exe": column, "n": list(range(rows))})
        kept = _without(part, lambda e: e == "/usr/bin/qemu-aarch64")
        assert kept["n"].to_pylist() == [i for i, e in enumerate(exes) if e != "/usr/bin/qemu-aarch64"]
        assert _without(part, None).num_rows == rows


def test_a_dlopened_plugins_own_definition_passed_over_is_counted_without_images(tmp_path):
    """opener dlopens libownputs.so, whose ownputs() calls puts, which the plugin itself defines: the call's
    lookup searches the global scope first and binds to libc.so.6's (LD_DEBUG=bindings; the program prints
    "ownputs=y", the real puts having run). An imported LD_DEBUG=bindings log lists no images, and the
    report used to replay such a process with its executable's DT_NEEDED objects alone: the plugin, known
    to nothing else, was missing, and its lookup never counted. Now it is, as glibc's account and readelf
    say, and as the ld-debug backend's session (which lists images) says."""
    bins = build(tmp_path / "why")
    plugin = tmp_path / "libownputs.so"
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", str(plugin), str(ROOT / "tests/csrc/why/ownputs.c")],
                   check=True)
    argv = [str(bins["opener"]), str(plugin), "ownputs"]
    logs = tmp_path / "ld"
    logs.mkdir()
    run = subprocess.run(argv, env={**os.environ, "LD_DEBUG": "bindings", "LD_DEBUG_OUTPUT": str(logs / "ld")},
                         capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "dlopen ok\nfrom the plugin\nownputs=y\n"), run.stdout
    theirs = oracle(argv)
    assert ("puts", "libc.so.6", "libownputs.so") in theirs["interposed"]
    out = gotrace_cli("import", "ld-debug", str(logs), "-o", str(tmp_path / "imported"))
    assert out.returncode == 0, out.stderr
    recorded = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", *argv)
    assert recorded.returncode == 0, recorded.stderr
    for session in (tmp_path / "imported", tmp_path / "s"):
        mine = report(session)
        assert {(r["symbol"], r["provider"], r["requester"]): r["lookups"] for r in mine["top"]} == Counter(
            theirs["interposed"]), (session.name, mine)
        assert mine["replayed"] == theirs["replayed"] and mine["disagreed"] == 0, (session.name, mine, theirs)
