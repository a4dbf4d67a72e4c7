"""`gotrace compare BASELINE NEW --fail-on …`: the CI gate on a new run.

Real sessions of the tests/csrc/why/ programs under bpftrace. What is new in
the second run comes from glibc's own LD_DEBUG=bindings account of the same
programs (providers, symbols, symbol versions), the fatal lookup from glibc's
"symbol lookup error" message; the growth budgets are held to the sessions'
own event counts at the exact boundary (kept at the difference, broken one
below), so the arithmetic can fail either way.
"""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from conftest import gotrace_cli, require, require_bpftrace
from linkbins import build
from tracer import load_session

BINDING = re.compile(r"binding file (.+?) \[\d+\] to (.+?) \[\d+\]: \S+ symbol `([^']+)'(?: \[([^\]]+)\])?")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """base: picker; pre: picker with libpre.so preloaded; opener: another program (dlerror …);
    fatal: a program that dies of an undefined symbol."""
    import shutil

    require(shutil.which("gcc") is not None, "gcc is not installed")
    require_bpftrace()
    d = tmp_path_factory.mktemp("budgets")
    bins = build(d / "bins")
    pre = {**os.environ, "LD_PRELOAD": str(bins["libpre"])}
    out = {}
    for name, argv, env in (("base", [bins["picker"]], None), ("pre", [bins["picker"]], pre),
                            ("opener", [bins["opener"]], None), ("fatal", [bins["fatal"]], None)):
        res = gotrace_cli("bind", "-q", "-b", "bpftrace", "-o", str(d / name), "--", *map(str, argv), env=env)
        assert res.returncode == {"opener": 3, "fatal": 127}.get(name, 0), res.stderr
        ld = subprocess.run([*map(str, argv)], env={**(env or os.environ), "LD_DEBUG": "bindings"},
                            capture_output=True, text=True)
        out[name] = {"session": d / name, "ld_debug": BINDING.findall(ld.stderr), "stderr": res.stderr}
    return out


def gate(a, b, *budgets: str, json_out: bool = False) -> subprocess.CompletedProcess:
    return gotrace_cli("compare", str(a["session"]), str(b["session"]), *(["--json"] if json_out else []),
                       *[x for bud in budgets for x in ("--fail-on", bud)])


def broken_lines(stderr: str) -> list[str]:
    return [line.removeprefix("budget broken: ") for line in stderr.splitlines() if line.startswith("budget broken: ")]


def test_a_preloaded_interposer_is_a_new_provider(runs):
    base, pre = runs["base"], runs["pre"]
    # glibc's account: providers (by file name) bound in the preloaded run only
    providers = {name: {os.path.basename(p) for _r, p, _s, _v in r["ld_debug"]} for name, r in runs.items()}
    expected = providers["pre"] - providers["base"]
    assert expected == {"libpre.so"}
    res = gate(base, pre, "new-provider")
    assert res.returncode == 1, res.stderr
    (line,) = broken_lines(res.stderr)
    assert line.startswith("new-provider: 1 new provider: libpre.so (")
    assert gate(base, base, "new-provider").returncode == 0
    # the other way round: libb.so provided pick before libpre.so took it over
    back = providers["base"] - providers["pre"]
    res = gate(pre, base, "new-provider", json_out=True)
    assert set(json.loads(res.stdout)["budgets"][0]["culprits"]) == {
        f"{p} ({sum(os.path.basename(q) == p for _r, q, _s, _v in base['ld_debug'])} bindings)" for p in back}
    assert res.returncode == (1 if back else 0)


def test_new_symbols_and_versions_are_glibcs_own_account(runs):
    base, other = runs["base"], runs["opener"]
    sym = {n: {s for _r, _p, s, _v in r["ld_debug"]} for n, r in runs.items()}
    ver = {n: {(os.path.basename(p), v) for _r, p, _s, v in r["ld_debug"] if v} for n, r in runs.items()}
    res = gate(base, other, "new-symbol,new-version", json_out=True)
    budgets = {b["budget"]: b for b in json.loads(res.stdout)["budgets"]}
    new_syms = sym["opener"] - sym["base"]
    assert new_syms, "the oracle must have something new to find"
    assert set(budgets["new-symbol"]["culprits"]) == new_syms
    assert budgets["new-symbol"]["broken"] and res.returncode == 1
    new_vers = ver["opener"] - ver["base"]
    got = {(m.group(2), m.group(1)) for m in (re.match(r"(\S+) of (\S+) \(", c) for c in budgets["new-version"]["culprits"])}
    assert got == new_vers and budgets["new-version"]["broken"] == bool(new_vers)
    assert len(broken_lines(res.stderr)) == 1 + bool(new_vers)


def test_growth_budgets_break_exactly_past_their_allowance(runs):
    base, pre = runs["base"], runs["pre"]
    na, nb = (len(load_session(r["session"]).events) for r in (base, pre))
    delta = nb - na
    assert delta > 0  # libpre.so's own bindings
    assert gate(base, pre, f"bindings+{delta}").returncode == 0
    res = gate(base, pre, f"bindings+{delta - 1}")
    assert res.returncode == 1
    assert broken_lines(res.stderr) == [f"bindings+{delta - 1}: bindings {na:,} → {nb:,} "
                                        f"(+{delta / na * 100:.1f}%; over the allowed +{delta - 1:,})"]
    pct = delta / na * 100
    assert gate(base, pre, f"bindings+{pct + 0.01:.2f}%").returncode == 0
    assert gate(base, pre, f"bindings+{pct - 0.01:.2f}%").returncode == 1
    # resolver time: the sum of the latencies bpftrace measured (resolver-wall), and of latency minus the
    # time switched out (resolver, where both sessions measured that)
    # (the two runs in the order that makes it grow, so the boundary is always checked, to the ns)
    def wall(ev):
        return int(ev["latency_ns"].sum())

    def oncpu(ev):
        return int((ev["latency_ns"] - ev["offcpu_ns"]).sum())

    for budget, stat in (("resolver-wall", wall), ("resolver", oncpu)):
        (ra, low), (rb, high) = sorted(((stat(load_session(r["session"]).events), r) for r in (base, pre)),
                                       key=lambda pair: pair[0])
        assert rb > ra
        assert gate(low, high, f"{budget}+{rb - ra}ns").returncode == 0
        assert gate(low, high, f"{budget}+{rb - ra - 1}ns").returncode == 1
    assert gate(base, base, "bindings+0,resolver+0%,relocation+0%,processes+0,failed+0").returncode == 0


def test_a_new_fatal_lookup_breaks_the_gate(runs):
    base, fatal = runs["base"], runs["fatal"]
    m = re.search(r"symbol lookup error: (\S+): undefined symbol: (\S+)", fatal["stderr"])  # glibc's account
    assert m
    res = gate(base, fatal, "new-fatal", "fatal+0")
    assert res.returncode == 1
    lines = broken_lines(res.stderr)
    assert lines[0] == f"new-fatal: 1 new fatal: {m.group(2)} in {os.path.basename(m.group(1))} (process fatal)"
    assert lines[1].startswith("fatal+0: fatal 0 → 1 ")
    assert gate(fatal, fatal, "new-fatal,fatal+0").returncode == 0
    assert "all 2 budgets kept" in gate(fatal, fatal, "new-fatal,fatal+0").stderr


def test_budgets_that_cannot_be_read_or_checked_are_errors(runs, tmp_path):
    base = runs["base"]
    for bad, says in (("bindings+10x", "not understood"), ("resolver+10", "say the unit of time"),
                      ("failed+1.5", "a whole number"), ("new-thing", "not understood"), (",", "names no budget")):
        res = gotrace_cli("compare", str(tmp_path / "nope"), str(tmp_path / "nope"), "--fail-on", bad)
        assert res.returncode == 2 and says in res.stderr, (bad, res.stderr)  # before any session is read
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    ld = tmp_path / "ld"
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(ld), "--", "true")
    assert out.returncode == 0, out.stderr
    for budget, says in (("resolver+10%", "times no lookup"), ("new-fatal", "LD_DEBUG prints only lookups"),
                         ("failed+0", "LD_DEBUG prints only lookups")):
        res = gotrace_cli("compare", str(ld), str(base["session"]), "--fail-on", budget)
        assert res.returncode == 2 and says in res.stderr, (budget, res.stderr)
    # what ld-debug does record is gated as well
    assert gotrace_cli("compare", str(ld), str(ld), "--fail-on", "bindings+0,new-provider").returncode == 0


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_program_that_no_longer_starts_breaks_the_outcome_budgets(backend, tmp_path):
    """A library goes missing between two runs. Oracles: the program's own exit status run without
    gotrace (127) and glibc's "error while loading shared libraries: LIB" naming the library; the
    script around it exits 0 either way (its own status, without gotrace), so only the budgets on
    processes see the death there, and exit-status sees it where the program is the command."""
    import shutil

    from conftest import require_backend

    require(shutil.which("gcc") is not None, "gcc is not installed")
    require_backend(backend)
    bins = build(tmp_path / "bins")
    picker = str(bins["picker"])
    script = ["sh", "-c", '"$0"; echo after', picker]

    def record(name: str, argv: list[str]) -> dict:
        res = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / name), "--", *argv)
        return {"session": tmp_path / name, "code": res.returncode}

    base, base_direct = record("base", script), record("base-direct", [picker])
    assert (base["code"], base_direct["code"]) == (0, 0)
    lib = bins["libb"]
    lib.rename(lib.with_suffix(".gone"))
    own = subprocess.run([picker], capture_output=True, text=True)
    m = re.search(r"error while loading shared libraries: (\S+): cannot open shared object file", own.stderr)
    assert own.returncode == 127 and m, own.stderr
    script_own = subprocess.run(script, capture_output=True, text=True).returncode
    new, new_direct = record("new", script), record("new-direct", [picker])
    assert (new["code"], new_direct["code"]) == (script_own, 127)

    res = gate(base, new, "loader-deaths+0,new-missing-library,exit-status", json_out=True)
    assert res.returncode == 1, res.stderr
    budgets = {b["budget"]: b for b in json.loads(res.stdout)["budgets"]}
    death = f"{m.group(1)}, needed by picker (process picker, exit 127)"
    assert budgets["loader-deaths+0"]["broken"] and budgets["loader-deaths+0"]["culprits"] == [death]
    assert (budgets["loader-deaths+0"]["baseline"], budgets["loader-deaths+0"]["new"]) == (0, 1)
    assert budgets["new-missing-library"]["broken"] and budgets["new-missing-library"]["culprits"] == [death]
    assert not budgets["exit-status"]["broken"] and budgets["exit-status"]["new"] == script_own == 0
    assert broken_lines(res.stderr) == [f"loader-deaths+0: loader-deaths 0 → 1 (+∞%; over the allowed +0): {death}",
                                        f"new-missing-library: 1 new missing library: {death}"]
    res = gate(base_direct, new_direct, "exit-status", json_out=True)
    assert res.returncode == 1
    (b,) = json.loads(res.stdout)["budgets"]
    assert (b["baseline"], b["new"]) == (0, own.returncode) and b["culprits"] == [death]
    # a run against itself keeps them all
    assert gate(new, new, "loader-deaths+0,new-missing-library,exit-status").returncode == 0
    assert gate(base, base, "loader-deaths+0,new-missing-library,exit-status").returncode == 0


def test_outcome_budgets_on_a_log_of_the_loader_alone(tmp_path):
    """ld-debug knows the command's exit status (the oracle: `false` exits 1) but not its children's:
    exit-status is checked, the budgets on processes are refused in one line (exit 2)."""
    for name, cmd in (("t", "true"), ("f", "false")):
        assert gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / name), "--", cmd).returncode == \
            subprocess.run([cmd]).returncode
    t, f = {"session": tmp_path / "t"}, {"session": tmp_path / "f"}
    res = gate(t, f, "exit-status")
    assert res.returncode == 1 and broken_lines(res.stderr) == ["exit-status: the command exited 0 → 1"]
    res = gate(f, t, "exit-status")  # a change either way: the gate holds a status, not a direction
    assert res.returncode == 1 and broken_lines(res.stderr) == ["exit-status: the command exited 1 → 0"]
    for budget in ("loader-deaths+0", "new-missing-library"):
        res = gate(t, f, budget)
        assert res.returncode == 2 and "records the exit status of the command alone" in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
