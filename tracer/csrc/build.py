"""Compiles the C programs shipped in tracer/csrc once per source version, into the user's cache.

The probes are built on the machine that runs them (no binaries in the
package): the file name carries a hash of the sources, compiler and flags, so
an edit or another compiler builds anew and an unchanged one is reused.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from ..errors import GotraceError


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gotrace"


def _target(stem: str, sources: list[str], cc: str, flags: list[str], libs: tuple[str, ...],
            suffix: str) -> tuple[Path, list[bytes]]:
    texts = [resources.files("tracer.csrc").joinpath(s).read_bytes() for s in sources]
    tag = hashlib.sha256(b"\0".join(texts) + " ".join([cc, *flags, *libs]).encode()).hexdigest()[:12]
    return cache_dir() / f"{stem}-{tag}{suffix}", texts


def cached(stem: str, sources: list[str], cc: str, flags: list[str], libs: tuple[str, ...] = (),
           suffix: str = "") -> Path | None:
    """What compile_cached would return if it is already built, without building it."""
    out, _ = _target(stem, sources, cc, flags, libs, suffix)
    return out if out.exists() else None


def compile_cached(stem: str, sources: list[str], cc: str, flags: list[str], libs: tuple[str, ...] = (),
                   suffix: str = "", what: str = "the probe") -> Path:
    """Build ``sources`` (the first is compiled; the rest are headers it includes)."""
    out, texts = _target(stem, sources, cc, flags, libs, suffix)
    if out.exists():
        return out
    if shutil.which(cc) is None:
        raise GotraceError(f"building {what} needs {cc}, which is not installed")
    work = out.parent / (out.name.removesuffix(suffix) + ".src")
    work.mkdir(parents=True, exist_ok=True)
    for name, text in zip(sources, texts):
        (work / name).write_bytes(text)
    res = subprocess.run([cc, *flags, "-o", f"{out}.tmp", str(work / sources[0]), *libs], capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise GotraceError(f"building {what} with {cc} failed: {res.stderr.strip().splitlines()[-1:]}")
    os.replace(f"{out}.tmp", out)
    return out
