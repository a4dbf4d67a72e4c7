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


def _lookup(btf: bytes, struct_name: str, member: str) -> tuple[bytes, int, int] | None:
    """(the type section, the string offsets of both names) of a BTF blob that names both; else None."""
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
    return types, name_at, member_at


def member_offset(struct_name: str, member: str, btf: bytes) -> int | None:
    """Byte offset of ``struct_name.member`` in a BTF blob, or None."""
    found = _lookup(btf, struct_name, member)
    if found is None:
        return None
    types, name_at, member_at = found
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


_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}  # kind -> bytes after the common header (besides per-member ones)
_PER_MEMBER = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
_QUALIFIERS = (8, 9, 10, 11, 18)  # typedef, volatile, const, restrict, type tag


def nested_member_offset(struct_name: str, member: str, btf: bytes) -> int | None:
    """Like member_offset, also finding a member inside an anonymous struct or union of the
    struct (dentry's d_name is one since Linux 6.x): every type record is indexed, ~0.3 s."""
    found = _lookup(btf, struct_name, member)
    if found is None:
        return None
    types, name_at, member_at = found
    at = [0]  # type id -> offset of its record (id 0 is void)
    pos = 0
    while pos + 12 <= len(types):
        at.append(pos)
        info = struct.unpack_from("<I", types, pos + 4)[0]
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        pos += 12 + _EXTRA.get(kind, 0) + _PER_MEMBER.get(kind, 0) * vlen

    def record(tid: int):
        name, info, size_or_type = struct.unpack_from("<III", types, at[tid])
        return name, (info >> 24) & 0x1F, info & 0xFFFF, info >> 31, size_or_type

    def find(tid: int, depth: int) -> int | None:
        _n, kind, vlen, kflag, _s = record(tid)
        for m in range(vlen):
            m_name, m_type, m_offset = struct.unpack_from("<III", types, at[tid] + 12 + 12 * m)
            bits = m_offset & 0xFFFFFF if kflag else m_offset
            if m_name == member_at:
                return bits // 8 if bits % 8 == 0 else None
            if m_name == 0 and depth < 4:
                t = m_type
                while 0 < t < len(at) and record(t)[1] in _QUALIFIERS:
                    t = record(t)[4]
                if 0 < t < len(at) and record(t)[1] in (4, 5):
                    inner = find(t, depth + 1)
                    if inner is not None:
                        return bits // 8 + inner
        return None

    for tid in range(1, len(at)):
        n, kind, vlen, _k, _s = record(tid)
        if n == name_at and kind == KIND_STRUCT and vlen:
            found = find(tid, 0)
            if found is not None:
                return found
    return None


def _string_offset(strings: bytes, name: str) -> int | None:
    raw = name.encode()
    if strings.startswith(raw + b"\0"):
        return 0
    i = strings.find(b"\0" + raw + b"\0")
    return i + 1 if i >= 0 else None


def _cached(what: str, compute):
    """``compute(btf_bytes)`` for the running kernel, cached per kernel build; None without BTF."""
    from ...csrc.build import cache_dir

    try:
        kernel = Path("/proc/version").read_text()
    except OSError:
        return None
    cache = cache_dir() / f"btf-{what}-{hashlib.sha256(kernel.encode()).hexdigest()[:16]}.json"
    try:
        return json.loads(cache.read_text())["offset"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        offset = compute(VMLINUX.read_bytes())
    except OSError:
        return None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"kernel": kernel.strip(), "offset": offset}))
    except OSError:
        pass  # a read-only home: found again next time
    return offset


CWD_MEMBERS = (  # what bindsnoop.bt walks from a process to its working directory's path
    ("task_struct", "fs"), ("fs_struct", "pwd"), ("path", "dentry"), ("path", "mnt"),
    ("dentry", "d_parent"), ("dentry", "d_name"), ("qstr", "name"), ("vfsmount", "mnt_root"),
    ("mount", "mnt"), ("mount", "mnt_parent"), ("mount", "mnt_mountpoint"),
)


def cwd_offsets() -> list[int] | None:
    """bindsnoop.bt's CWD_* arguments: task_struct.fs, fs_struct.pwd + path.dentry, fs_struct.pwd
    + path.mnt, dentry.d_parent, dentry.d_name + qstr.name, vfsmount.mnt_root, mount.mnt,
    mount.mnt_parent, mount.mnt_mountpoint; None when the kernel's BTF lacks one."""
    def compute(btf: bytes):
        got = [member_offset(s, m, btf) for s, m in CWD_MEMBERS]
        got = [g if g is not None else nested_member_offset(s, m, btf) for g, (s, m) in zip(got, CWD_MEMBERS)]
        if any(g is None for g in got):
            return None
        fs, pwd, p_dentry, p_mnt, d_parent, d_name, q_name, mnt_root, m_mnt, m_parent, m_point = got
        return [fs, pwd + p_dentry, pwd + p_mnt, d_parent, d_name + q_name, mnt_root, m_mnt, m_parent, m_point]

    return _cached("cwd-walk", compute)


def task_exit_code_offset() -> int | None:
    """``offsetof(struct task_struct, exit_code)`` for the running kernel, or None without BTF."""
    return _cached("task-exit-code", lambda btf: member_offset("task_struct", "exit_code", btf))
