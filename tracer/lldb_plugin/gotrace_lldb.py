"""gotrace inside lldb. Load it with the line `gotrace lldb-init` prints:

    command script import /path/to/tracer/lldb_plugin/gotrace_lldb.py

lldb runs its own Python (Debian: the system python3), which knows nothing
of the virtual environment gotrace lives in. This file therefore finds that
environment first — $GOTRACE_VENV, else a directory with pyvenv.cfg at or
above the package (an installed copy), else a .venv beside the package (a
source checkout) — and adds its site-packages and the package root to
sys.path. Both Pythons must be the same minor version, because numpy and
pyarrow are compiled for one; a mismatch is reported as one line.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def _venvs(pkg_root: Path) -> list[Path]:
    env = os.environ.get("GOTRACE_VENV")
    if env:
        return [Path(env)]
    found = []
    for d in (pkg_root, *pkg_root.parents):
        for cand in (d, d / ".venv"):
            if (cand / "pyvenv.cfg").is_file() and cand not in found:
                found.append(cand)
    return found


def _bootstrap() -> None:
    pkg_root = Path(__file__).resolve().parents[2]  # the directory holding `tracer`
    if str(pkg_root) not in sys.path:
        sys.path.insert(0, str(pkg_root))
    want = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for venv in _venvs(pkg_root):
        libs = sorted((venv / "lib").glob("python3.*/site-packages"))
        match = [p for p in libs if p.parent.name == want]
        if match:
            if str(match[0]) not in sys.path:
                sys.path.insert(1, str(match[0]))
            return
        if libs:
            raise ImportError(f"gotrace's environment {venv} is for {libs[0].parent.name}, lldb runs {want}; "
                              f"recreate it with that Python (python3 -m venv) or point GOTRACE_VENV at one")


def __lldb_init_module(debugger, internal_dict):
    try:
        _bootstrap()
        from tracer.lldb_plugin import commands as lldb_commands
    except ImportError as exc:
        print(f"gotrace: cannot load inside lldb: {exc}", file=sys.stderr)
        return
    for name in lldb_commands.COMMANDS:  # lldb resolves them through this module
        globals()[name] = getattr(lldb_commands, name)
    lldb_commands.register(debugger, __name__)
