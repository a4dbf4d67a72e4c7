"""Link-time base against runtime load base: the slide of every image.

Rules, per format (model.Image.link_base): ELF's link-time base is its first
PT_LOAD's p_vaddr, page aligned (0 for PIE programs and shared objects);
Mach-O's is the __TEXT segment's vmaddr. The runtime base of a live process comes from the
kernel: the main program's from AT_PHDR (exactly how ld.so computes its
l_addr), the dynamic linker's from AT_BASE, and libraries' from the
offset-0 mapping of their file in /proc/PID/maps. slide = load - link.
"""
from __future__ import annotations

import functools
import os
import shutil
from dataclasses import asdict, dataclass

from ..arch import host_arch
from ..errors import GotraceError
from .. import procfs
from ..procfs import AT_BASE, AT_PHDR, auxv, file_mappings, randomize_va_space  # noqa: F401 (part of the aslr API)
from .facts import script_interpreter
from .model import Image
from .open import open_image
from .ptrace_launch import run_stopped_at_entry
from .sniff import BadBinary


@dataclass
class ImageBase:
    pid: int
    path: str
    link_base: int | None
    load_base: int | None
    slide: int | None
    position_independent: bool | None
    source: str  # where load_base came from: AT_PHDR, AT_BASE, maps


@functools.lru_cache(maxsize=1024)
def image_facts(path: str) -> tuple[int | None, bool, int | None] | None:
    """(link-time base, position independent, PT_PHDR's vaddr) of a file, None if unreadable."""
    try:
        img: Image = open_image(path)
    except BadBinary:
        return None
    phdr = next((s.vmaddr for s in img.segments if s.name == "PHDR"), None)
    return img.link_base, img.pie or img.file_type != "executable", phdr


def process_bases(pid: int, aux: dict[int, int] | None = None) -> list[ImageBase]:
    try:
        exe = procfs.exe(pid)
    except FileNotFoundError:
        raise GotraceError(f"no process with pid {pid}") from None
    except PermissionError:
        raise GotraceError(f"cannot inspect pid {pid}: permission denied (run as its user or root)") from None
    if aux is None:
        try:
            aux = auxv(pid)
        except OSError:
            aux = {}
    maps = file_mappings(pid)
    interp_base = aux.get(AT_BASE) or None
    rows: list[ImageBase] = []
    for path, start in maps.items():
        facts = image_facts(path)
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
    launchable(argv, env)
    found: list[ImageBase] = []

    def stopped(pid: int, aux: dict[int, int]) -> None:
        found.extend(process_bases(pid, aux))
        if on_stop is not None:
            on_stop(pid, aux)

    code = run_stopped_at_entry(argv, env, stopped, let_go=let_go)
    return found, code


def launchable(argv: list[str], env: dict[str, str] | None = None) -> str:
    """The program ``argv[0]`` names, if it is one aslr can start on this host;
    otherwise one line saying what the file is (exit 127 when there is none)."""
    name = argv[0] if argv else ""
    path = shutil.which(name, path=(env or os.environ).get("PATH", os.defpath)) if name else None
    if path is None and os.sep in name and os.path.exists(name):
        path = name  # there, but not executable: say what it is first
    if path is None:
        raise GotraceError(f"command not found: {name}", 127)
    if os.path.isdir(path):
        raise GotraceError(f"{name}: is a directory, not a program")
    if script_interpreter(path) and os.access(path, os.X_OK):
        return path  # the kernel runs its interpreter: that is what gets stopped and read
    img = open_image(path)  # empty, text, truncated, corrupt, a FIFO: one line (BadBinary)
    host = host_arch()
    if img.format != "ELF":
        raise GotraceError(f"{name}: a {img.format} {img.arch} file: aslr starts ELF programs of this host "
                           "(gotrace inspect reads its link-time layout)")
    if img.arch != host:
        raise GotraceError(f"{name}: built for {img.arch}, this host runs {host} programs (start it yourself, "
                           "then gotrace aslr --pid PID)")
    if img.file_type == "shared-object" and not img.interpreter:
        raise GotraceError(f"{name}: a shared library, not a program (start a program that loads it)")
    if img.file_type not in ("executable", "shared-object"):
        raise GotraceError(f"{name}: an ELF {img.file_type} file, not a program")
    if not os.access(path, os.X_OK):
        raise GotraceError(f"{name}: not executable (chmod +x it)", 126)
    return path


def to_dicts(rows: list[ImageBase]) -> list[dict]:
    return [asdict(r) for r in rows]
