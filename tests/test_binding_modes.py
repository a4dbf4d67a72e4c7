"""Binding kinds per mode — lazy PLT, -z now, dlopen+dlsym — under each backend.

The programs are built from tests/csrc/modes.c by the fixture. What each mode
must produce follows from how ld.so works, and LD_DEBUG is the oracle for the
symbols themselves: the kind of cos() is lazy only when the program is linked
lazily; sin is looked up with dlsym in both builds. (For dlsym on a handle,
glibc's requester is the handle's object — libm here — as LD_DEBUG also says.)
"""
from __future__ import annotations

import os

import pytest

from conftest import require_backend
from tracer import bind, load_session
from tracer.session import schema

BACKENDS = ["bpf", "bpftrace", "ld-debug", "lldb"]


def _kinds(session, exe: str, symbol: str) -> set[str]:
    ev = session.events
    mine = ev[(ev["exe"] == exe) & (ev["symbol"] == symbol)]
    return set(mine["kind"].astype(str))


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
        assert _kinds(s, exe, "sin") == {"dlsym"}, mode
        sin = s.events[s.events["symbol"] == "sin"]
        assert set(sin["requester"].astype(str)) == set(sin["provider"].astype(str))
        assert _kinds(s, exe, "dlopen") <= {"lazy", "eager"}
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
