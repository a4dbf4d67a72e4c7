"""One entry point for both formats: sniff, then hand to the right reader."""
from __future__ import annotations

import os

from .model import Image
from .sniff import read_binary


def read_image(path: str | os.PathLike, arch: str | None = None) -> tuple[Image, bytes]:
    """The image and the file's bytes (``stubs`` reads slots from them)."""
    path = os.fspath(path)
    fmt, data = read_binary(path)
    if fmt == "ELF":
        from .elf import read_elf

        return read_elf(path, data), data
    from .macho import read_macho

    return read_macho(path, data, arch), data


def open_image(path: str | os.PathLike, arch: str | None = None) -> Image:
    """Read ``path`` (ELF, Mach-O or fat Mach-O; ``arch`` picks a fat slice)."""
    return read_image(path, arch)[0]
