"""Reading ELF and Mach-O files: what a loader will do with them.

``open_image(path, arch=None)`` returns an :class:`~tracer.binary.model.Image`
for either format; ``stubs.check`` and ``aslr`` build on it. Every parse
failure is a :class:`~tracer.binary.sniff.BadBinary` (one line, exit 2).
"""
from __future__ import annotations

from .model import Image, ImportSlot, Segment
from .open import open_image
from .sniff import BadBinary

__all__ = ["BadBinary", "Image", "ImportSlot", "Segment", "open_image"]
