"""Link-time base against runtime load base: the slide of every image.

Rules, per format: ELF's link-time base is its first PT_LOAD's p_vaddr,
page aligned (0 for PIE programs and shared objects); Mach-O's is the
__TEXT segment's vmaddr. The runtime base of a live process comes from the
kernel: the main program's from AT_PHDR (exactly how ld.so computes its
l_addr), the dynamic linker's from AT_BASE, and libraries' from the
offset-0 mapping of their file in /proc/PID/maps. slide = load - link.
"""
from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass

from ..errors import GotraceError
from . import BadBinary, open_image
from .ptrace_launch import AT_BASE, AT_PHDR, run_stopped_at_entry


@dataclass
class ImageBase:
    pid: int
    path: str
    link_base: int | None
    load_base: int | None
    slide: int | None
    position_independent: bool | None
    source: str  # where load_base came from: AT_PHDR, AT_BASE, maps


def randomize_va_space() -> int | None:
    try:
        return int(open("/proc/sys/kernel/randomize_va_space").read())
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=1024)
def _facts(path: str):
    try:
        img = open_image(path)
    except BadBinary:
        return None
    phdr = next((s.vmaddr for s in img.segments if s.name == "PHDR"), None)
    return img.link_base, img.pie or img.file_type != "executable", phdr


def file_mappings(pid: int) -> dict[str, int]:
    """path -> start of its offset-0 mapping (the image's runtime base)."""
    out: dict[str, int] = {}
    try:
        lines = open(f"/proc/{pid}/maps").read().splitlines()
    except FileNotFoundError:
        raise GotraceError(f"no process with pid {pid}") from None
    except PermissionError:
        raise GotraceError(f"cannot read /proc/{pid}/maps: permission denied (run as its user or root)") from None
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        start = int(parts[0].split("-")[0], 16)
        path = parts[5].removesuffix(" (deleted)")
        if int(parts[2], 16) == 0 and (path not in out or start < out[path]):
            out[path] = start
    return out


def process_bases(pid: int, aux: dict[int, int] | None = None) -> list[ImageBase]:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        raise GotraceError(f"no process with pid {pid}") from None
    except PermissionError:
        raise GotraceError(f"cannot inspect pid {pid}: permission denied (run as its user or root)") from None
    if aux is None:
        from .ptrace_launch import auxv

        try:
            aux = auxv(pid)
        except OSError:
            aux = {}
    maps = file_mappings(pid)
    interp_base = aux.get(AT_BASE) or None
    rows: list[ImageBase] = []
    for path, start in maps.items():
        facts = _facts(path)
        link, pic, phdr = facts if facts else (None, None, None)
        load, source = start, "maps"
        if path == exe and aux.get(AT_PHDR) and phdr is not None and link is not None:
            load, source = (aux[AT_PHDR] - phdr) + link, "AT_PHDR"
        elif interp_base is not None and start == interp_base:
            source = "AT_BASE"
        slide = load - link if link is not None else None
        rows.append(ImageBase(pid, path, link, load, slide, pic, source))
    rows.sort(key=lambda r: (r.path != exe, r.load_base or 0))
    return rows


def launch_bases(argv: list[str], env: dict[str, str] | None = None, let_go: bool = False,
                 on_stop=None) -> tuple[list[ImageBase], int | None]:
    """Start ``argv`` stopped at its entry point and read every image's bases."""
    found: list[ImageBase] = []

    def stopped(pid: int, aux: dict[int, int]) -> None:
        found.extend(process_bases(pid, aux))
        if on_stop is not None:
            on_stop(pid, aux)

    code = run_stopped_at_entry(argv, env, stopped, let_go=let_go)
    return found, code


def to_dicts(rows: list[ImageBase]) -> list[dict]:
    return [asdict(r) for r in rows]


def fill_session(path) -> list[dict]:
    """Recompute link-time base and slide for every image of a saved session
    (from the files on disk, ELF or Mach-O) and write them into images.parquet."""
    from pathlib import Path

    from .. import schema
    from ..lazy import pd
    from ..session import load_session, write_atomic

    images = load_session(path).images.copy()
    rows: list[ImageBase] = []
    for pid, file, load in zip(images["pid"], images["path"], images["load_base"]):
        facts = _facts(file) if isinstance(file, str) and file.startswith("/") else None
        link, pic = (facts[0], facts[1]) if facts else (None, None)
        load = None if pd.isna(load) else int(load)
        slide = load - link if link is not None and load is not None else None
        rows.append(ImageBase(int(pid), file, link, load, slide, pic, "session"))
    if rows:
        images["link_base"] = pd.array([r.link_base for r in rows], dtype="UInt64")
        images["slide"] = pd.array([r.slide for r in rows], dtype="Int64")
        write_atomic(schema.to_arrow("images", images), Path(path) / "images.parquet")
    return to_dicts(rows)
