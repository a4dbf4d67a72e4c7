"""Objects named so two runs line up: by file name, every dynamic linker as `ld.so`.

`/usr/aarch64-linux-gnu/lib/libc.so.6` and `/lib/x86_64-linux-gnu/libc.so.6`
are both `libc.so.6`: the same workload on two architectures, or recorded in
two directories, compares object by object.
"""
from __future__ import annotations

import os


def object_name(path) -> str | None:
    if path is None or (isinstance(path, float) and path != path):
        return None
    name = os.path.basename(str(path))
    return "ld.so" if name.startswith("ld-linux") or name.startswith("ld64.so") else name
