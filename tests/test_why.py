"""`gotrace why`: each lookup's scope, candidates, winner and interposition; each library's search.

The programs come from tests/csrc/why/ (tests/linkbins.py). The oracle is glibc's own account
of the same command run again: LD_DEBUG=symbols,bindings lists, for every binding, the
objects searched in order and the one bound to; LD_DEBUG=libs every place searched for a
library and the file found. Which objects define a symbol comes from readelf --dyn-syms.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, gotrace_cli, require, require_backend
from linkbins import build
from oracles import ld_debug_bindings, ld_debug_searches

BACKENDS = ["ld-debug", "bpftrace", "bpf"]


@pytest.fixture(scope="module")
def bins(tmp_path_factory):
    import shutil

    require(shutil.which("gcc") is not None, "gcc is not installed")
    return build(tmp_path_factory.mktemp("whybins"))


def scenarios(bins) -> dict[str, tuple[list[str], dict]]:
    """name -> (argv, extra environment)."""
    return {
        "picker": ([str(bins["picker"])], {}),
        "preload": ([str(bins["picker"])], {"LD_PRELOAD": str(bins["libpre"])}),
        "ldpath": ([str(bins["picker"])], {"LD_LIBRARY_PATH": str(bins["liba-ldpath"].parent)}),
        "rpath": ([str(bins["picker-rpath"])], {"LD_LIBRARY_PATH": str(bins["liba-ldpath"].parent)}),
        "dlopen": ([str(bins["opener"]), str(bins["libplug"]), "plug"], {}),
        "needy": ([str(bins["needy"])], {}),
    }


def record(backend: str, argv: list[str], extra: dict, session) -> subprocess.CompletedProcess:
    require_backend(backend)
    return gotrace_cli("bind", "-q", "-b", backend, "-o", str(session), "--", *argv, env={**os.environ, **extra})


def ld_debug(argv: list[str], extra: dict, what: str) -> str:
    env = {**os.environ, **extra, "LD_DEBUG": what}
    return subprocess.run(argv, env=env, capture_output=True, text=True).stderr


def why(*args: str) -> dict:
    out = gotrace_cli("why", "--json", *map(str, args))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


class Why:
    """The library behind `gotrace why --json` on one loaded session (one load for many questions)."""

    def __init__(self, session):
        from tracer import load_session

        self.session = load_session(session)

    def symbol(self, name: str) -> dict:
        from tracer.analysis.why import why_symbol

        return json.loads(json.dumps(why_symbol(self.session, name)))

    def library(self, name: str) -> dict:
        from tracer.analysis.why_library import why_library

        return json.loads(json.dumps(why_library(self.session, name)))


def real(p: str | None) -> str | None:
    return os.path.realpath(p) if p and os.path.exists(p) else p


def defines(path, symbol: str) -> bool:
    """readelf's account: the object's dynamic symbol table defines ``symbol`` (GLOBAL or WEAK)."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", str(path)], capture_output=True, text=True).stdout
    return any(len(f) >= 8 and f[6] != "UND" and f[4] in ("GLOBAL", "WEAK") and f[7].split("@")[0] == symbol
               for f in (line.split() for line in out.splitlines()))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["picker", "preload", "ldpath", "rpath", "dlopen"])
def test_every_binding_searched_what_glibc_searched(name, backend, bins, tmp_path):
    """For every binding glibc reports, `why` names the same objects searched, in the same order,
    and the replay of glibc's rules on the files agrees with the recorded provider."""
    argv, extra = scenarios(bins)[name]
    out = record(backend, argv, extra, tmp_path / "s")
    assert out.returncode == 0, out.stderr
    oracle = [b for b in ld_debug_bindings(ld_debug(argv, extra, "symbols,bindings")) if b["searched"] is not None]
    assert len(oracle) > 50
    answers: dict[str, dict] = {}
    w = Why(tmp_path / "s")
    for b in oracle:
        if b["symbol"] not in answers:
            answers[b["symbol"]] = w.symbol(b["symbol"])
        mine = {(real(lk["requester"]), real(lk["chosen"])): lk for lk in answers[b["symbol"]]["lookups"]}
        lk = mine.get((real(b["requester"]), real(b["provider"])))
        assert lk is not None, (b, list(mine))
        assert [real(x) for x in lk["searched"]] == [real(x) for x in b["searched"]], b
        assert lk["agrees"], (b, lk["reason"])


def test_pick_candidates_winner_and_interposition(bins, tmp_path):
    """pick is defined by libb.so and liba.so (readelf), which calls it itself: the executable's
    lookup gets libb.so (its first dependency defining it), liba.so's own call is interposed on;
    with LD_PRELOAD both go to libpre.so, both interposed."""
    for name, expect in (("picker", {"picker": (False, "libb.so"), "liba.so": (True, "libb.so")}),
                         ("preload", {"picker": (True, "libpre.so"), "liba.so": (True, "libpre.so")})):
        argv, extra = scenarios(bins)[name]
        assert record("ld-debug", argv, extra, tmp_path / name).returncode == 0
        oracle = {os.path.basename(b["requester"]): os.path.basename(b["provider"])
                  for b in ld_debug_bindings(ld_debug(argv, extra, "bindings")) if b["symbol"] == "pick"}
        res = why(tmp_path / name, "pick")
        got = {os.path.basename(lk["requester"]): lk for lk in res["lookups"]}
        assert {r: os.path.basename(lk["chosen"]) for r, lk in got.items()} == oracle
        for requester, (interposed, winner) in expect.items():
            lk = got[requester]
            assert oracle[requester] == winner and lk["interposed"] is interposed, (name, requester, lk["reason"])
            # the candidates: every object of the scope whose dynamic symbols define pick, in scope order
            in_scope = [p for p in lk["scope"] if os.path.exists(real(p)) and defines(real(p), "pick")]
            assert [c["path"] for c in lk["candidates"]] == in_scope
            assert all(c["accepted"] and c["binding"] == "global" for c in lk["candidates"])
        assert res["interposed"] == sum(i for i, _w in expect.values())
        assert "LD_PRELOAD" in got["picker"]["reason"] if name == "preload" else "breadth-first" in got["picker"]["reason"]
        assert "own definition loses" in got["liba.so"]["reason"]
        # picker defines no pick (readelf): no own definition of it lost; every pick is GLOBAL: no weak one taken
        assert not defines(bins["picker"], "pick") and "own definition" not in got["picker"]["reason"]
        assert all("weak" not in lk["reason"] for lk in got.values()), [lk["reason"] for lk in got.values()]
    text = gotrace_cli("why", str(tmp_path / "preload"), "pick").stdout
    assert "interposed" in text and "chosen    libpre.so" in text
    # the report's section: the same interposed lookups, whose definition they took the place of
    rep = json.loads(gotrace_cli("report", "--json", str(tmp_path / "preload")).stdout)["interposed"]
    assert {(r["symbol"], r["provider"], r["instead_of"], r["requester"]) for r in rep["top"]} == {
        ("pick", "libpre.so", "libb.so", "picker"), ("pick", "libpre.so", "liba.so", "liba.so")}
    assert rep["lookups"] == 2 and rep["disagreed"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["picker", "ldpath", "rpath", "dlopen", "needy"])
def test_library_searches_are_glibcs(name, backend, bins, tmp_path):
    """--library: for each library glibc searched, the same places in the same order (directories
    that exist; glibc prunes the others after its first search) and the same file found."""
    argv, extra = scenarios(bins)[name]
    out = record(backend, argv, extra, tmp_path / "s")
    assert out.returncode == (127 if name == "needy" else 0), out.stderr
    searches = ld_debug_searches(ld_debug(argv, extra, "libs"))
    assert searches
    w = Why(tmp_path / "s")
    for srch in searches:
        res = w.library(srch["name"])
        loads = [ld for ld in res["loads"] if ld["search"] is not None]
        assert len(loads) == 1, (srch["name"], res["loads"])
        (ld,) = loads
        mine = [(s["source"], [d for d in s["dirs"] if os.path.isdir(d)]) for s in ld["search"]]
        theirs = [(src, [d for d in dirs if os.path.isdir(d)]) for src, dirs in srch["places"]]
        assert [m for m in mine if m[0] != "ld.so.cache"] == [t for t in theirs if t[0] != "ld.so.cache"], srch
        assert [m[0] for m in mine] == [t[0] for t in theirs], srch
        if name == "needy" and srch["name"] == "libnothere.so":
            assert ld["found"] is False and ld["hit"] is None and ld["readable"] is False
        else:
            assert real(ld["hit"]) == real(srch["last_tried"]) and ld["agrees"], (srch, ld)
    # every load listed answers to the name asked (docs/why-json.md: by file name, soname or path): a
    # library found nowhere is not listed under another's name
    for asked in ("libc.so.6", "liba.so"):
        assert all(asked in (ld["asked_as"], os.path.basename(str(ld["path"]))) for ld in w.library(asked)["loads"])
    # the environment the command was given (docs/why-json.md: the top-level loader_env)
    assert all(w.library("liba.so")["loader_env"].get(k) == v for k, v in extra.items())
    if name == "ldpath":  # LD_LIBRARY_PATH comes before DT_RUNPATH: libs/liba.so, not run/liba.so
        (ld,) = w.library("liba.so")["loads"]
        assert ld["hit"] == str(bins["liba-ldpath"]) and [s["source"] for s in ld["search"]] == ["LD_LIBRARY_PATH"]
    if name == "rpath":  # DT_RPATH comes before LD_LIBRARY_PATH
        (ld,) = w.library("liba.so")["loads"]
        assert ld["hit"] == str(bins["liba"]) and ld["search"][0]["source"].startswith("RPATH from file")


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_failed_lookup_and_a_missing_library_are_explained(backend, bins, tmp_path):
    require_backend(backend)
    out = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / "f"), "--", str(bins["fatal"]))
    assert out.returncode == 127
    (lk,) = why(tmp_path / "f", "gone")["lookups"]
    assert lk["chosen"] is None and lk["candidates"] == [] and lk["agrees"]
    # LD_DEBUG=symbols of the same program: every object it looked in before giving up
    looked = [line.split("lookup in file=")[1].split(" [")[0]
              for line in ld_debug([str(bins["fatal"])], {}, "symbols").splitlines() if "symbol=gone;" in line]
    assert [real(x) for x in lk["searched"]] == [real(x) for x in looked]
    assert "global (not weak) reference" in lk["reason"] and "exit 127" in lk["reason"]
    # the report points at why --library for the library found nowhere
    record("ld-debug", [str(bins["needy"])], {}, tmp_path / "n")
    rep = json.loads(gotrace_cli("report", "--json", str(tmp_path / "n")).stdout)
    assert any("libnothere.so, DT_NEEDED of needy, is found nowhere" in n for n in rep["notes"])


def test_why_errors_are_one_line(bins, tmp_path):
    record("ld-debug", [str(bins["picker"])], {}, tmp_path / "s")
    for args, says, code in ((["why", str(tmp_path / "s")], "name a symbol", 2),
                             (["why", str(tmp_path / "s"), "pick", "--library", "liba.so"], "one of the two", 2),
                             (["why", str(tmp_path / "s"), "pikc"], "did you mean pick", 1),
                             (["why", str(tmp_path / "nope"), "pick"], "nope", 2)):
        out = gotrace_cli(*args)
        assert out.returncode == code and says in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    out = gotrace_cli("why", str(tmp_path / "s"), "--library", "libnothing.so")
    assert out.returncode == 1 and "no process" in out.stderr


def test_a_session_keeps_what_its_answers_need_when_the_files_are_gone(bins, tmp_path):
    """The session keeps what ld.so read of every object (its OBJECTS, SYMBOLS and LOADED tables), so
    `why` and the report answer the same once the program and its libraries are deleted — as `go test`
    deletes its binaries. Oracle: glibc's LD_DEBUG=symbols,bindings of the same run, taken while the
    files were there (which object each lookup bound to, which objects were searched before it)."""
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(bins["picker"].parent, moved)
    argv = [str(moved / "picker")]
    truth = [b for b in ld_debug_bindings(ld_debug(argv, {}, "symbols,bindings")) if b["symbol"] == "pick"]
    assert truth and all(os.path.basename(b["provider"]) == "libb.so" for b in truth)
    assert record("ld-debug", argv, {}, tmp_path / "s").returncode == 0
    before = why(tmp_path / "s", "pick")
    shutil.rmtree(moved)
    after = why(tmp_path / "s", "pick")
    assert after["lookups"] and after["lookups"] == before["lookups"]
    for lk in after["lookups"]:
        assert lk["agrees"] is True and os.path.basename(lk["replayed"]) == "libb.so"
        want = next(b for b in truth if os.path.basename(b["requester"]) == os.path.basename(lk["requester"]))
        assert [os.path.basename(x) for x in lk["searched"]] == [os.path.basename(x) for x in want["searched"]]
    (ld,) = why(tmp_path / "s", "--library", "liba.so")["loads"]
    assert ld["how"] == "needed" and os.path.basename(ld["loader"]) == "picker"


def test_files_gone_are_said_not_guessed(bins, tmp_path):
    """A session that kept no objects (written before they were kept, or imported from a log) is
    replayed on today's files: when they are gone, `why` says so instead of inventing a verdict or a
    load order."""
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(bins["picker"].parent, moved)
    assert record("ld-debug", [str(moved / "picker")], {}, tmp_path / "s").returncode == 0
    for table in ("objects", "symbols", "loaded"):
        (tmp_path / "s" / f"{table}.parquet").unlink()
    shutil.rmtree(moved)
    res = why(tmp_path / "s", "pick")
    assert res["lookups"] and all(lk["agrees"] is None and lk["reason"].startswith("cannot be replayed")
                                  for lk in res["lookups"])
    assert all(os.path.basename(lk["chosen"]) == "libb.so" for lk in res["lookups"])  # what was recorded stands
    (ld,) = why(tmp_path / "s", "--library", "liba.so")["loads"]
    assert ld["how"] == "unknown" and "gone or unreadable" in ld["meaning"]
    assert ld["found"] is True and ld["readable"] is False and not os.path.exists(ld["path"])  # loaded, gone since
    rep = json.loads(gotrace_cli("report", "--json", str(tmp_path / "s")).stdout)["interposed"]
    assert rep["disagreed"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_environment_set_inside_the_traced_tree_is_replayed(bins, backend, tmp_path):
    """`gotrace bind -- env LD_PRELOAD=libnext.so ./hi`: gotrace's own environment has no LD_PRELOAD;
    the program image hi exec'd with one. The replay uses each process's own loader variables:
    hi's puts bound to libnext.so by LD_PRELOAD, and libnext's dlsym(RTLD_NEXT, "puts") to libc,
    its caller libnext.so. Oracle: glibc's LD_DEBUG=bindings of the same command, and nextputs.c
    (it calls dlsym with RTLD_NEXT)."""
    # hi naps 300 ms: ld-debug reads an image's environment from /proc as its log appears (exact for
    # bpf and bpftrace, which read it at the exec)
    argv = ["env", f"LD_PRELOAD={bins['libnext']}", str(bins["hi"]), "300"]
    truth = {(os.path.basename(b["requester"]), os.path.basename(b["provider"]))
             for b in ld_debug_bindings(ld_debug(argv, {}, "bindings")) if b["symbol"] == "puts"}
    assert ("hi", "libnext.so") in truth and ("libnext.so", "libc.so.6") in truth
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    require_backend(backend)
    out = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / "s"), "--", *argv, env=env)
    assert out.returncode == 0 and "next: hi" in out.stdout, out.stderr
    res = why(tmp_path / "s", "puts")
    by = {(os.path.basename(lk["requester"]), lk["kind"]): lk for lk in res["lookups"]
          if os.path.basename(str(lk["exe"])) == "hi"}
    call = next(lk for (req, kind), lk in by.items() if req == "hi" and kind != "dlsym")
    assert call["agrees"] is True and os.path.basename(call["chosen"]) == "libnext.so"
    assert call["loader_env"].get("LD_PRELOAD") == str(bins["libnext"]) and call["loader_env_recorded"] is True
    assert "LD_PRELOAD" in call["reason"] and call["interposed"] is True
    nxt = by[("libnext.so", "dlsym")]
    assert nxt["agrees"] is True and os.path.basename(nxt["chosen"]) == "libc.so.6"
    assert nxt["dlsym_forms"] == ["RTLD_NEXT"] and os.path.basename(nxt["caller"]) == "libnext.so"


def test_a_dlsym_on_a_handle_does_not_name_the_caller(bins, tmp_path):
    """dlsym(handle, "plug") in opener: ld.so records the handle's object (libplug.so) as the
    requester, not the caller (opener.c calls it). `why` must not claim libplug.so called it.
    Oracle: LD_DEBUG=bindings names libplug.so as the requester of plug; opener.c's source."""
    argv = [str(bins["opener"]), str(bins["libplug"]), "plug"]
    truth = [b for b in ld_debug_bindings(ld_debug(argv, {}, "bindings")) if b["symbol"] == "plug"]
    assert [os.path.basename(b["requester"]) for b in truth] == ["libplug.so"]
    assert record("bpf", argv, {}, tmp_path / "s").returncode == 0
    (lk,) = [lk for lk in why(tmp_path / "s", "plug")["lookups"] if lk["kind"] == "dlsym"]
    assert os.path.basename(lk["requester"]) == "libplug.so" and "handle" in lk["dlsym_forms"]
    assert lk["caller"] is None
    text = gotrace_cli("why", str(tmp_path / "s"), "plug").stdout
    assert "libplug.so looks up plug" not in text and "calls dlsym" not in text


def test_an_unrecorded_environment_is_named_when_the_replay_disagrees(bins, tmp_path):
    """An image whose loader variables the session did not record (a backend that missed its exec) is
    replayed with gotrace's own environment; when that replay disagrees with what was recorded, the
    answer names the missing environment instead of blaming changed files. Oracle: glibc's
    LD_DEBUG=bindings (hi's puts bound to libnext.so, which only the LD_PRELOAD set by env explains)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    argv = ["env", f"LD_PRELOAD={bins['libnext']}", str(bins["hi"])]
    truth = {(os.path.basename(b["requester"]), os.path.basename(b["provider"]))
             for b in ld_debug_bindings(ld_debug(argv, {}, "bindings")) if b["symbol"] == "puts"}
    assert ("hi", "libnext.so") in truth
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    assert record("bpf", argv, env, tmp_path / "s").returncode == 0
    procs = pq.read_table(tmp_path / "s" / "processes.parquet")
    procs = procs.set_column(procs.schema.get_field_index("loader_env"), "loader_env",
                             pa.nulls(procs.num_rows, procs.schema.field("loader_env").type))
    pq.write_table(procs, tmp_path / "s" / "processes.parquet")  # as a backend that missed every exec
    res = why(tmp_path / "s", "puts")
    (call,) = [lk for lk in res["lookups"] if os.path.basename(lk["requester"]) == "hi" and lk["kind"] != "dlsym"]
    assert call["loader_env_recorded"] is False and os.path.basename(call["chosen"]) == "libnext.so"
    assert call["agrees"] is False and "were not recorded" in call["reason"]


@pytest.fixture(scope="module")
def verbins(tmp_path_factory):
    import shutil

    from linkbins import build_versions

    require(shutil.which("gcc") is not None, "gcc is not installed")
    return build_versions(tmp_path_factory.mktemp("verbins"))


def dyn_versions(path, symbol: str) -> set[str]:
    """readelf's account of the versions an object defines ``symbol`` at ("old@V1", "old@@V2")."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", str(path)], capture_output=True, text=True).stdout
    return {f[7] for f in (line.split() for line in out.splitlines())
            if len(f) >= 8 and f[6] != "UND" and f[7].split("@")[0] == symbol}


def returned(argv: list[str], extra: dict) -> dict[str, int]:
    """verprog's own output: what each function (and dlsym's old) returned — the number of the
    version ld.so bound (ver.c: each implementation returns its version's number)."""
    out = subprocess.run(argv, env={**os.environ, **extra}, capture_output=True, text=True, check=True).stdout.split()
    return {out[i]: int(out[i + 1]) for i in range(0, len(out), 2)}


def test_an_unversioned_reference_takes_the_version_glibc_gives(verbins, tmp_path):
    """verprog's references carry no version (readelf -V: no version needed from libver.so), and libver.so
    defines old@V1 and old@@V2, mid@V2 and mid@@V3, one@@V2 (readelf --dyn-syms). glibc's check_match
    takes the oldest version (V1, index 2) for a call, the one public version otherwise, the newest
    public one for dlsym. Oracle: the program's own output (each implementation returns its version's
    number) and glibc's LD_DEBUG=bindings (each bound from verprog to libver.so); `why` must name that
    version in libver.so's candidate and agree."""
    argv = [str(verbins["verprog"])]
    verneed = subprocess.run(["readelf", "-V", "-W", argv[0]], capture_output=True, text=True).stdout
    assert "libc.so.6" in verneed and "libver.so" not in verneed  # the references to libver.so are unversioned
    assert dyn_versions(verbins["libver"], "old") == {"old@V1", "old@@V2"}
    assert dyn_versions(verbins["libver"], "mid") == {"mid@V2", "mid@@V3"}
    assert dyn_versions(verbins["libver"], "one") == {"one@@V2"}
    got = returned(argv, {})
    assert got == {"old": 1, "mid": 3, "one": 2, "dlsym-old": 2}  # glibc's choices, as the program saw them
    bound = {(b["symbol"], b["version"]): os.path.basename(b["provider"])
             for b in ld_debug_bindings(ld_debug(argv, {}, "bindings"))
             if b["symbol"] in ("old", "mid", "one") and os.path.basename(b["requester"]) == "verprog"}
    assert bound == {("old", None): "libver.so", ("mid", None): "libver.so", ("one", None): "libver.so"}
    assert record("ld-debug", argv, {}, tmp_path / "s").returncode == 0
    w = Why(tmp_path / "s")
    for symbol, kind, value in (("old", "call", got["old"]), ("mid", "call", got["mid"]), ("one", "call", got["one"]),
                                ("old", "dlsym", got["dlsym-old"])):
        (lk,) = [lk for lk in w.symbol(symbol)["lookups"] if os.path.basename(lk["requester"]) == "verprog"
                 and (lk["kind"] == "dlsym") == (kind == "dlsym")]
        assert real(lk["chosen"]) == real(str(verbins["libver"])) and lk["agrees"] is True, (symbol, kind, lk["reason"])
        (cand,) = [c for c in lk["candidates"] if os.path.basename(c["path"]) == "libver.so"]
        assert cand["accepted"] and cand["version"] == f"V{value}", (symbol, kind, cand)


def test_a_versioned_reference_passes_over_another_version(verbins, tmp_path):
    """verprog-new's reference to old@V2 (readelf -V: V2 needed from libver.so) with libother.so preloaded,
    which defines old@@OTHER (readelf --dyn-syms): glibc looks in libother.so first, passes it over, binds
    libver.so's old@@V2. Oracle: LD_DEBUG=symbols,bindings (the objects searched, the provider, the
    version) and the program's own output (2: old_v2 ran); `why` lists libother.so as a candidate not
    accepted, naming both versions."""
    argv, extra = [str(verbins["verprog-new"])], {"LD_PRELOAD": str(verbins["libother"])}
    assert dyn_versions(verbins["libother"], "old") == {"old@@OTHER"}
    assert returned(argv, extra)["old"] == 2
    verneed = subprocess.run(["readelf", "-V", "-W", argv[0]], capture_output=True, text=True).stdout
    assert "File: libver.so" in verneed and "Name: V2" in verneed
    # the call's binding (dlsym's lookup of old, unversioned, is the other one)
    (b,) = [b for b in ld_debug_bindings(ld_debug(argv, extra, "symbols,bindings"))
            if b["symbol"] == "old" and os.path.basename(b["requester"]) == "verprog-new" and b["version"]]
    assert b["version"] == "V2" and os.path.basename(b["provider"]) == "libver.so"
    assert [os.path.basename(x) for x in b["searched"]] == ["verprog-new", "libother.so", "libver.so"]
    assert record("ld-debug", argv, extra, tmp_path / "s").returncode == 0
    (lk,) = [lk for lk in Why(tmp_path / "s").symbol("old")["lookups"]
             if os.path.basename(lk["requester"]) == "verprog-new" and lk["kind"] != "dlsym"]
    assert lk["version"] == "V2"
    assert [real(x) for x in lk["searched"]] == [real(x) for x in b["searched"]] and lk["agrees"] is True
    assert [(os.path.basename(c["path"]), c["accepted"], c["version"]) for c in lk["candidates"]] == [
        ("libother.so", False, "OTHER"), ("libver.so", True, "V2")]
    assert "OTHER" in lk["candidates"][0]["rejected"] and "V2" in lk["candidates"][0]["rejected"]
    assert "libother.so passed over" in lk["reason"] and "libver.so passed over" not in lk["reason"], lk["reason"]
    assert lk["interposed"] is False


def test_the_vdsos_own_lookups_search_the_vdso_alone(verbins, tmp_path):
    """ld.so looks the vDSO's functions up in the vDSO alone (dl_vdso_vsym): LD_DEBUG=symbols,bindings
    lists linux-vdso.so.1 as the one object searched and the provider, and /proc/PID/maps shows it
    as the kernel's [vdso] mapping, no file — nothing gone, nothing to re-read: `why` searches that one
    object, names it chosen and agrees (agrees is null only for files gone or unreadable, docs/why-json.md)."""
    argv = [str(verbins["verprog"])]
    (b,) = [b for b in ld_debug_bindings(ld_debug(argv, {}, "symbols,bindings")) if b["symbol"] == "__vdso_clock_gettime"]
    assert b["requester"] == b["provider"] == "linux-vdso.so.1" and b["searched"] == ["linux-vdso.so.1"]
    with open("/proc/self/maps") as fh:  # the kernel's account: the vDSO is a mapping without a file
        vdso = [line.split() for line in fh if line.rstrip().endswith("[vdso]")]
    assert len(vdso) == 1 and len(vdso[0]) == 6
    assert record("ld-debug", argv, {}, tmp_path / "s").returncode == 0
    (lk,) = Why(tmp_path / "s").symbol("__vdso_clock_gettime")["lookups"]
    assert lk["requester"] == lk["chosen"] == lk["replayed"] == "linux-vdso.so.1"
    assert lk["scope"] == lk["searched"] == b["searched"] and lk["unreadable"] == []
    assert lk["lookups"] == 1  # glibc printed that binding once (docs/why-json.md: identical lookups counted)
    assert lk["agrees"] is True and lk["interposed"] is False


def test_a_failed_lookup_says_what_the_reference_does(bins, tmp_path):
    """fatal.c references gone() globally and maybe() weakly (readelf --dyn-syms: UND GLOBAL, UND
    WEAK), and nothing defines maybe. Linked against a liblost.so that still defines gone(), it goes
    on: glibc leaves maybe NULL (the program prints 0 for it, exit 0); against today's liblost.so it
    dies on gone (exit 127, glibc's "undefined symbol: gone"). Oracle: the program's own output and
    exit status, readelf's binding of each reference, LD_DEBUG=symbols (the objects looked in before
    giving up). `why` names no candidate and says which of the two the miss was."""
    import shutil

    keep = tmp_path / "keep"
    keep.mkdir()
    shutil.copy(bins["fatal"], keep / "fatal")
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", str(keep / "liblost.so"),
                    os.path.join(os.path.dirname(__file__), "csrc", "why", "lost.c"), "-Wl,-soname,liblost.so"],
                   check=True)  # lost.c without -DLOST: gone() still defined
    und = {f[7]: f[4] for f in (line.split() for line in subprocess.run(
        ["readelf", "-W", "--dyn-syms", str(keep / "fatal")], capture_output=True, text=True).stdout.splitlines())
        if len(f) >= 8 and f[6] == "UND"}
    assert und["maybe"] == "WEAK" and und["gone"] == "GLOBAL"
    lost = tmp_path / "lost"  # fatal beside today's liblost.so, without gone()
    lost.mkdir()
    shutil.copy(bins["fatal"], lost / "fatal")
    shutil.copy(bins["liblost"], lost / "liblost.so")
    for exe, symbol, code in ((keep / "fatal", "maybe", 0), (lost / "fatal", "gone", 127)):
        run = subprocess.run([str(exe)], capture_output=True, text=True)
        assert run.returncode == code, run.stderr
        if code == 0:
            assert run.stdout.split() == ["1", "2", "0"]  # maybe was NULL: main printed 0 for it
        else:
            assert "undefined symbol: gone" in run.stderr
        looked = [line.split("lookup in file=")[1].split(" [")[0]
                  for line in ld_debug([str(exe)], {}, "symbols").splitlines() if f"symbol={symbol};" in line]
        assert looked
        require_backend("bpf")
        out = gotrace_cli("bind", "-q", "-b", "bpf", "-o", str(tmp_path / symbol), "--", str(exe))
        assert out.returncode == code, out.stderr
        (lk,) = why(tmp_path / symbol, symbol)["lookups"]
        assert lk["chosen"] is None and lk["replayed"] is None and lk["candidates"] == [] and lk["agrees"] is True
        assert [real(x) for x in lk["searched"]] == [real(x) for x in looked]
        if code == 0:
            assert "weakly" in lk["reason"] and "exit 127" not in lk["reason"], lk["reason"]
        else:
            assert "global (not weak) reference" in lk["reason"] and "exit 127" in lk["reason"], lk["reason"]
    # a failed dlsym: opener asks libplug.so's handle for a name nothing defines (its own output: exit 4,
    # "dlsym failed"): NULL to the caller, nothing fatal
    argv = [str(bins["opener"]), str(bins["libplug"]), "nosuch"]
    run = subprocess.run(argv, capture_output=True, text=True)
    assert run.returncode == 4 and "dlsym failed" in run.stdout
    assert gotrace_cli("bind", "-q", "-b", "bpf", "-o", str(tmp_path / "d"), "--", *argv).returncode == 4
    (lk,) = why(tmp_path / "d", "nosuch")["lookups"]
    assert lk["kind"] == "dlsym" and lk["chosen"] is None and "dlsym returned NULL" in lk["reason"], lk
    # the fatal run's session replayed on today's files once liblost.so defines gone again (the session's
    # kept objects removed, as an older gotrace's): glibc now binds it there (LD_DEBUG=bindings), so
    # the recorded failure no longer agrees, and the answer says a file changed
    shutil.copy(keep / "liblost.so", lost / "liblost.so")
    for table in ("objects", "symbols", "loaded"):
        (tmp_path / "gone" / f"{table}.parquet").unlink()
    now = [b for b in ld_debug_bindings(ld_debug([str(lost / "fatal")], {}, "bindings")) if b["symbol"] == "gone"]
    assert [os.path.basename(b["provider"]) for b in now] == ["liblost.so"]
    (lk,) = why(tmp_path / "gone", "gone")["lookups"]
    assert lk["chosen"] is None and real(lk["replayed"]) == real(now[0]["provider"]) and lk["agrees"] is False
    assert "liblost.so defines gone today" in lk["reason"], lk["reason"]


def test_a_macs_session_from_another_backend_is_explained_by_dyld(binaries, tmp_path):
    """A session recorded on a Mac by DTrace (meta.json: os "Darwin", as capture/run.py writes uname's
    system, backend "dtrace") holds Mach-O binds as a dyld-print one does: docs/why-json.md gives every
    lookup of a macOS session bind_library, and its scope is the library the two-level bind names.
    Not run on macOS: test_why_macho's dyld-print session of an ld64.lld-built program, its meta made
    a DTrace run's; llvm-objdump names the library of each bind (the oracle)."""
    from oracles import objdump_binds
    from test_why_macho import LIBSYSTEM, session_of

    exe = str(binaries("macho-arm64-chained"))
    named = {sym: lib for _a, lib, sym in objdump_binds(exe)}
    s = session_of(exe, [("_printf", LIBSYSTEM)], tmp_path)
    meta = json.loads((s / "meta.json").read_text())
    assert meta["os"] == "Darwin"
    meta["backend"] = "dtrace"
    (s / "meta.json").write_text(json.dumps(meta))
    res = why(s, "_printf")
    assert res["backend"] == "dtrace"
    (lk,) = res["lookups"]
    assert lk["bind_library"].rsplit("/", 1)[-1].startswith(named["_printf"]) and lk["scope"] == [LIBSYSTEM]
    assert lk["agrees"] is True and lk["candidates"] == []


def test_a_library_a_dlopen_brought_in_is_named_by_who_needed_it(bins, tmp_path):
    """--library's how and meaning against glibc's LD_DEBUG=files: libb.so is "needed by" picker at
    start-up (how "needed", meaning "DT_NEEDED", as docs/why-json.md gives them), and in opener's run
    "needed by" libplug.so, which was "dynamically loaded by" opener: the load says the DT_NEEDED of
    libplug.so, brought in by libplug.so's dlopen, and names libplug.so its loader."""
    import re

    for name in ("picker", "dlopen"):
        argv, extra = scenarios(bins)[name]
        files = ld_debug(argv, extra, "files")
        needers = re.findall(r"file=libb\.so \[\d+\];  needed by (\S+) \[\d+\]", files)
        opened = re.findall(r"file=(\S+) \[\d+\];  dynamically loaded by", files)
        assert record("ld-debug", argv, extra, tmp_path / name).returncode == 0
        res = Why(tmp_path / name).library("libb.so")
        documented = re.search(r'"why_version": (\d+), "session"', (ROOT / "docs/why-json.md").read_text())
        assert documented and res["why_version"] == int(documented.group(1))  # --library's, as documented
        (ld,) = res["loads"]
        assert [os.path.basename(n) for n in ld["needed_by"]] == [os.path.basename(n) for n in needers]
        assert os.path.basename(ld["loader"]) == os.path.basename(needers[0])
        # a file that is there (docs: found, readable), looked for by its needer's DT_NEEDED: the searching
        # object is known (LD_DEBUG=libs names its RUNPATH), no caveat to note
        assert ld["found"] is True and ld["readable"] is True and os.path.isfile(ld["path"])
        libs = ld_debug(argv, extra, "libs")
        assert re.search(rf"RUNPATH from file {re.escape(needers[0])}\)", libs) and ld["note"] is None, ld
        if name == "picker":
            assert opened == [] and ld["how"] == "needed" and ld["meaning"] == "DT_NEEDED"
        else:
            assert [os.path.basename(o) for o in opened] == ["libplug.so"] == [os.path.basename(n) for n in needers]
            assert ld["how"] == "dlopen" and "DT_NEEDED of libplug.so" in ld["meaning"], ld
            assert "dlopen of libplug.so" in ld["meaning"], ld
            # libplug.so itself was dlopen'ed by its path (LD_DEBUG=libs: no search for it): no search,
            # and the answer says the text dlopen got is not recorded
            assert "find library=libplug.so" not in libs
            (plug,) = Why(tmp_path / name).library("libplug.so")["loads"]
            assert plug["search"] is None and plug["note"] is not None and "dlopen" in plug["note"]
            # libplug.so's __cxa_finalize bound to libc.so.6, which opener's DT_NEEDED put in the global scope
            # (LD_DEBUG=files, bindings): the rule given is the global scope's, naming that needer
            (libc_needer,) = re.findall(r"file=libc\.so\.6 \[\d+\];  needed by (\S+) \[\d+\]", files)
            (b,) = [b for b in ld_debug_bindings(ld_debug(argv, extra, "bindings")) if b["symbol"] == "__cxa_finalize"
                    and os.path.basename(b["requester"]) == "libplug.so"]
            (lk,) = [lk for lk in Why(tmp_path / name).symbol("__cxa_finalize")["lookups"]
                     if os.path.basename(lk["requester"]) == "libplug.so"]
            assert real(lk["chosen"]) == real(b["provider"]) and lk["agrees"] is True
            assert f"DT_NEEDED of {os.path.basename(libc_needer)})" in lk["reason"], lk["reason"]


def test_a_file_gone_after_the_winner_leaves_the_verdict(bins, tmp_path):
    """picker's lookup of pick: glibc searched picker then libb.so and stopped there (LD_DEBUG=symbols,
    bindings); liba.so comes after it in the scope. A session that kept no objects, liba.so deleted
    since: nothing the lookup searched is gone, so the replay still gives its verdict (docs/why-json.md:
    agrees is null only when files of the scope it would search are gone), liba.so listed unreadable."""
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(bins["picker"].parent, moved)
    argv = [str(moved / "picker")]
    (b,) = [b for b in ld_debug_bindings(ld_debug(argv, {}, "symbols,bindings"))
            if b["symbol"] == "pick" and os.path.basename(b["requester"]) == "picker"]
    assert [os.path.basename(x) for x in b["searched"]] == ["picker", "libb.so"]
    assert record("ld-debug", argv, {}, tmp_path / "s").returncode == 0
    for table in ("objects", "symbols", "loaded"):
        (tmp_path / "s" / f"{table}.parquet").unlink()
    (moved / "run" / "liba.so").unlink()
    (lk,) = [lk for lk in why(tmp_path / "s", "pick")["lookups"] if os.path.basename(lk["requester"]) == "picker"]
    assert [os.path.basename(x) for x in lk["searched"]] == ["picker", "libb.so"]
    assert [os.path.basename(x) for x in lk["unreadable"]] == ["liba.so"]
    assert lk["agrees"] is True and lk["interposed"] is False


@pytest.fixture(scope="module")
def searchbins(tmp_path_factory):
    import shutil

    from linkbins import build_searches

    require(shutil.which("gcc") is not None, "gcc is not installed")
    return build_searches(tmp_path_factory.mktemp("searchbins"))


def _searches_agree(argv: list[str], extra: dict, session) -> list[dict]:
    """Every search LD_DEBUG=libs reports, against --library's replay of it: the same places in the
    same order (directories that exist) and the same file found — the last one glibc tried, or none
    when the program died of it (ld.so's "cannot open shared object file" on stderr) — and the file
    the replay finds is the one loaded (``agrees``), also when the program died at start-up."""
    libs = subprocess.run(argv, env={**os.environ, **extra, "LD_DEBUG": "libs"}, capture_output=True, text=True)
    searches = ld_debug_searches(libs.stderr)
    assert searches
    missing = set(__import__("re").findall(r"error while loading shared libraries: (\S+): cannot open", libs.stderr))
    w = Why(session)
    for srch in searches:
        (ld,) = [ld for ld in w.library(srch["name"])["loads"] if ld["search"] is not None]
        mine = [(s["source"], [d for d in s["dirs"] if os.path.isdir(d)]) for s in ld["search"]]
        theirs = [(src, [d for d in dirs if os.path.isdir(d)]) for src, dirs in srch["places"]]
        assert [m for m in mine if m[0] != "ld.so.cache"] == [t for t in theirs if t[0] != "ld.so.cache"], srch
        assert [m[0] for m in mine] == [t[0] for t in theirs], srch
        if srch["name"] in missing:
            assert ld["found"] is False and ld["hit"] is None, (srch, ld)
        else:
            assert real(ld["hit"]) == real(srch["last_tried"]) and ld["agrees"], (srch, ld)
    return searches


def test_a_library_linked_nodefaultlib_searches_the_cache_but_no_system_directory(searchbins, tmp_path):
    """nodefl is linked -z nodefaultlib (readelf -d: FLAGS_1 NODEFLIB) and needs libm.so.6. glibc's
    LD_DEBUG=libs: its RUNPATH, then ld.so.cache (whose entry, under /lib/x86_64-linux-gnu, it refuses),
    and no system search path; the program dies of it (exit 127, "cannot open shared object file")."""
    flags = subprocess.run(["readelf", "-d", str(searchbins["nodefl"])], capture_output=True, text=True).stdout
    assert "NODEFLIB" in flags
    argv = [str(searchbins["nodefl"])]
    assert record("ld-debug", argv, {}, tmp_path / "s").returncode == 127
    searches = _searches_agree(argv, {}, tmp_path / "s")
    (m,) = [s for s in searches if s["name"] == "libm.so.6"]
    assert [src for src, _ in m["places"]][-1] == "ld.so.cache"


def test_a_program_that_dies_at_start_up_loaded_only_what_came_before_the_missing_library(tmp_path):
    """dies needs libhh.so (which needs libff.so) and then libgg.so, deleted after the link. glibc
    maps DT_NEEDED breadth-first and stops at the first it cannot find: LD_DEBUG=files shows libhh.so's
    link map generated and nothing of libff.so (libhh.so's own dependency comes after libgg.so), and the
    program exits 127. --library: libhh.so found where LD_DEBUG=libs found it, read from that file
    (agrees); libff.so never loaded; libgg.so found nowhere."""
    import re

    src, lib = ROOT / "tests/csrc/why", tmp_path / "lib"
    lib.mkdir()
    cc = ["gcc", "-O0"]

    def shared(name, *extra):
        subprocess.run([*cc, "-shared", "-fPIC", "-o", str(lib / name), str(src / "pick.c"), f"-DWHO='{name[3]}'",
                        f"-Dpick={name[3:5]}pick", f"-Wl,-soname,{name}", *extra], check=True)

    shared("libff.so")
    shared("libgg.so")
    shared("libhh.so", "-Wl,--no-as-needed", f"-L{lib}", "-lff", "-Wl,--enable-new-dtags,-rpath,$ORIGIN")
    exe = tmp_path / "dies"
    subprocess.run([*cc, "-o", str(exe), str(src / "hi.c"), "-Wl,--no-as-needed", f"-L{lib}", "-lhh", "-lgg",
                    "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib"], check=True)
    (lib / "libgg.so").unlink()
    files = subprocess.run([str(exe)], env={**os.environ, "LD_DEBUG": "files"}, capture_output=True, text=True)
    assert files.returncode == 127
    mapped = set(re.findall(r"file=(\S+) \[0\];\s+generating link map", files.stderr))
    assert mapped == {"libhh.so"}, files.stderr
    argv = [str(exe)]
    assert record("ld-debug", argv, {}, tmp_path / "s").returncode == 127
    searches = _searches_agree(argv, {}, tmp_path / "s")
    assert {s["name"] for s in searches} == {"libhh.so", "libgg.so"}
    w = Why(tmp_path / "s")
    (hh,) = w.library("libhh.so")["loads"]
    assert hh["found"] and hh["readable"] and hh["agrees"] and real(hh["hit"]) == real(str(lib / "libhh.so"))
    assert w.library("libff.so")["loads"] == []
    (gg,) = w.library("libgg.so")["loads"]
    assert gg["found"] is False


def test_the_first_directory_of_a_step_that_holds_the_library_wins(bins, tmp_path):
    """LD_LIBRARY_PATH=libs:two, both holding a liba.so (two/ a copy of run/liba.so: not run/ itself,
    which LD_DEBUG would label by picker's RUNPATH, where glibc first met the directory): glibc's
    LD_DEBUG=libs tries libs/liba.so and stops there (the last file tried)."""
    import shutil

    (tmp_path / "two").mkdir()
    shutil.copy(bins["liba"], tmp_path / "two" / "liba.so")
    argv, extra = [str(bins["picker"])], {"LD_LIBRARY_PATH": f"{bins['liba-ldpath'].parent}:{tmp_path / 'two'}"}
    assert record("ld-debug", argv, extra, tmp_path / "s").returncode == 0
    searches = _searches_agree(argv, extra, tmp_path / "s")
    (a,) = [s for s in searches if s["name"] == "liba.so"]
    assert real(a["last_tried"]) == real(bins["liba-ldpath"])


def test_a_library_with_runpath_ignores_the_rpath_of_its_loader(searchbins, tmp_path):
    """mixed has DT_RPATH $ORIGIN/r (holding libr.so and a decoy libq.so); libr.so has DT_RUNPATH
    $ORIGIN/q and needs libq.so. glibc's LD_DEBUG=libs: libq.so is searched in libr.so's RUNPATH only,
    mixed's RPATH skipped (readelf -d gives the tags), and found in r/q/."""
    tags = {p: subprocess.run(["readelf", "-d", str(searchbins[p])], capture_output=True, text=True).stdout
            for p in ("mixed", "libr")}
    assert "(RPATH)" in tags["mixed"] and "(RUNPATH)" in tags["libr"]
    argv = [str(searchbins["mixed"])]
    assert record("ld-debug", argv, {}, tmp_path / "s").returncode == 0
    searches = _searches_agree(argv, {}, tmp_path / "s")
    (q,) = [s for s in searches if s["name"] == "libq.so"]
    assert real(q["last_tried"]) == real(searchbins["libq"])


def test_an_arm64_programs_searches_are_its_guest_ld_sos(tmp_path):
    """picker and its two libraries built for arm64 (aarch64-linux-gnu-gcc), run under qemu-user
    (binfmt_misc): the oracle is the guest's own ld.so, LD_DEBUG=libs given to it alone by
    `qemu-aarch64 -E` (qemu's own host-side searches left out). libc.so.6 is not in the host's
    ld.so.cache for aarch64, so glibc goes on to its system search path, /lib/aarch64-linux-gnu first;
    and an arm64 needy's libnothere.so, found nowhere, is searched for there too. picker's RUNPATH
    $ORIGIN/$PLATFORM is the guest's aarch64 directory (AT_PLATFORM), not the host's x86_64 one."""
    import shutil

    require(shutil.which("aarch64-linux-gnu-gcc") is not None, "aarch64-linux-gnu-gcc is not installed")
    require(shutil.which("qemu-aarch64") is not None, "qemu-user is not installed")
    require(os.path.exists("/proc/sys/fs/binfmt_misc/qemu-aarch64"), "no arm64 binfmt_misc handler registered")
    src, run = ROOT / "tests/csrc/why", tmp_path / "run"
    run.mkdir()
    cc = ["aarch64-linux-gnu-gcc", "-O0"]
    for who, extra in (("a", ["-DCALLS_ITSELF"]), ("b", [])):
        subprocess.run([*cc, "-shared", "-fPIC", "-o", str(run / f"lib{who}.so"), str(src / "pick.c"), f"-DWHO='{who}'",
                        *extra, f"-Wl,-soname,lib{who}.so"], check=True)
    exe = tmp_path / "picker"
    (tmp_path / "aarch64").mkdir()  # where $PLATFORM points for an arm64 process (AT_PLATFORM), not the host's
    subprocess.run([*cc, "-o", str(exe), str(src / "picker.c"), f"-L{run}", "-lb", "-la",
                    "-Wl,--enable-new-dtags,-rpath,$ORIGIN/$PLATFORM:$ORIGIN/run"], check=True)
    libs = subprocess.run(["qemu-aarch64", "-E", "LD_DEBUG=libs", str(exe)], capture_output=True, text=True)
    assert libs.returncode == 0, libs.stderr
    searches = ld_debug_searches(libs.stderr)
    assert {s["name"] for s in searches} == {"liba.so", "libb.so", "libc.so.6"}
    assert record("ld-debug", [str(exe)], {}, tmp_path / "s").returncode == 0
    w = Why(tmp_path / "s")
    for srch in searches:
        (ld,) = [ld for ld in w.library(srch["name"])["loads"] if ld["exe"] == str(exe)]
        mine = [(s["source"], [d for d in s["dirs"] if os.path.isdir(d)]) for s in ld["search"]]
        theirs = [(src, [d for d in dirs if os.path.isdir(d)]) for src, dirs in srch["places"]]
        assert [m for m in mine if m[0] != "ld.so.cache"] == [t for t in theirs if t[0] != "ld.so.cache"], srch
        assert [m[0] for m in mine] == [t[0] for t in theirs], srch
        assert real(ld["hit"]) == real(srch["last_tried"]) and ld["agrees"], (srch, ld)
    (c,) = [s for s in searches if s["name"] == "libc.so.6"]
    assert c["places"][-1][0] == "system search path" and "aarch64" in c["last_tried"]
    # needy for arm64: libnothere.so deleted after the link, found nowhere (exit 127), the guest's
    # search for it ends in its own system directories, not the host's
    gone = run / "libnothere.so"
    subprocess.run([*cc, "-shared", "-fPIC", "-o", str(gone), str(src / "pick.c"), "-DWHO='n'", "-Dpick=nothere",
                    "-Wl,-soname,libnothere.so"], check=True)
    needy = tmp_path / "needy"
    subprocess.run([*cc, "-o", str(needy), str(src / "needy.c"), f"-L{run}", "-lnothere",
                    "-Wl,--enable-new-dtags,-rpath,$ORIGIN/run"], check=True)
    gone.unlink()
    libs = subprocess.run(["qemu-aarch64", "-E", "LD_DEBUG=libs", str(needy)], capture_output=True, text=True)
    assert libs.returncode == 127, libs.stderr
    (srch,) = [s for s in ld_debug_searches(libs.stderr) if s["name"] == "libnothere.so"]
    assert record("ld-debug", [str(needy)], {}, tmp_path / "n").returncode == 127
    (ld,) = [ld for ld in Why(tmp_path / "n").library("libnothere.so")["loads"] if ld["exe"] == str(needy)]
    mine = [(s["source"], [d for d in s["dirs"] if os.path.isdir(d)]) for s in ld["search"]]
    theirs = [(src, [d for d in dirs if os.path.isdir(d)]) for src, dirs in srch["places"]]
    assert mine == theirs and theirs[-1][0] == "system search path" and "/lib/aarch64-linux-gnu" in theirs[-1][1]
    assert ld["found"] is False and ld["hit"] is None


def test_a_program_with_its_own_ld_so_is_replayed_with_that_ld_sos_directories(tmp_path):
    """A program linked against another glibc (--dynamic-linker: an ld.so in /opt, say) searches that
    ld.so's system directories, not the host's. Here the host's x86_64 ld.so, copied with its built-in
    list rewritten in place (/lib/x86_64-elsewhere, /usr/lib/x86_64-elsewhere, /lib, /usr/lib: same
    lengths), is needy's PT_INTERP. Oracles: that ld.so's own `--help` and LD_DEBUG=libs of the run
    (libnothere.so, found nowhere, exit 127: its last place is that system search path)."""
    import re

    src, run = ROOT / "tests/csrc/why", tmp_path / "run"
    run.mkdir()
    host = (b"/lib/x86_64-linux-gnu/\0/usr/lib/x86_64-linux-gnu/\0/lib/\0/usr/lib/\0")
    other = (b"/lib/x86_64-elsewhere/\0/usr/lib/x86_64-elsewhere/\0/lib/\0/usr/lib/\0")
    data = Path(os.path.realpath("/lib64/ld-linux-x86-64.so.2")).read_bytes()
    require(host in data, "the host's ld.so is not Debian's x86_64 one (its built-in list differs)")
    ldso = tmp_path / "opt" / "ld-linux-x86-64.so.2"
    ldso.parent.mkdir()
    ldso.write_bytes(data.replace(host, other))
    ldso.chmod(0o755)
    helped = subprocess.run([str(ldso), "--help"], capture_output=True, text=True).stdout
    built_in = re.findall(r"^\s+(\S+) \(system search path\)$", helped, re.M)
    assert built_in[:2] == ["/lib/x86_64-elsewhere", "/usr/lib/x86_64-elsewhere"], helped
    gone = run / "libnothere.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(gone), str(src / "pick.c"), "-DWHO='n'", "-Dpick=nothere",
                    "-Wl,-soname,libnothere.so"], check=True)
    needy = tmp_path / "needy"
    subprocess.run(["gcc", "-o", str(needy), str(src / "needy.c"), f"-L{run}", "-lnothere", f"-Wl,--dynamic-linker={ldso}"],
                   check=True)
    gone.unlink()
    libs = subprocess.run([str(needy)], env={**os.environ, "LD_DEBUG": "libs"}, capture_output=True, text=True)
    assert libs.returncode == 127, libs.stderr
    (srch,) = [s for s in ld_debug_searches(libs.stderr) if s["name"] == "libnothere.so"]
    assert srch["places"][-1][0] == "system search path"
    # the subdirectories ld.so tries under each directory, as its --help names them (tls, haswell …, glibc-hwcaps)
    subdirs = {"glibc-hwcaps", *re.findall(r"^\s+(\S+) \((?:AT_PLATFORM; )?supported, searched\)$", helped, re.M)}
    bases = [d for d in srch["places"][-1][1] if not subdirs & set(d.split("/"))]
    assert bases == built_in, bases
    assert record("ld-debug", [str(needy)], {}, tmp_path / "s").returncode == 127
    (ld,) = Why(tmp_path / "s").library("libnothere.so")["loads"]
    assert ld["found"] is False and ld["search"][-1]["source"] == "system search path"
    assert ld["search"][-1]["dirs"] == built_in


def test_a_32_bit_programs_searches_are_its_own_ld_sos(tmp_path):
    """picker and its libraries built by `gcc -m32` (gcc-12-multilib: the i386 ld.so /lib/ld-linux.so.2,
    libraries in /lib32), run natively by the x86_64 kernel. The oracle is LD_DEBUG=libs of the same
    runs (the places in their order, directories that exist — RUNPATH's $ORIGIN/$PLATFORM is i686 for
    this process; the file found: liba.so through RUNPATH's $ORIGIN/$LIB, which this ld.so expands to
    lib32), and that ld.so's own
    `--help` ("(system search path)": /lib32, /usr/lib32, /lib, /usr/lib — not the x86_64 ld.so's
    /lib/x86_64-linux-gnu…, nor a bare /lib:/usr/lib) for where needy's libnothere.so, found
    nowhere (exit 127), was looked for last — also once the copy of that ld.so needy ran with is gone."""
    import re
    import shutil

    src, run = ROOT / "tests/csrc/why", tmp_path / "run"
    run.mkdir()
    probe = subprocess.run(["gcc", "-m32", "-o", str(tmp_path / "hi"), str(src / "hi.c")], capture_output=True, text=True)
    require(probe.returncode == 0, f"gcc -m32 cannot link (gcc-12-multilib is not installed): {probe.stderr[-200:]}")
    cc = ["gcc", "-m32", "-O0"]
    lib = tmp_path / "lib32"  # where $LIB points for this ld.so (its own library directory's name)
    lib.mkdir()
    for who, extra, where in (("a", ["-DCALLS_ITSELF"], lib), ("b", [], run)):
        subprocess.run([*cc, "-shared", "-fPIC", "-o", str(where / f"lib{who}.so"), str(src / "pick.c"),
                        f"-DWHO='{who}'", *extra, f"-Wl,-soname,lib{who}.so"], check=True)
    gone = run / "libnothere.so"
    subprocess.run([*cc, "-shared", "-fPIC", "-o", str(gone), str(src / "pick.c"), "-DWHO='n'", "-Dpick=nothere",
                    "-Wl,-soname,libnothere.so"], check=True)
    exe, needy = tmp_path / "picker", tmp_path / "needy"
    (tmp_path / "i686").mkdir()  # where $PLATFORM points for an IA-32 process (AT_PLATFORM)
    subprocess.run([*cc, "-o", str(exe), str(src / "picker.c"), f"-L{run}", f"-L{lib}", "-lb", "-la",
                    "-Wl,--enable-new-dtags,-rpath,$ORIGIN/run:$ORIGIN/$PLATFORM:$ORIGIN/$LIB"], check=True)
    # needy runs with a copy of the i386 ld.so as its PT_INTERP, deleted after the run: the replay then
    # reads the search path of this machine's ld.so for i386
    ldso_copy = tmp_path / "interp" / "ld-linux.so.2"
    ldso_copy.parent.mkdir()
    shutil.copy2(os.path.realpath("/lib/ld-linux.so.2"), ldso_copy)
    subprocess.run([*cc, "-o", str(needy), str(src / "needy.c"), f"-L{run}", "-lnothere",
                    f"-Wl,--dynamic-linker={ldso_copy}", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/run"], check=True)
    gone.unlink()
    interp = subprocess.run(["readelf", "-l", str(exe)], capture_output=True, text=True).stdout
    (ldso,) = re.findall(r"Requesting program interpreter: (\S+)\]", interp)
    helped = subprocess.run([ldso, "--help"], capture_output=True, text=True).stdout
    built_in = re.findall(r"^\s+(\S+) \(system search path\)$", helped, re.M)
    assert built_in[:2] == ["/lib32", "/usr/lib32"], helped
    for argv, status in (([str(exe)], 0), ([str(needy)], 127)):
        libs = subprocess.run(argv, env={**os.environ, "LD_DEBUG": "libs"}, capture_output=True, text=True)
        assert libs.returncode == status, libs.stderr
        session = tmp_path / f"s-{Path(argv[0]).name}"
        assert record("ld-debug", argv, {}, session).returncode == status
        w = Why(session)
        searches = ld_debug_searches(libs.stderr)
        assert searches
        for srch in searches:
            (ld,) = [ld for ld in w.library(srch["name"])["loads"] if ld["exe"] == argv[0]]
            mine = [(s["source"], [d for d in s["dirs"] if os.path.isdir(d)]) for s in ld["search"]]
            theirs = [(where, [d for d in dirs if os.path.isdir(d)]) for where, dirs in srch["places"]]
            assert [m for m in mine if m[0] != "ld.so.cache"] == [t for t in theirs if t[0] != "ld.so.cache"], srch
            assert [m[0] for m in mine] == [t[0] for t in theirs], srch
            if srch["name"] == "liba.so":  # glibc found it through $LIB
                assert real(srch["last_tried"]) == real(str(lib / "liba.so")), srch
            if srch["name"] == "libnothere.so":
                assert ld["found"] is False and ld["hit"] is None
                assert ld["search"][-1]["source"] == "system search path" and ld["search"][-1]["dirs"] == built_in
            else:
                assert real(ld["hit"]) == real(srch["last_tried"]) and ld["agrees"], (srch, ld)
    assert status == 127 and "libnothere.so" in {s["name"] for s in searches}
    ldso_copy.unlink()
    (ld,) = Why(session).library("libnothere.so")["loads"]
    assert ld["search"][-1]["source"] == "system search path" and ld["search"][-1]["dirs"] == built_in


def test_a_dt_needed_path_found_nowhere_is_listed_by_its_file_name(tmp_path):
    """pathy is linked with libp.so by its path and libp.so has no soname: readelf -d shows DT_NEEDED
    holding the path. libp.so deleted, ld.so dies of that path ("error while loading shared libraries:
    PATH: cannot open", exit 127) without a search (LD_DEBUG=libs: no "find library" for it — a name
    with a slash is opened as it is). --library libp.so lists it, asked for as that path, not found."""
    import re

    src = ROOT / "tests/csrc/why"
    lib = tmp_path / "lib" / "libp.so"
    lib.parent.mkdir()
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", str(lib), str(src / "pick.c"), "-DWHO='p'"], check=True)
    exe = tmp_path / "pathy"
    subprocess.run(["gcc", "-O0", "-o", str(exe), str(src / "hi.c"), "-Wl,--no-as-needed", str(lib)], check=True)
    dyn = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True).stdout
    (needed,) = [n for n in re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", dyn) if "libp" in n]
    assert "/" in needed
    lib.unlink()
    libs = subprocess.run([str(exe)], env={**os.environ, "LD_DEBUG": "libs"}, capture_output=True, text=True)
    assert libs.returncode == 127 and f"{needed}: cannot open shared object file" in libs.stderr
    assert "libp.so" not in {s["name"] for s in ld_debug_searches(libs.stderr)}
    assert record("ld-debug", [str(exe)], {}, tmp_path / "s").returncode == 127
    (ld,) = Why(tmp_path / "s").library("libp.so")["loads"]
    assert ld["found"] is False and ld["asked_as"] == needed and ld["search"] == [] and ld["hit"] is None


def test_pid_keeps_one_process_of_several(bins, tmp_path):
    """`sh -c 'picker; LD_LIBRARY_PATH=libs picker'`: two processes load liba.so, from run/ and from
    libs/ (LD_DEBUG=files of the same command names both files). --library liba.so --pid P answers for
    P alone: one load, of P, and between them the two files glibc loaded (its "calling init" lines)."""
    import re

    from tracer import load_session
    from tracer.analysis.why_library import why_library

    cmd = f"{bins['picker']}; LD_LIBRARY_PATH={bins['liba-ldpath'].parent} {bins['picker']}"
    files = ld_debug(["sh", "-c", cmd], {}, "files")
    truth = sorted(real(p) for p in re.findall(r"calling init: (\S*/liba\.so)", files))
    assert truth == sorted([real(str(bins["liba"])), real(str(bins["liba-ldpath"]))])
    assert record("ld-debug", ["sh", "-c", cmd], {}, tmp_path / "s").returncode == 0
    s = load_session(tmp_path / "s")
    every = why_library(s, "liba.so")["loads"]
    pids = sorted(p for ld in every for p in ld["pids"])
    assert len(pids) == 2
    seen = []
    for p in pids:
        (ld,) = why_library(s, "liba.so", pid=p)["loads"]
        assert ld["pids"] == [p]
        seen.append(real(ld["path"]))
    assert sorted(seen) == truth


def test_a_library_found_now_elsewhere_than_it_was_loaded_from_disagrees(bins, tmp_path):
    """picker run with LD_LIBRARY_PATH=libs loaded libs/liba.so (LD_DEBUG=files then); libs/liba.so
    deleted since, glibc's LD_DEBUG=libs now finds run/liba.so (picker's RUNPATH). The replay's hit is
    that file, and it is not the one the session loaded: agrees is false."""
    import re
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(bins["picker"].parent, moved)
    argv, extra = [str(moved / "picker")], {"LD_LIBRARY_PATH": str(moved / "libs")}
    then = re.findall(r"calling init: (\S*/liba\.so)", ld_debug(argv, extra, "files"))
    assert [real(p) for p in then] == [real(str(moved / "libs" / "liba.so"))]
    assert record("ld-debug", argv, extra, tmp_path / "s").returncode == 0
    (moved / "libs" / "liba.so").unlink()
    now = [s for s in ld_debug_searches(ld_debug(argv, extra, "libs")) if s["name"] == "liba.so"]
    assert [real(s["last_tried"]) for s in now] == [real(str(moved / "run" / "liba.so"))]
    (ld,) = Why(tmp_path / "s").library("liba.so")["loads"]
    assert real(ld["hit"]) == real(now[0]["last_tried"]) and real(ld["path"]) == real(then[0])
    assert ld["agrees"] is False


def test_a_dlopened_dependency_gone_since_is_searched_for_the_programs_machine(bins, tmp_path):
    """opener dlopens libplug.so, which needs libb.so; run with LD_LIBRARY_PATH=libs2 holding a copy of
    libb.so, that copy is the one loaded (LD_DEBUG=files). In a session that kept no objects, with the
    copy deleted since, libb.so's own file cannot be read: the replay searches for an x86_64 64-bit
    library all the same, and finds what glibc's LD_DEBUG=libs finds now, run/libb.so through
    libplug.so's RUNPATH, after LD_LIBRARY_PATH."""
    import re
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(bins["picker"].parent, moved)
    (moved / "libs2").mkdir()
    shutil.copy(moved / "run" / "libb.so", moved / "libs2" / "libb.so")
    argv, extra = [str(moved / "opener"), str(moved / "libplug.so"), "plug"], {"LD_LIBRARY_PATH": str(moved / "libs2")}
    then = re.findall(r"calling init: (\S*/libb\.so)", ld_debug(argv, extra, "files"))
    assert [real(p) for p in then] == [real(str(moved / "libs2" / "libb.so"))]
    assert record("ld-debug", argv, extra, tmp_path / "s").returncode == 0
    for table in ("objects", "symbols", "loaded"):
        (tmp_path / "s" / f"{table}.parquet").unlink()
    (moved / "libs2" / "libb.so").unlink()
    (srch,) = [s for s in ld_debug_searches(ld_debug(argv, extra, "libs")) if s["name"] == "libb.so"]
    (ld,) = Why(tmp_path / "s").library("libb.so")["loads"]
    assert ld["readable"] is False and ld["how"] == "dlopen"
    mine = [(s["source"], [d for d in s["dirs"] if os.path.isdir(d)]) for s in ld["search"]]
    theirs = [(src, [d for d in dirs if os.path.isdir(d)]) for src, dirs in srch["places"]]
    assert mine == theirs
    assert real(ld["hit"]) == real(srch["last_tried"]) == real(str(moved / "run" / "libb.so"))


def test_an_imported_ld_debug_log_without_images_replays_the_objects_its_lookups_name(bins, tmp_path):
    """An LD_DEBUG=bindings log (no =files lines: no load bases, so the imported session lists no images)
    of opener dlopening libplug.so, and of a program needing libquiet.so, which references nothing and
    defines only what nobody calls (readelf -r: no relocations), so no binding line names it (its
    "calling init" line gives no load base). Oracles:
    LD_DEBUG=symbols,bindings of the same commands (libplug.so's pick searched in the global scope, then
    libplug.so and libb.so) and LD_DEBUG=libs (where glibc found libquiet.so). The dlopen'ed requester is
    known only by its lookups: its replay agrees, with glibc's searched objects; libquiet.so, named by no
    lookup, is found by today's search where glibc found it."""
    import shutil

    from tracer import load_session

    quiet = tmp_path / "q"
    (quiet / "lib").mkdir(parents=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-nostdlib", "-o", str(quiet / "lib" / "libquiet.so"),
                    "-Wl,-soname,libquiet.so", str(ROOT / "tests" / "csrc" / "why" / "quiet.c")], check=True)
    subprocess.run(["gcc", "-o", str(quiet / "quiet-hi"), str(ROOT / "tests" / "csrc" / "why" / "hi.c"),
                    "-Wl,--no-as-needed", f"-L{quiet / 'lib'}", "-lquiet", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib"],
                   check=True)
    assert "There are no relocations" in subprocess.run(["readelf", "-rW", str(quiet / "lib" / "libquiet.so")],
                                                         capture_output=True, text=True).stdout
    runs = {"plug": [str(bins["opener"]), str(bins["libplug"]), "plug"], "quiet": [str(quiet / "quiet-hi")]}
    logs = tmp_path / "logs"
    logs.mkdir()
    for name, argv in runs.items():
        assert subprocess.run(argv, env={**os.environ, "LD_DEBUG": "bindings",
                                         "LD_DEBUG_OUTPUT": str(logs / name)}).returncode == 0
    assert not any("libquiet" in b["requester"] + b["provider"]
                   for p in logs.iterdir() for b in ld_debug_bindings(p.read_text()))
    out = gotrace_cli("import", "ld-debug", str(logs), "-o", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    assert len(load_session(tmp_path / "s").images) == 0
    shutil.rmtree(logs)
    truth = [b for b in ld_debug_bindings(ld_debug(runs["plug"], {}, "symbols,bindings")) if b["symbol"] == "pick"]
    (want,) = truth
    (lk,) = why(tmp_path / "s", "pick")["lookups"]
    assert (real(lk["requester"]), real(lk["chosen"])) == (real(want["requester"]), real(want["provider"]))
    assert lk["agrees"] is True and [real(x) for x in lk["searched"]] == [real(x) for x in want["searched"]]
    (srch,) = [s for s in ld_debug_searches(ld_debug(runs["quiet"], {}, "libs")) if s["name"] == "libquiet.so"]
    (ld,) = why(tmp_path / "s", "--library", "libquiet.so")["loads"]
    assert ld["found"] is True and real(ld["hit"]) == real(srch["last_tried"]), ld
    assert [s["source"] for s in ld["search"]] == [src for src, _dirs in srch["places"]]


def test_a_lookup_the_kernels_vdso_fails_is_no_failure(verbins, tmp_path):
    """glibc asks the kernel's vDSO for each system call's fast entry point (dl_vdso_vsym) and, when the vDSO
    has none, makes the system call itself (glibc 2.36's sysdeps/unix/sysv/linux/sysdep-vdso.h: INLINE_VSYSCALL
    takes the syscall path for a NULL entry). This kernel's vDSO defines all five that glibc asks for
    (LD_DEBUG=symbols,bindings: each bound to linux-vdso.so.1), so the run of an older kernel, where
    __vdso_getcpu's lookup fails, is this machine's bpf session with that one event made a failure, as the
    probes record one (no provider). `why` says the vDSO lacks it and that nothing fails — not that the
    requester is gone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    argv = [str(verbins["verprog"])]
    asked = {b["symbol"] for b in ld_debug_bindings(ld_debug(argv, {}, "symbols,bindings"))
             if b["requester"] == b["provider"] == "linux-vdso.so.1"}
    assert "__vdso_getcpu" in asked and len(asked) == 5, asked
    assert record("bpf", argv, {}, tmp_path / "s").returncode == 0
    hit = 0
    for part in (tmp_path / "s" / "events").glob("part-*.parquet"):
        table = pq.read_table(part)
        failed = pa.array([s == "__vdso_getcpu" for s in table.column("symbol").to_pylist()])
        hit += sum(failed.to_pylist())
        for name, value in (("provider", None), ("resolved", False)):
            i = table.schema.get_field_index(name)
            col = table.column(i).to_pylist()
            table = table.set_column(i, table.schema.field(i), pa.array(
                [value if f else c for f, c in zip(failed.to_pylist(), col)], table.schema.field(i).type))
        pq.write_table(table, part)
    assert hit == 1
    (lk,) = Why(tmp_path / "s").symbol("__vdso_getcpu")["lookups"]
    assert lk["requester"] == "linux-vdso.so.1" and lk["chosen"] is None and lk["searched"] == ["linux-vdso.so.1"]
    assert "does not define __vdso_getcpu" in lk["reason"] and "nothing fails" in lk["reason"], lk["reason"]
    assert "gone" not in lk["reason"]
