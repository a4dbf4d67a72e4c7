"""binfmt_misc: which translator the kernel runs a foreign ELF with, and registering qemu's.

Linux runs a foreign ELF through the handler registered for its e_machine
(qemu-user from qemu-user-binfmt, or Rosetta for Linux in a VM). Translated
runs, bench-bind and doctor all ask here.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...arch import E_MACHINE, elf_header_arch
from ...errors import GotraceError

BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU = {"arm64": "aarch64", "x86_64": "x86_64"}  # the architectures translated runs support: qemu's names


@dataclass
class Handler:
    name: str
    interpreter: str
    flags: str
    magic: bytes

    @property
    def translator(self) -> str:
        """What runs the code: the interpreter's real name (qemu-aarch64, rosetta)."""
        return os.path.basename(os.path.realpath(self.interpreter))

    @property
    def guest_arch(self) -> str | None:
        """The architecture of the ELF files this handler runs (class and byte order from its magic), None if not ELF."""
        arch = elf_header_arch(self.magic[:20])
        return None if arch is None or arch.startswith("machine-") else arch


def mounted() -> bool:
    return (BINFMT / "status").exists()


def handlers() -> list[Handler]:
    """Enabled binfmt_misc entries (empty when binfmt_misc is not mounted)."""
    out = []
    if not mounted():
        return out
    for entry in sorted(BINFMT.iterdir()):
        if entry.name in ("register", "status"):
            continue
        try:
            text = entry.read_text()
        except OSError:
            continue
        fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        if not text.startswith("enabled") or "magic" not in fields:
            continue
        try:
            magic = bytes.fromhex(fields["magic"].strip())
        except ValueError:
            continue
        out.append(Handler(entry.name, fields.get("interpreter", "").strip(), fields.get("flags:", "").strip(),
                           magic))
    return out


def handler_for_machine(machine: int) -> Handler | None:
    """The handler that runs little-endian ELF whose e_machine is ``machine``."""
    want = machine.to_bytes(2, "little")
    for h in handlers():
        if h.magic[:4] == b"\x7fELF" and len(h.magic) >= 20 and h.magic[18:20] == want:
            return h
    return None


def handler_for(arch: str) -> Handler | None:
    """The handler that runs 64-bit little-endian ELF of ``arch`` (gotrace's name)."""
    machine = E_MACHINE.get(arch)
    return handler_for_machine(machine) if machine is not None else None


def _qemu_conf(arch: str) -> Path:
    return Path("/usr/lib/binfmt.d") / f"qemu-{QEMU[arch]}.conf"


def register_qemu(arch: str) -> Handler:
    """Register qemu-user's handler for ``arch`` (root; needs qemu-user-binfmt)."""
    conf = _qemu_conf(arch)
    if not conf.exists():
        raise GotraceError(f"{conf} is missing: apt-get install qemu-user qemu-user-binfmt")
    if os.geteuid() != 0:
        raise GotraceError("--register-binfmt needs root (it writes /proc/sys/fs/binfmt_misc/register)")
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, check=False)
        if not (BINFMT / "register").exists():
            raise GotraceError(f"cannot mount binfmt_misc at {BINFMT}: mount -t binfmt_misc binfmt_misc {BINFMT}")
    line = next((l for l in conf.read_text().splitlines() if l.startswith(":")), None)
    if line is None:
        raise GotraceError(f"{conf} holds no binfmt_misc registration line")
    try:
        (BINFMT / "register").write_text(line)
    except OSError as exc:
        raise GotraceError(f"binfmt_misc refused the qemu-{QEMU[arch]} registration: {exc.strerror}") from None
    h = handler_for(arch)
    if h is None:
        raise GotraceError(f"registered qemu-{QEMU[arch]}, but binfmt_misc does not list it")
    return h


def unregister(handler: Handler) -> None:
    try:
        (BINFMT / handler.name).write_text("-1")
    except OSError:
        pass
