"""Per slice of a Mach-O or fat file: architecture, LC_UUID and the link-time __TEXT vmaddr, read raw.

Capture needs these three facts for every image dyld logs (the slide is the
logged __TEXT address minus the file's), for files that may be 100 MB: only
the fat header and each slice's load commands are read, never the file, and
LIEF is not loaded. The slice that ran is the one whose LC_UUID dyld printed.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from .macho_indirect import LC_SEGMENT, LC_SEGMENT_64, LoadCommandError, load_commands

LC_UUID = 0x1B
LC_VERSION_MIN_MACOSX, LC_BUILD_VERSION = 0x24, 0x32
PLATFORMS = {1: "macos", 2: "ios", 3: "tvos", 4: "watchos", 6: "maccatalyst", 7: "iossimulator", 11: "visionos"}
CPU_TYPES = {0x01000007: "x86_64", 0x0100000C: "arm64", 7: "i386", 12: "arm", 0x0200000C: "arm64_32",
             18: "ppc", 0x01000012: "ppc64"}
THIN = (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce")
FAT = (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")


@dataclass(frozen=True)
class Slice:
    arch: str | None
    uuid: str | None  # upper-case 8-4-4-4-12, as dyld prints it
    text_vmaddr: int | None
    platform: str | None = None  # LC_BUILD_VERSION's (macos ...); "macos" for LC_VERSION_MIN_MACOSX
    minos: tuple | None = None  # the oldest OS release it runs on, (major, minor, patch)


def _version(packed: int) -> tuple[int, int, int]:
    """xxxx.yy.zz in nibbles, as Mach-O packs OS versions."""
    return packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF


def uuid_text(raw: bytes) -> str:
    h = raw.hex().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def slices(path: str) -> list[Slice]:
    """Every slice's facts; [] for a file that is not Mach-O (or cannot be read)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
            if head[:4] in THIN:
                return [_slice(fh, 0)]
            if head[:4] not in FAT or len(head) < 8:
                return []
            entry, layout = (32, ">iiQQ") if head[:4] == FAT[1] else (20, ">iiII")
            out = []
            for i in range(struct.unpack_from(">I", head, 4)[0]):  # past the first 4 KiB too, as llvm-objdump
                fh.seek(8 + i * entry)
                _cpu, _sub, off, _size = struct.unpack_from(layout, fh.read(entry))
                out.append(_slice(fh, off))
            return out
    except (OSError, struct.error, LoadCommandError, ValueError):
        return []


def _slice(fh, base: int) -> Slice:
    fh.seek(base)
    head = fh.read(32)
    if head[:4] not in THIN or len(head) < 28:
        raise ValueError("not a Mach-O slice")
    order = "<" if head[:4] in (THIN[0], THIN[1]) else ">"
    cpu = struct.unpack_from(order + "i", head, 4)[0] & 0xFFFFFFFF
    sizeofcmds = struct.unpack_from(order + "I", head, 20)[0]
    hdr = 32 if head[:4] in (THIN[0], THIN[2]) else 28
    fh.seek(base + hdr)
    data = head[:hdr] + fh.read(sizeofcmds)
    uuid = text = platform = minos = None
    for _o, _is64, cmd, pos, _size in load_commands(data, 0):
        if cmd == LC_UUID:
            uuid = uuid_text(data[pos + 8:pos + 24])
        elif cmd == LC_BUILD_VERSION:
            plat, packed = struct.unpack_from(order + "II", data, pos + 8)
            platform, minos = PLATFORMS.get(plat, f"platform {plat}"), _version(packed)
        elif cmd == LC_VERSION_MIN_MACOSX and minos is None:
            platform, minos = "macos", _version(struct.unpack_from(order + "I", data, pos + 8)[0])
        elif cmd in (LC_SEGMENT_64, LC_SEGMENT) and text is None:
            name = data[pos + 8:pos + 24].split(b"\0", 1)[0]
            if name == b"__TEXT":
                text = struct.unpack_from(order + ("Q" if cmd == LC_SEGMENT_64 else "I"), data, pos + 24)[0]
    return Slice(CPU_TYPES.get(cpu), uuid, text, platform, minos)


def pick(all_slices: list[Slice], uuid: str | None = None, arch: str | None = None) -> Slice | None:
    """The slice that ran: the one with dyld's UUID; without a UUID, the one of
    ``arch``, or the only one. None when the file holds no such slice (it changed since)."""
    if uuid:
        return next((s for s in all_slices if s.uuid == uuid), None)
    if arch:
        return next((s for s in all_slices if s.arch == arch), None)
    return all_slices[0] if len(all_slices) == 1 else None
