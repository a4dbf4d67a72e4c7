"""gotrace inside lldb. Load it with the line `gotrace lldb-init` prints:

    command script import /path/to/tracer/lldb_plugin/gotrace_lldb.py

lldb runs its own Python (Debian: the system python3), which knows nothing
of the virtual environment gotrace lives in. This file therefore finds that
environment first — $GOTRACE_VENV, else a directory with pyvenv.cfg at or
above the package (an installed copy), else a .venv beside the package (a
source checkout) — and adds its site-packages and the package root to
sys.path. Both Pythons must be the same minor version, because numpy and
pyarrow are compiled for one; a mismatch is reported as one line.

lldb's Python finds its standard library from the first `python3` on PATH.
With gotrace's venv on PATH (an activated venv, the quickstart's PATH) that is
the venv's base Python — say a pyenv 3.11.7 — while the interpreter running
is lldb's own (Debian's 3.11.2): the stdlib's C modules then fail to load
(`_ssl: undefined symbol: _PyModule_Add`, when pyarrow imports ssl to save a
session). So the bootstrap first points those stdlib paths back at the
library of the interpreter actually running, found through the libpython
mapped into lldb.
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


def _running_prefix() -> str | None:
    """The install prefix of the libpython this process runs (/usr for Debian's), None if unknown."""
    want = f"libpython{sys.version_info.major}.{sys.version_info.minor}"
    try:
        with open("/proc/self/maps") as fh:
            libs = {fields[5].strip() for fields in (line.split(None, 5) for line in fh if want in line)
                    if len(fields) == 6}
    except OSError:
        return None
    for lib in sorted(libs):
        d = os.path.dirname(os.path.realpath(lib))
        while d not in ("/", "") and os.path.basename(d) not in ("lib", "lib64"):
            d = os.path.dirname(d)
        if os.path.basename(d) in ("lib", "lib64"):
            return os.path.dirname(d)
    return None


def _own_stdlib() -> None:
    """Point sys.path's standard-library entries at the running interpreter's own
    (see the module docstring)."""
    running = _running_prefix()
    stdlib = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if running is None or not os.path.isdir(os.path.join(running, "lib", stdlib)):
        return
    running = os.path.realpath(running)
    foreign = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)} - {running}

    def root_of(path: str) -> str | None:
        real = os.path.realpath(path)
        return next((f for f in foreign if real == f or real.startswith(f + os.sep)), None)

    fixed = []
    for entry in sys.path:
        root = root_of(entry) if entry and "site-packages" not in entry else None
        fixed.append(entry if root is None else running + os.path.realpath(entry)[len(root):])
    if fixed != sys.path:
        sys.path[:] = fixed
        for name, mod in list(sys.modules.items()):  # a foreign C module already loaded would be used again
            file = getattr(mod, "__file__", None) or ""
            if file.endswith(".so") and root_of(file):
                del sys.modules[name]


def _bootstrap() -> None:
    _own_stdlib()
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
