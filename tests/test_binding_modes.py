"""Binding kinds per mode — lazy PLT, -z now, dlopen+dlsym — under each backend.

The programs are built from tests/csrc/modes.c by the fixture. The oracle is glibc's own
account of the same run, LD_DEBUG=files,bindings: which object bound which symbol to which,
and whether before ld.so's "transferring control" (start-up: eager) or after (run time);
a run-time binding is a PLT slot's (lazy) when the requester has a JUMP_SLOT relocation for
the symbol (readelf -r) and it is the first binding of that (requester, symbol), else dlsym's.
(For dlsym on a handle, glibc's requester is the handle's object — libm here.)
"""
from __future__ import annotations

import os
import subprocess
from collections import Counter

import pytest

from conftest import require_backend
from oracles import readelf_symbol_relocs
from tracer import bind, load_session
from tracer.session import schema

BACKENDS = ["bpf", "bpftrace", "ld-debug", "lldb"]


SYMBOLS = ("cos", "sin", "dlopen", "dlsym")


def _kinds(session, exe: str, symbol: str) -> set[str]:
    ev = session.events
    mine = ev[(ev["exe"] == exe) & (ev["symbol"] == symbol)]
    return set(mine["kind"].astype(str))


def glibc_account(binary) -> Counter:
    """(requester, symbol, provider, kind) of each binding of SYMBOLS, from LD_DEBUG=files,bindings
    and readelf -r, read here with nothing from tracer."""
    text = subprocess.run([str(binary), "0.25"], env={**os.environ, "LD_DEBUG": "files,bindings"},
                          capture_output=True, text=True).stderr
    slots: dict[str, set[str]] = {}
    running, seen, out = False, set(), Counter()
    for line in text.splitlines():
        body = line.split(":", 1)[1].strip() if ":" in line else ""
        if body.startswith("transferring control:"):
            running = True
        if not body.startswith("binding file "):
            continue
        req, rest = body[len("binding file "):].split(" [", 1)
        prov = rest.split("] to ", 1)[1].split(" [", 1)[0]
        sym = rest.split("symbol `", 1)[1].split("'", 1)[0]
        if sym not in SYMBOLS:
            continue
        if req not in slots:
            slots[req] = {n.split("@")[0] for _o, t, n in readelf_symbol_relocs(req) if t.endswith("JUMP_SLOT")}
        if not running:
            kind = "eager"
        else:
            kind = "lazy" if sym in slots[req] and (req, sym) not in seen else "dlsym"
            seen.add((req, sym))
        out[(req, sym, prov, kind)] += 1
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_lazy_now_and_dlsym_kinds(backend, modes_bins, tmp_path):
    require_backend(backend)
    seen = {}
    for mode, binary in modes_bins.items():
        res = bind([str(binary), "0.25"], out=tmp_path / f"{backend}-{mode}", backend=backend,
                   env=dict(os.environ))
        assert res.exit_code == 0
        s = load_session(res.session)
        seen[mode] = s
        exe = str(binary)
        # glibc's account of the same program, binding by binding
        ev = s.events[(s.events["exe"] == exe) & s.events["symbol"].isin(SYMBOLS) & s.events["resolved"]]
        mine = Counter(zip(ev["requester"].astype(str), ev["symbol"].astype(str), ev["provider"].astype(str),
                           ev["kind"].astype(str)))
        theirs = glibc_account(binary)
        assert {k[1] for k in theirs} == set(SYMBOLS), theirs  # the oracle saw every symbol
        assert mine == theirs, mode
        assert _kinds(s, exe, "sin") == {"dlsym"}, mode
        sin = s.events[s.events["symbol"] == "sin"]
        assert len(sin) and set(sin["requester"].astype(str)) == set(sin["provider"].astype(str))
        assert _kinds(s, exe, "dlopen") == {"lazy" if mode == "lazy" else "eager"}, mode
    assert _kinds(seen["lazy"], str(modes_bins["lazy"]), "cos") == {"lazy"}
    assert _kinds(seen["now"], str(modes_bins["now"]), "cos") == {"eager"}
    # every backend produces the one contract (tracer/session/schema.py)
    for s in seen.values():
        assert list(s.events.columns) == schema.EVENTS.names
        assert list(s.events["kind"].cat.categories) == list(schema.KINDS)
        assert str(s.events["tid"].dtype) == "Int32" and str(s.events["latency_ns"].dtype) == "Int64"
        assert list(s.processes.columns) == schema.PROCESSES.names
        assert list(s.images.columns) == schema.IMAGES.names
        assert (s.events["backend"].astype(str) == backend).all()
        assert s.meta["backend"] == backend
    # the dlsym'd symbol comes from libm, the PLT-bound one too
    for s in seen.values():
        prov = s.events.loc[s.events["symbol"].isin(["sin", "cos"]), "provider"].astype(str)
        assert prov.str.contains("libm.so").all()
