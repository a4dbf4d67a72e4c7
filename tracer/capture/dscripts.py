"""Where the probe scripts are: dscripts/ at the top of a checkout, or the copy an installed package carries.

The scripts are meant to be read and run by hand too (each has a header and an
example beside it), so they live in a top-level directory rather than deep in
the package; a wheel ships them as ``tracer/dscripts`` (pyproject.toml).
"""
from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2] / "dscripts"  # tracer/capture/dscripts.py -> <root>/dscripts
_INSTALLED = Path(__file__).resolve().parents[1] / "dscripts"  # <site-packages>/tracer/dscripts


def path(name: str) -> str:
    """The full path of probe script ``name`` (bindsnoop.bt …)."""
    for d in (_CHECKOUT, _INSTALLED):
        if (d / name).is_file():
            return str(d / name)
    return str(_CHECKOUT / name)  # bpftrace then says the file is missing
