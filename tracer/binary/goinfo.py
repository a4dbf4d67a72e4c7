"""Go build info: the toolchain version, module and build settings a Go
binary carries in ``.go.buildinfo`` (ELF) / ``__go_buildinfo`` (Mach-O).

What ``go version -m FILE`` prints, read without running Go — so it works on
binaries for other platforms. Layout (Go >= 1.18, runtime/debug and
cmd/go/internal/version): a 32-byte header, ``\\xff Go buildinf:`` then the
pointer size and a flags byte; flag 2 means the version and the module info
follow as varint-length-prefixed strings. The module info is wrapped in
16-byte sentinels. Older binaries store pointers instead; they are reported
as such, not decoded.
"""
from __future__ import annotations

MAGIC = b"\xff Go buildinf:"
HEADER = 32


def _uvarint(blob: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(blob) and shift < 64:
        b = blob[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise ValueError("bad varint")


def go_build_info(blob: bytes, little: bool = True) -> dict | None:
    at = blob.find(MAGIC)
    if at < 0 or at + HEADER > len(blob):
        return None
    flags = blob[at + 15]
    if not flags & 2:
        return {"version": None, "note": "Go < 1.18 build info (pointer form) is not decoded"}
    try:
        n, pos = _uvarint(blob, at + HEADER)
        version = blob[pos:pos + n].decode("utf-8", "replace")
        pos += n
        n, pos = _uvarint(blob, pos)
        mod = blob[pos:pos + n]
    except ValueError:
        return {"version": None, "note": "Go build info is corrupt"}
    if len(mod) >= 33 and mod[-17:-16] == b"\n":
        mod = mod[16:-16]
    info: dict = {"version": version, "path": None, "main": None, "settings": {}, "deps": []}
    for line in mod.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if parts[0] == "path" and len(parts) > 1:
            info["path"] = parts[1]
        elif parts[0] == "mod" and len(parts) > 1:
            info["main"] = {"path": parts[1], "version": parts[2] if len(parts) > 2 else None}
        elif parts[0] == "dep" and len(parts) > 1:
            info["deps"].append({"path": parts[1], "version": parts[2] if len(parts) > 2 else None})
        elif parts[0] == "build" and len(parts) > 1:
            key, _, value = parts[1].partition("=")
            info["settings"][key] = value
    return info
