"""Reads a running bpftrace's map straight from the kernel, in batches.

bindsnoop.bt stores each binding as one entry of its ``@b`` hash map. Having
bpftrace print and clear that map costs it four syscalls and ~8 us of CPU per
record (get_next_key + lookup to print, get_next_key + delete to clear) —
about 0.9 s of a 2-core machine during a cold ``go build``. gotrace is root
anyway, so it opens the same map by id (found in bpftrace's
``/proc/PID/fdinfo``, named ``AT_b`` by bpftrace) and empties it with
``BPF_MAP_LOOKUP_AND_DELETE_BATCH``: thousands of records per syscall, ~1 us
each including the decode. The kernel takes each bucket's lock, so probes
writing meanwhile are never lost: an entry either comes out now or next time.

Our own descriptor keeps the map alive after bpftrace exits, so a last drain
still works then. Kernels before 5.6 have no batch operations; there the map
is emptied entry by entry (correct, only slower).

x86_64 only, like the script (the syscall number below).
"""
from __future__ import annotations

import ctypes
import errno
import os

NR_BPF = 321  # x86_64
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_MAP_LOOKUP_BATCH = 24
BPF_MAP_LOOKUP_AND_DELETE_BATCH = 25
BATCH_ENTRIES = 4096  # per syscall; a hash bucket never holds more
ENOTSUPP = 524  # the kernel's own "operation not supported" (not in errno)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _IdAttr(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


class _InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]


class _MapInfo(ctypes.Structure):  # the head of struct bpf_map_info
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
                ("map_flags", ctypes.c_uint32), ("name", ctypes.c_char * 16)]


class _ElemAttr(ctypes.Structure):
    _fields_ = [("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
                ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


class _BatchAttr(ctypes.Structure):
    _fields_ = [("in_batch", ctypes.c_uint64), ("out_batch", ctypes.c_uint64), ("keys", ctypes.c_uint64),
                ("values", ctypes.c_uint64), ("count", ctypes.c_uint32), ("map_fd", ctypes.c_uint32),
                ("elem_flags", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    r = _libc.syscall(NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def _map_ids(pid: int) -> list[int]:
    ids = []
    base = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(base):
        try:
            with open(f"{base}/{fd}", "rb") as fh:
                text = fh.read()
        except OSError:
            continue
        at = text.find(b"\nmap_id:\t")
        if at >= 0:
            ids.append(int(text[at + 9:].split(b"\n", 1)[0]))
    return ids


class BpfMap:
    """One BPF map, opened by our own descriptor."""

    def __init__(self, fd: int, info: _MapInfo):
        self.fd = fd
        self.key_size = info.key_size
        self.value_size = info.value_size
        self._n = min(BATCH_ENTRIES, max(1, info.max_entries))
        self._keys = ctypes.create_string_buffer(self._n * self.key_size)
        self._values = ctypes.create_string_buffer(self._n * self.value_size)
        self._cursor_in = ctypes.create_string_buffer(max(8, self.key_size))
        self._cursor_out = ctypes.create_string_buffer(max(8, self.key_size))
        self.batched = True

    @classmethod
    def of_process(cls, pid: int, name: str) -> "BpfMap":
        """The map called ``name`` among the ones process ``pid`` holds open."""
        for map_id in _map_ids(pid):
            try:
                fd = _bpf(BPF_MAP_GET_FD_BY_ID, _IdAttr(map_id))
            except OSError:
                continue  # gone meanwhile
            info = _MapInfo()
            try:
                _bpf(BPF_OBJ_GET_INFO_BY_FD, _InfoAttr(fd, ctypes.sizeof(info), ctypes.addressof(info)))
            except OSError:
                os.close(fd)
                continue
            if info.name.decode() == name:
                return cls(fd, info)
            os.close(fd)
        raise LookupError(f"process {pid} holds no BPF map named {name}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def drain(self, delete: bool = True) -> tuple[bytes, bytes, int]:
        """Every entry now in the map: (keys, values, count), packed back to
        back. ``delete`` empties the map as it goes; without it the map is
        left as it is (the tests compare with bpftrace's own print)."""
        if self.batched:
            try:
                return self._drain_batched(delete)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
                    raise
                self.batched = False  # a kernel without batch operations (< 5.6)
        return self._drain_each(delete)

    def _drain_batched(self, delete: bool) -> tuple[bytes, bytes, int]:
        cmd = BPF_MAP_LOOKUP_AND_DELETE_BATCH if delete else BPF_MAP_LOOKUP_BATCH
        keys, values = [], []
        total = 0
        first = True
        ks, vs = self.key_size, self.value_size
        attr = _BatchAttr(0, ctypes.addressof(self._cursor_out), ctypes.addressof(self._keys),
                          ctypes.addressof(self._values), self._n, self.fd, 0, 0)
        while True:
            attr.in_batch = 0 if first else ctypes.addressof(self._cursor_in)
            attr.count = self._n
            r = _libc.syscall(NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
            err = ctypes.get_errno() if r < 0 else 0
            n = attr.count if (r == 0 or err == errno.ENOENT) else 0
            if n:
                keys.append(self._keys.raw[:n * ks])
                values.append(self._values.raw[:n * vs])
                total += n
            if r < 0:
                if err == errno.ENOENT:  # the walk reached the end
                    break
                raise OSError(err, os.strerror(err))
            ctypes.memmove(self._cursor_in, self._cursor_out, len(self._cursor_in))
            first = False
        return b"".join(keys), b"".join(values), total

    def _drain_each(self, delete: bool) -> tuple[bytes, bytes, int]:
        ks, vs = self.key_size, self.value_size
        key = ctypes.create_string_buffer(ks)
        prev = ctypes.create_string_buffer(ks)
        value = ctypes.create_string_buffer(vs)
        keys, values = [], []
        have_prev = False
        while True:
            try:
                _bpf(BPF_MAP_GET_NEXT_KEY, _ElemAttr(self.fd, 0, ctypes.addressof(prev) if have_prev else 0,
                                                     ctypes.addressof(key), 0))
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    break
                raise
            try:
                _bpf(BPF_MAP_LOOKUP_ELEM, _ElemAttr(self.fd, 0, ctypes.addressof(key), ctypes.addressof(value), 0))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                continue
            keys.append(key.raw)
            values.append(value.raw)
            if delete:
                try:
                    _bpf(BPF_MAP_DELETE_ELEM, _ElemAttr(self.fd, 0, ctypes.addressof(key), 0, 0))
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        raise
            else:
                ctypes.memmove(prev, key, ks)
                have_prev = True
        return b"".join(keys), b"".join(values), len(keys)
