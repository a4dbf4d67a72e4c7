"""Offsets of kernel struct members, read from the kernel's own BTF.

bindsnoop.bt reports each process's wait status from ``task_struct.exit_code``.
Written as ``curtask->exit_code``, bpftrace resolves the type through BTF on
every start, ~0.1 s before the traced command may run; given the byte offset
it reads the same int with no type lookup. The offset is found here in a few
milliseconds (the member's name is searched for at C speed, not by walking
every type) and cached per kernel build.
"""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

VMLINUX = Path("/sys/kernel/btf/vmlinux")
BTF_MAGIC = 0xEB9F
KIND_STRUCT = 4


def member_offset(struct_name: str, member: str, btf: bytes) -> int | None:
    """Byte offset of ``struct_name.member`` in a BTF blob, or None."""
    if len(btf) < 24:
        return None
    magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", btf)
    if magic != BTF_MAGIC:
        return None
    types = btf[hdr_len + type_off:hdr_len + type_off + type_len]
    strings = btf[hdr_len + str_off:hdr_len + str_off + str_len]
    name_at, member_at = _string_offset(strings, struct_name), _string_offset(strings, member)
    if name_at is None or member_at is None:
        return None
    key, pos = struct.pack("<I", name_at), 0
    while (i := types.find(key, pos)) >= 0:
        pos = i + 1
        if i % 4 or i + 12 > len(types):  # a type record starts on a 4-byte boundary with its name
            continue
        _name, info, _size = struct.unpack_from("<III", types, i)
        vlen, kind, kflag = info & 0xFFFF, (info >> 24) & 0x1F, info >> 31
        if kind != KIND_STRUCT or not vlen or i + 12 + 12 * vlen > len(types):
            continue
        for m in range(vlen):
            m_name, _m_type, m_offset = struct.unpack_from("<III", types, i + 12 + 12 * m)
            if m_name == member_at:
                bits = m_offset & 0xFFFFFF if kflag else m_offset
                return bits // 8 if bits % 8 == 0 else None
    return None


def _string_offset(strings: bytes, name: str) -> int | None:
    raw = name.encode()
    if strings.startswith(raw + b"\0"):
        return 0
    i = strings.find(b"\0" + raw + b"\0")
    return i + 1 if i >= 0 else None


def task_exit_code_offset() -> int | None:
    """``offsetof(struct task_struct, exit_code)`` for the running kernel, or None without BTF."""
    from ...csrc.build import cache_dir

    try:
        kernel = Path("/proc/version").read_text()
    except OSError:
        return None
    cache = cache_dir() / f"btf-task-exit-code-{hashlib.sha256(kernel.encode()).hexdigest()[:16]}.json"
    try:
        return json.loads(cache.read_text())["offset"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        offset = member_offset("task_struct", "exit_code", VMLINUX.read_bytes())
    except OSError:
        return None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"kernel": kernel.strip(), "offset": offset}))
    except OSError:
        pass  # a read-only home: found again next time
    return offset
