"""Refuses what is not a readable ELF or Mach-O file, in one line.

Runs before any parser: a FIFO or device must never be opened for reading (it
would block), and each parser's own exception vocabulary is translated here
into a message a user can act on.
"""
from __future__ import annotations

import os
import stat

from ..errors import GotraceError

ELF_MAGIC = b"\x7fELF"
MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce": "Mach-O", b"\xce\xfa\xed\xfe": "Mach-O",
    b"\xfe\xed\xfa\xcf": "Mach-O", b"\xcf\xfa\xed\xfe": "Mach-O",
}
FAT_MAGIC_64 = b"\xca\xfe\xba\xbf"  # 64-bit offsets and sizes (lipo -fat64)
FAT_MAGICS = (b"\xca\xfe\xba\xbe", FAT_MAGIC_64)
MAX_FAT_ARCHS = 30  # a Java class starts with CAFEBABE too, then minor and major version: its "count" is the
# major (45 for Java 1.0 on) when minor is 0; file(1) takes a count over 30 for a Java class too


class BadBinary(GotraceError):
    """Not a binary we can read: the message names the file and the reason."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=2)


class Truncated(BadBinary):
    def __init__(self, path: str, offset: int):
        super().__init__(f"{path}: truncated at offset {offset}")
        self.offset = offset


def read_binary(path: str) -> tuple[str, bytes]:
    """``(format, data)`` with format ``ELF``, ``Mach-O`` or ``fat``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BadBinary(f"{path}: no such file") from None
    except OSError as exc:
        raise BadBinary(f"{path}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadBinary(f"{path}: is a directory, not an ELF or Mach-O file")
    if not stat.S_ISREG(st.st_mode):
        raise BadBinary(f"{path}: not a regular file (device, FIFO or socket), not an ELF or Mach-O file")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise BadBinary(f"{path}: cannot read: {exc.strerror}") from None
    return sniff(path, data), data


def sniff(path: str, data: bytes) -> str:
    if not data:
        raise BadBinary(f"{path}: empty file, not an ELF or Mach-O file")
    head = data[:4]
    if head == ELF_MAGIC:
        if len(data) < 52:
            raise Truncated(path, len(data))
        return "ELF"
    if head in MACHO_MAGICS:
        if len(data) < 28:
            raise Truncated(path, len(data))
        return "Mach-O"
    if head in FAT_MAGICS:
        if len(data) < 8:
            raise Truncated(path, len(data))
        count = int.from_bytes(data[4:8], "big")
        if 0 < count <= MAX_FAT_ARCHS:
            return "fat"
        raise BadBinary(f"{path}: not an ELF or Mach-O file (CAFEBABE magic but {count} slices: a Java class?)")
    if len(data) < 4 and (ELF_MAGIC.startswith(data) or any(m.startswith(data) for m in MACHO_MAGICS)):
        raise Truncated(path, len(data))
    if data[:2] == b"#!":
        raise BadBinary(f"{path}: a script (#!), not an ELF or Mach-O file")
    if data.lstrip()[:3] == b"---":  # a YAML document's start, blank lines before it or not
        raise BadBinary(f"{path}: text (a .tbd stub?), not an ELF or Mach-O file")
    raise BadBinary(f"{path}: not an ELF or Mach-O file")
