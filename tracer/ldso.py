"""Locates the host's dynamic linker and libc, the files bind probes attach to."""
from __future__ import annotations

import os
import platform

_LDSO = {
    "x86_64": "/lib64/ld-linux-x86-64.so.2",
    "aarch64": "/lib/ld-linux-aarch64.so.1",
}
_LIBC_DIRS = {
    "x86_64": ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"],
    "aarch64": ["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"],
}


def ldso_path(machine: str | None = None) -> str | None:
    path = _LDSO.get(machine or platform.machine())
    return os.path.realpath(path) if path and os.path.exists(path) else None


def libc_path(machine: str | None = None) -> str | None:
    for d in _LIBC_DIRS.get(machine or platform.machine(), []):
        cand = os.path.join(d, "libc.so.6")
        if os.path.exists(cand):
            return os.path.realpath(cand)
    return None
