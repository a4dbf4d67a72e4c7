"""Failed lookups told apart (fatal, weak, dlsym) and processes that bound nothing, told what they are.

The programs come from tests/csrc/why/ (tests/linkbins.py). The oracles: glibc's own
message for a fatal lookup ("symbol lookup error: REQUESTER: undefined symbol: SYMBOL" on
the program's stderr, exit 127), dlerror()'s text for a dlopen that failed, readelf's
--dyn-syms for which references are weak, readelf -l for which programs have no
PT_INTERP.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import gotrace_cli, require, require_backend
from linkbins import build
from tracer import load_session

GLIBC_FATAL = re.compile(r"^(\S+): symbol lookup error: (\S+): undefined symbol: (\S+?)(?:, version (\S+))?$", re.M)


@pytest.fixture(scope="module")
def bins(tmp_path_factory):
    import shutil

    require(shutil.which("gcc") is not None, "gcc is not installed")
    return build(tmp_path_factory.mktemp("why"))


def weak_undefined(path) -> set[str]:
    """readelf's account: the undefined dynamic symbols bound WEAK."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {f[7].split("@")[0] for f in (l.split() for l in out.splitlines())
            if len(f) >= 8 and f[6] == "UND" and f[4] == "WEAK"}


def report(session) -> dict:
    out = gotrace_cli("report", "--json", str(session))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("backend", ["bpf", "bpftrace", "lldb"])
def test_a_fatal_lookup_is_told_from_weak_misses(backend, bins, tmp_path):
    require_backend(backend)
    session = tmp_path / "s"
    out = gotrace_cli("bind", "--backend", backend, "-o", str(session), "--", str(bins["fatal"]))
    assert out.returncode == 127, out.stderr  # the program's own exit status
    oracle = [(m.group(2), m.group(3), m.group(4)) for m in GLIBC_FATAL.finditer(out.stderr)]
    assert len(oracle) == 1, out.stderr
    r = report(session)
    assert [(f["requester"], f["symbol"], f["version"]) for f in r["fatal_lookups"]] == oracle
    (f,) = r["fatal_lookups"]
    assert f["outcome"] == "died" and f["exit_code"] == 127 and f["kind"] == "eager"
    fl = r["failed_lookups"]
    weak = {w["symbol"] for w in fl["weak_symbols"]}
    readelf_weak = weak_undefined(bins["fatal"]) | weak_undefined(bins["liblost"])
    assert "maybe" in weak and weak <= readelf_weak
    assert fl["fatal"] == 1 and fl["unknown"] == 0
    assert fl["weak"] + fl["fatal"] + fl["dlsym"] == r["bindings"]["failed"]
    assert any("died of an undefined symbol: gone" in n for n in r["notes"])
    # the process died before ld.so's own relocation (always last), where its name is read:
    # every provider is still named, ld.so as PT_INTERP says
    providers = {p["provider"] for p in r["top_providers"]}
    assert not any(p.startswith("<") for p in providers), providers
    interp = re.search(r"interpreter: (\S+?)\]", subprocess.run(["readelf", "-lW", str(bins["fatal"])],
                       capture_output=True, text=True).stdout).group(1)
    assert os.path.realpath(interp) in {os.path.realpath(p) for p in providers if p.startswith("/")}
    text = gotrace_cli("report", str(session)).stdout
    assert "fatal lookups" in text and "died, exit 127" in text and "weak reference: skipped" in text


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_dlopen_that_fails_on_a_missing_symbol_is_caught_not_fatal(backend, bins, tmp_path):
    require_backend(backend)
    session = tmp_path / "s"
    out = gotrace_cli("bind", "--backend", backend, "-o", str(session), "--", str(bins["opener"]),
                      str(bins["libuser"]))
    assert out.returncode == 3, out.stderr
    m = re.search(r"dlopen failed: (\S+): undefined symbol: (\S+)", out.stdout)  # dlerror()'s account
    assert m, out.stdout
    r = report(session)
    assert [(f["requester"], f["symbol"], f["outcome"]) for f in r["fatal_lookups"]] == \
        [(m.group(1), m.group(2), "caught")]


def test_ld_debug_says_its_account_has_no_failed_lookups(bins, tmp_path):
    session = tmp_path / "s"
    out = gotrace_cli("bind", "--backend", "ld-debug", "-o", str(session), "--", str(bins["fatal"]))
    assert out.returncode == 127 and GLIBC_FATAL.search(out.stderr)
    r = report(session)
    assert r["fatal_lookups"] == [] and r["bindings"]["failed"] == 0
    assert any("prints only lookups that succeeded" in n for n in r["notes"])
    assert any(n.startswith("fatal exited 127") for n in r["notes"])


def has_interp(path) -> bool:
    out = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=True).stdout
    return any(l.split()[:1] == ["INTERP"] for l in out.splitlines())


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_static_processes_are_listed_as_static(backend, binaries, tmp_path):
    require_backend(backend)
    static = binaries("go-linux-amd64-static")
    assert not has_interp(static) and has_interp(sys.executable)
    session = tmp_path / "s"
    out = gotrace_cli("bind", "--backend", backend, "-o", str(session), "--", "/bin/sh", "-c",
                      f"{static}; {static}; exit 0")
    assert out.returncode == 0, out.stderr
    r = report(session)
    rows = {row["exe"]: row for row in r["processes"]["without_bindings"]}
    assert rows[str(static)] == {"exe": str(static), "processes": 2, "reason": "static: no dynamic linker"}
    assert r["processes"]["static"] == 2
    assert "/bin/sh" not in rows and "/usr/bin/dash" not in rows  # the shell bound symbols
    assert "static: no dynamic linker" in gotrace_cli("report", str(session)).stdout


def test_a_failed_lookup_of_unknown_kind_is_never_called_harmless(bins, tmp_path, monkeypatch):
    """Oracle: glibc's "symbol lookup error … undefined symbol: gone" on the program's stderr and its
    exit status 127: that lookup killed the program. With its requester's file unreadable (as when a
    file is gone) the report cannot tell weak from fatal; it lists the lookup apart, under no title
    that calls it harmless or says it stopped nothing."""
    import io

    from rich.console import Console

    from tracer.analysis.report import report_session
    from tracer.binary import facts
    from tracer.render.report import render_report

    require_backend("bpf")
    session = tmp_path / "s"
    out = gotrace_cli("bind", "-q", "--backend", "bpf", "-o", str(session), "--", str(bins["fatal"]))
    ((_prog, requester, symbol, _ver),) = GLIBC_FATAL.findall(out.stderr)
    assert out.returncode == 127
    # every requester unreadable: a session that kept no objects (an older gotrace's, an import), its files gone
    for table in ("objects", "symbols", "loaded"):
        (session / f"{table}.parquet").unlink()
    monkeypatch.setattr(facts, "dyn_object", lambda path: None)
    rep = report_session(session)
    assert symbol in {r["symbol"] for r in rep["failed_lookups"]["unknown_symbols"]}
    buf = io.StringIO()
    render_report(rep, Console(file=buf, width=300, highlight=False))
    text = buf.getvalue()
    lines = text.splitlines()
    row = max(i for i, line in enumerate(lines) if line.split()[:1] == [symbol])  # the failed-lookups table's
    header = max(i for i in range(row) if lines[i].split()[:2] == ["symbol", "lookups"])
    title = lines[header - 1]
    assert "harmless" not in text, text
    assert "stopped nothing" not in title and "may have been fatal" in title, title


GLIBC_BINDING = re.compile(r"^\s*(\d+):\s+binding file (.+?) \[\d+\] to (.+?) \[\d+\]: normal symbol `(.+?)'", re.M)


def glibc_bindings(argv: list[str]) -> tuple[int, set[tuple[str, str, str]]]:
    """(exit status, {(requester, provider, symbol)}) as LD_DEBUG=bindings prints them, paths resolved."""
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "LD_DEBUG": "bindings"})
    return out.returncode, {(os.path.realpath(r), os.path.realpath(p), s)
                            for _pid, r, p, s in GLIBC_BINDING.findall(out.stderr)}


def session_bindings(session, pid: int) -> set[tuple[str, str, str]]:
    ev = load_session(session).events
    ev = ev[(ev["pid"] == pid) & ev["resolved"]]
    return {(os.path.realpath(r), v if v.startswith("<") else os.path.realpath(v), s)
            for r, v, s in zip(ev["requester"].astype(str), ev["provider"].astype(str), ev["symbol"].astype(str),
                               strict=True)}


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_the_interpreter_of_a_process_that_died_is_named_beside_a_process_that_lived(backend, bins, tmp_path):
    """fatal dies of a lookup before ld.so's own relocation, where bindsnoop reads ld.so's name;
    gotrace names that one unnamed provider from fatal's PT_INTERP. The shell around it lived:
    its ld.so was named the usual way, which must not count as fatal's. Oracle: glibc's
    LD_DEBUG=bindings of fatal run alone (every binding it made, ld.so's included, paths
    resolved) and its exit status 127."""
    require_backend(backend)
    code, oracle = glibc_bindings([str(bins["fatal"])])
    assert code == 127
    interp = os.path.realpath(re.search(r"interpreter: (\S+?)\]", subprocess.run(
        ["readelf", "-lW", str(bins["fatal"])], capture_output=True, text=True).stdout).group(1))
    assert any(p == interp for _r, p, _s in oracle)  # fatal bound symbols to ld.so before it died
    session = tmp_path / "s"
    out = gotrace_cli("bind", "-q", "--backend", backend, "-o", str(session), "--", "/bin/sh", "-c",
                      f"{bins['fatal']}; exit 0")
    assert out.returncode == 0, out.stderr
    procs = load_session(session).processes
    (pid,) = {int(p) for p in procs.loc[procs["exe"] == str(bins["fatal"]), "pid"]}
    assert session_bindings(session, pid) == oracle


def test_a_process_that_died_with_two_unnamed_providers_names_neither_wrongly(tmp_path):
    """tests/csrc/deadtwo/: the program dies of a lookup while two providers are unrelocated
    (unnamed in bindsnoop's records): itself (libdta.so's main_value) and ld.so (libc's
    _rtld_global, …). Which address is which the records do not say: each stays an address,
    every other provider is glibc's. Oracle: glibc's LD_DEBUG=bindings of the same program
    and its exit status 127 (its "symbol lookup error" on stderr)."""
    require_backend("bpftrace")
    src = Path(__file__).resolve().parent / "csrc" / "deadtwo"
    d = tmp_path / "b"
    d.mkdir()
    for cmd in (["-shared", "-fPIC", "-o", d / "libdta.so", src / "a.c"],
                ["-shared", "-fPIC", "-Wl,-z,now", "-o", d / "libdtb.so", src / "b.c"],
                ["-o", d / "deadtwo", src / "main.c", f"-L{d}", "-ldtb", "-ldta",
                 f"-Wl,--allow-shlib-undefined,-rpath,{d}"]):
        subprocess.run(["gcc", "-O0", *map(str, cmd)], check=True)
    prog = str(d / "deadtwo")
    code, oracle = glibc_bindings([prog])
    assert code == 127
    unrelocated = {os.path.realpath(prog), os.path.realpath(re.search(r"interpreter: (\S+?)\]", subprocess.run(
        ["readelf", "-lW", prog], capture_output=True, text=True).stdout).group(1))}
    assert unrelocated <= {p for _r, p, _s in oracle}
    session = tmp_path / "s"
    out = gotrace_cli("bind", "-q", "--backend", "bpftrace", "-o", str(session), "--", prog)
    assert out.returncode == 127 and GLIBC_FATAL.search(out.stderr), out.stderr
    (pid,) = {int(p) for p in load_session(session).processes["pid"]}
    ours = session_bindings(session, pid)
    expected = {(r, "<addr>" if p in unrelocated else p, s) for r, p, s in oracle}
    assert {(r, "<addr>" if p.startswith("<link_map 0x") else p, s) for r, p, s in ours} == expected
