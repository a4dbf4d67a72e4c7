"""Finds lldb's Python bindings and the debug server, and says what is missing.

Debian ships the bindings outside every Python path (``lldb-16 -P`` prints
where), they import only with ``liblldb-16-dev`` installed (it provides the
unversioned ``liblldb.so`` the module links against), and launching needs
``lldb-server``, which lldb looks for through ``LLDB_DEBUGSERVER_PATH``.
Inside lldb itself (``command script import``) the module is already loaded.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

from ...errors import BackendUnavailable

FIX = "apt-get install lldb-16 python3-lldb-16 liblldb-16-dev (or run scripts/setup.sh)"
_LLDB_NAMES = ("lldb-16", "lldb-17", "lldb-18", "lldb-15", "lldb")


def lldb_binary() -> str | None:
    """The lldb whose bindings gotrace uses: $GOTRACE_LLDB, else the newest on PATH."""
    chosen = os.environ.get("GOTRACE_LLDB")
    if chosen:
        return shutil.which(chosen)
    for name in _LLDB_NAMES:
        found = shutil.which(name)
        if found:
            return found
    cands = sorted(glob.glob("/usr/lib/llvm-*/bin/lldb"), reverse=True)
    return cands[0] if cands else None


def _python_dir(lldb: str) -> str | None:
    try:
        out = subprocess.run([lldb, "-P"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out if out and os.path.isdir(out) else None


def debugserver_path(lldb: str | None) -> str | None:
    """lldb-server beside the lldb binary (Debian: /usr/lib/llvm-N/bin)."""
    env = os.environ.get("LLDB_DEBUGSERVER_PATH")
    if env and os.access(env, os.X_OK):
        return env
    if lldb:
        real = os.path.realpath(lldb)
        cand = os.path.join(os.path.dirname(real), "lldb-server")
        if os.access(cand, os.X_OK):
            return cand
    cands = sorted(glob.glob("/usr/lib/llvm-*/bin/lldb-server"), reverse=True)
    return cands[0] if cands else shutil.which("lldb-server")


def import_lldb():
    """The ``lldb`` module, importing it from the installed lldb if needed.

    Raises BackendUnavailable with the reason and the fix.
    """
    if "lldb" in sys.modules:
        return sys.modules["lldb"]
    lldb = lldb_binary()
    if lldb is None:
        which = f"GOTRACE_LLDB={os.environ['GOTRACE_LLDB']} is not an executable" if os.environ.get("GOTRACE_LLDB") \
            else "lldb is not installed"
        raise BackendUnavailable(f"{which}; {FIX}")
    pydir = _python_dir(lldb)
    if pydir is None:
        raise BackendUnavailable(f"{lldb} has no Python bindings (`{os.path.basename(lldb)} -P` names no "
                                 f"directory); {FIX}")
    if pydir not in sys.path:
        sys.path.append(pydir)
    try:
        import lldb as mod  # noqa: PLC0415
    except ImportError as exc:
        hint = " (liblldb-16-dev provides the liblldb.so it links against)" if "liblldb" in str(exc) else ""
        raise BackendUnavailable(f"lldb's Python bindings in {pydir} do not import under Python "
                                 f"{sys.version_info.major}.{sys.version_info.minor}: {exc}{hint}; {FIX}") from None
    if sys.platform == "darwin":
        # never LLDB_DEBUGSERVER_PATH on macOS: Xcode's debugserver hands a Rosetta-translated
        # process over to Rosetta's own, and naming a server disables that (lldb DNB.cpp). Not run on macOS.
        return mod
    server = debugserver_path(lldb)
    if server is None:
        raise BackendUnavailable(f"lldb-server is not installed next to {lldb}; {FIX}")
    os.environ.setdefault("LLDB_DEBUGSERVER_PATH", server)
    return mod
