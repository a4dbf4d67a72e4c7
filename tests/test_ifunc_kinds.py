"""An IFUNC resolver's lookup in the vDSO takes the kind of the binding it is part of (capture/ifunc_kinds.py).

Oracle: glibc's LD_DEBUG=bindings of the same program: each vDSO binding line follows the binding of
the IFUNC symbol whose resolver asked for it (time, gettimeofday), before "transferring control" (at
load: eager) or after it (at the first call: lazy); and readelf: the program imports no dlsym.
"""
from __future__ import annotations

import re
import subprocess
from collections import Counter

import pytest

from conftest import ROOT, gotrace_cli, require, require_backend

VDSO_LINE = re.compile(r"binding file linux-vdso\.so\.1 \[0\] to linux-vdso\.so\.1 \[0\]: normal symbol `(\w+)'")


def glibc_kinds(argv: list[str]) -> Counter:
    """(symbol, kind) of each vDSO binding LD_DEBUG=bindings prints: eager before control is transferred."""
    text = subprocess.run(argv, env={"LD_DEBUG": "bindings"}, capture_output=True, text=True).stderr
    out, running = Counter(), False
    for line in text.splitlines():
        running = running or "transferring control:" in line
        m = VDSO_LINE.search(line)
        if m:
            out[(m[1], "lazy" if running else "eager")] += 1
    return out


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ifunc")
    for name, flags in (("lazy", []), ("now", ["-Wl,-z,now"])):
        subprocess.run(["gcc", "-O0", *flags, "-o", str(out / name), str(ROOT / "tests/csrc/timeifunc.c")], check=True)
    return out


@pytest.mark.parametrize("backend", ["bpf", "bpftrace", "lldb", "ld-debug"])
@pytest.mark.parametrize("name", ["lazy", "now"])
def test_a_vdso_lookup_for_an_ifunc_is_no_dlsym(programs, tmp_path, backend, name):
    """timeifunc calls time() and gettimeofday(), x86-64 glibc's IFUNCs, and no dlsym (readelf): its lookups
    in the vDSO are glibc's at start-up (eager), then one per IFUNC resolver — eager when linked -z now,
    lazy at the first call otherwise (LD_DEBUG=bindings). The probes named the resolver's lookups by their
    caller, libc, "dlsym"; every backend now gives glibc's kinds."""
    require_backend(backend)
    prog = str(programs / name)
    dyn = subprocess.run(["readelf", "-W", "--dyn-syms", prog], capture_output=True, text=True).stdout
    assert " time" in dyn and "dlsym" not in dyn  # the premise: it calls time(), never dlsym
    want = glibc_kinds([prog])
    assert sum(n for (s, k), n in want.items() if s in ("__vdso_time", "__vdso_gettimeofday")) == 4  # start-up + IFUNC
    out = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / "s"), "--", prog)
    assert out.returncode == 0, out.stderr
    from tracer import load_session

    ev = load_session(tmp_path / "s").events
    vdso = ev[ev["requester"].astype(str) == "linux-vdso.so.1"]
    assert Counter(zip(vdso["symbol"].astype(str), vdso["kind"].astype(str))) == want


def _table(rows):
    import pyarrow as pa

    pid, tid, ts, req, sym, kind = zip(*rows)
    return pa.table({"ts_ns": pa.array(ts, pa.int64()), "pid": pa.array(pid, pa.int32()),
                     "tid": pa.array(tid, pa.int32()), "requester": list(req), "symbol": list(sym),
                     "kind": list(kind)})


def test_the_binding_before_may_be_in_the_table_before():
    """Tables come in chunks: the IFUNC symbol's binding may end one table and its resolver's vDSO lookup start
    the next; a thread's last lookup is remembered across them. Each thread is its own (a lookup of another
    thread between them does not count), and a dlsym of an IFUNC symbol leaves its resolver's lookup a dlsym."""
    from tracer.capture.ifunc_kinds import IfuncKinds

    relabel = IfuncKinds()
    first = relabel(_table([(7, 7, 99, "/usr/bin/x", "a", "eager"), (7, 7, 100, "/usr/bin/x", "time", "lazy"),
                            (7, 8, 101, "/usr/bin/x", "f", "eager"), (7, 9, 102, "/usr/bin/x", "gettimeofday", "dlsym")]))
    assert first.column("kind").to_pylist() == ["eager", "lazy", "eager", "dlsym"]
    second = relabel(_table([(7, 8, 104, "/usr/bin/x", "g", "lazy"), (7, 7, 103, "linux-vdso.so.1", "__vdso_time", "dlsym"),
                             (7, 9, 105, "linux-vdso.so.1", "__vdso_gettimeofday", "dlsym"),
                             (7, 8, 106, None, "h", "dlsym")]))  # a requester DTrace could not name: a dlsym
    assert second.column("kind").to_pylist() == ["lazy", "lazy", "dlsym", "dlsym"]
    # a thread's first lookup by the vDSO from libc, nothing before it: left as the probes said
    assert relabel(_table([(9, 9, 1, "linux-vdso.so.1", "__vdso_time", "dlsym")])).column("kind").to_pylist() == ["dlsym"]
