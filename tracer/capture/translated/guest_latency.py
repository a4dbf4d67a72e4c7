"""Resolver latency inside translated (qemu-user) processes.

uprobes and lldb see the translator, not the guest, so for ``--arch`` runs a
QEMU TCG plugin (tracer/csrc/qemu_bindtime.c) times the guest ld.so's
``_dl_lookup_symbol_x``: host CLOCK_MONOTONIC at its first instruction and at
its ``ret``, i.e. the guest's real wall time, translation of the resolver's
code included. Plugins (API v1, QEMU 7.2) cannot read guest registers, so the
symbol comes from glibc's LD_DEBUG line, which the lookup writes from inside
itself: the plugin notes when, and the k-th lookup that wrote is paired with
the k-th binding line of the same process. Where a process's counts disagree
(it was killed before its records were written, say), its latencies stay
null rather than be guessed.

Needs the guest ld.so's local symbols: the multiarch ``libc6:<arch>`` with
``libc6-dbg:<arch>`` (scripts/setup.sh installs them for arm64); the
cross-compiler sysroot's ld.so is stripped and has no debug package.
"""
from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...binary import facts
from ...csrc.build import compile_cached
from ...heavy import pa, pq
from ...session.writer import write_atomic

PLUGIN_ENV = "QEMU_PLUGIN"
GUEST_LDSO = {"arm64": "/lib/ld-linux-aarch64.so.1"}
GUEST_PACKAGES = {"arm64": "libc6:arm64 libc6-dbg:arm64 (after dpkg --add-architecture arm64)"}
# asm-generic syscall numbers (arm64): writes that print a binding, and the
# calls before which the plugin writes out its buffer
WRITE_SYSCALLS = {"arm64": (64, 66)}  # write, writev
FLUSH_SYSCALLS = {"arm64": (220, 435, 221, 93, 94)}  # clone, clone3, execve, exit, exit_group
RET_WORDS = {"arm64": {0xD65F03C0, 0xD65F0BFF, 0xD65F0FFF}}  # ret, retaa, retab
METHOD = ("qemu TCG plugin (tracer/csrc/qemu_bindtime.c): host CLOCK_MONOTONIC from the guest "
          "_dl_lookup_symbol_x's first instruction to its ret, paired in write order with the "
          "process's LD_DEBUG binding lines; includes TCG translation of the resolver's code")
PLUGIN_FLAGS = ["-shared", "-fPIC", "-O2", "-Wall"]


@dataclass(frozen=True)
class GuestLayout:
    ldso: str  # real path, as /proc/self/maps shows it
    entry: int  # link address of _dl_lookup_symbol_x
    rets: tuple[int, ...]  # link addresses of its return instructions
    delta: int  # p_vaddr - p_offset of the executable segment


def guest_ldso(arch: str) -> str | None:
    path = GUEST_LDSO.get(arch)
    return os.path.realpath(path) if path and os.path.exists(path) else None


def guest_layout(arch: str) -> GuestLayout | None:
    """Where the guest ld.so's lookup starts and returns, or None without its debug symbols."""
    ldso = guest_ldso(arch)
    if ldso is None or arch not in RET_WORDS:
        return None
    found = facts.function_ranges(ldso, frozenset({"_dl_lookup_symbol_x"}))
    if "_dl_lookup_symbol_x" not in found:
        return None
    start, end = found["_dl_lookup_symbol_x"]
    seg = _exec_segment(ldso)
    if seg is None:
        return None
    vaddr, offset = seg
    with open(ldso, "rb") as fh:
        fh.seek(start - vaddr + offset)
        code = fh.read(end - start)
    words = struct.iter_unpack("<I", code[: len(code) - len(code) % 4])
    rets = tuple(start + 4 * i for i, (w,) in enumerate(words) if w in RET_WORDS[arch])
    return GuestLayout(ldso, start, rets, vaddr - offset) if rets else None


def _exec_segment(path: str) -> tuple[int, int] | None:
    from ...binary.elf import PT_LOAD, program_headers

    for ptype, seg, _align in program_headers(path):
        if ptype == PT_LOAD and "x" in seg.prot:
            return seg.vmaddr, seg.fileoff
    return None


def build_plugin() -> Path:
    """The plugin for this host, compiled once per source version into the cache."""
    return compile_cached("qemu_bindtime", ["qemu_bindtime.c", "qemu_plugin_v1.h"], "gcc", PLUGIN_FLAGS,
                          suffix=".so", what="the qemu timing plugin")


def plugin_value(arch: str, layout: GuestLayout, out_prefix: str) -> str:
    """The QEMU_PLUGIN setting: qemu-user reads it from the environment of every
    translated process, so the whole tree is timed."""
    fields = [f"file={build_plugin()}", f"out={out_prefix}", f"ldso={layout.ldso}", f"entry={layout.entry}",
              f"rets={':'.join(map(str, layout.rets))}", f"delta={layout.delta}",
              f"write={':'.join(map(str, WRITE_SYSCALLS[arch]))}",
              f"flush={':'.join(map(str, FLUSH_SYSCALLS[arch]))}"]
    return ",".join(fields)


def read_records(logdir: str, prefix: str = "qt") -> dict[int, list[int]]:
    """pid -> latencies (ns) of the lookups that wrote a binding line, in write order."""
    out: dict[int, list[int]] = {}
    for name in os.listdir(logdir):
        head, _, pid_s = name.rpartition(".")
        if head != prefix or not pid_s.isdigit():
            continue
        rows = []
        with open(os.path.join(logdir, name), "rb") as fh:
            for line in fh:
                f = line.split(b"\t")
                if len(f) == 5 and f[0] == b"L" and int(f[4]) > 0:
                    rows.append((int(f[4]), int(f[3]) - int(f[2])))
        rows.sort()
        out[int(pid_s)] = [lat for _, lat in rows]
    return out


def apply(events_dir: Path, records: dict[int, list[int]], is_host: Callable[[str | None], bool]) -> dict:
    """Fill latency_ns/latency_raw_ns of translated processes' bindings in the
    saved event parts, pid by pid in order; returns what was matched.

    Rows of a timed pid whose exe is a translator (qemu's own start-up in the
    same pid) are the host's, not the guest's, and are skipped.
    """
    host = functools.lru_cache(maxsize=None)(is_host)
    parts = sorted(events_dir.glob("part-*.parquet"))
    counts: dict[int, int] = {}
    for p in parts:
        t = pq.read_table(p, columns=["pid", "exe"])
        for pid, exe in zip(t["pid"].to_pylist(), t["exe"].to_pylist()):
            if pid in records and not host(exe):
                counts[pid] = counts.get(pid, 0) + 1
    ok = {pid for pid, n in counts.items() if n == len(records[pid])}
    cursor = dict.fromkeys(ok, 0)
    for p in parts:
        t = pq.read_table(p)
        pids, exes = t["pid"].to_pylist(), t["exe"].to_pylist()
        if not any(pid in ok for pid in pids):
            continue
        lat = t["latency_ns"].to_pylist()
        for i, (pid, exe) in enumerate(zip(pids, exes)):
            if pid in ok and not host(exe):
                lat[i] = records[pid][cursor[pid]]
                cursor[pid] += 1
        arr = pa.array(lat, pa.int64())
        t = t.set_column(t.schema.get_field_index("latency_ns"), t.schema.field("latency_ns"), arr)
        t = t.set_column(t.schema.get_field_index("latency_raw_ns"), t.schema.field("latency_raw_ns"), arr)
        write_atomic(t, p)
    timed = sum(len(records[p]) for p in ok)
    return {"method": METHOD, "processes_timed": len(ok), "bindings_timed": timed,
            "processes_unpaired": sorted(p for p in records if p not in ok and records[p])}
