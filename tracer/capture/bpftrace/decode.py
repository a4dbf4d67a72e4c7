"""Decodes bindsnoop.bt's output into the session tables.

Binding records (the bulk) come straight from the script's BPF map as packed
structs (:meth:`BpftraceDecoder.feed_records`, columns cut out with numpy), or,
when the script ran by hand, as bpftrace's own print of that map (a block of
lines becomes tab-separated rows with one bytes.translate, see _b_rows, parsed
with Arrow's CSV reader). Either way objects are mapped to names with
dictionary encoding. The rare fork/exec/exit/name records are handled one by
one. Records lost anywhere — perf buffer overflow ("Lost N events") or a full
binding map (the script's @emitted count against the records that arrived) —
are counted, never silent.

bpftrace reads one perf buffer per CPU, so a record can arrive before the name
announcement (N) it refers to, when the thread migrated between CPUs. Events
whose objects are not yet named are held back and retried with the next block;
``finish()`` names whatever is left by address.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field

from ...heavy import pa, pacsv, pc

from ...binary import facts
from ...binary.facts import script_interpreter
from ...session.schema import KINDS, events_table
from ..child import exit_code_from_wait_status
from ..process_tree import ProcessTree
from .launch import STRLEN

# @b[tid, ts_ns]: (pid, gen, req_map, prov_map, latency_ns, kind, offcpu_ns, version, symbol); records
# made before offcpu_ns existed (READY without a second field) lack it
B_COLUMNS = ["map", "tid", "ts_ns", "pid", "gen", "req", "prov", "latency_ns", "kind", "offcpu_ns", "version",
             "symbol"]
B_COLUMNS_OLD = [c for c in B_COLUMNS if c != "offcpu_ns"]
B_SEPARATORS = len(B_COLUMNS) - 2  # between the key's and the value's fields: the numbers' count + 3
KIND_NAMES = ("", *KINDS)  # by the script's kind code: 1 eager, 2 lazy, 3 dlsym (KINDS' order)
UNRETURNED = 4  # added to the kind code: a lookup that never returned (failed, not timed)
LOST = re.compile(rb"^Lost (\d+) events")


def _b_types() -> dict:
    return {
        "map": pa.string(), "ts_ns": pa.int64(), "pid": pa.int32(), "tid": pa.int32(), "gen": pa.string(),
        "symbol": pa.string(), "version": pa.string(), "req": pa.string(), "prov": pa.string(),
        "latency_ns": pa.int64(), "kind": pa.int8(), "offcpu_ns": pa.int64(),
    }


_B_TABLE = bytes.maketrans(b",[]", b"\t\t\t")
_B_DELETE = b" :()"


def _b_rows(lines: list[bytes], separators: int = B_SEPARATORS) -> bytes:
    """Binding map lines -> TSV rows (first field the map's name), in bulk.

    ``@b[7, 99]: (7, 0, 1, 1, 5, 1, 0, GLIBC_2.2.5, free)`` becomes
    ``@b 7 99 7 0 1 1 5 1 0 GLIBC_2.2.5 free`` (tab-separated) with one
    translate (``separators``: one fewer for a record without offcpu_ns). That is exact only if no version or symbol holds any of the
    punctuation: then every line loses exactly its own and gains exactly its
    separators. When the counts say otherwise, the rows are redone one by one,
    splitting only the fixed fields (the symbol, last, keeps what it holds)."""
    data = b"\n".join(lines)
    out = data.translate(_B_TABLE, _B_DELETE)
    n = len(lines)
    deleted = separators + 3  # per line: a space after each comma and in "]: (", then ":", "(", ")"
    if len(data) - len(out) == deleted * n and out.count(b"\t") == (separators + 1) * n:
        return out
    return b"\n".join(l[:-1].replace(b"[", b"\t", 1).replace(b"]: (", b", ", 1).replace(b", ", b"\t", separators)
                      for l in lines)


# @b as bpftrace 0.17 lays it out: key (tid, ts_ns); value RECORD_INTS u64 (pid, gen,
# req, prov, latency_ns, kind, offcpu_ns), then version and symbol as char[STRLEN] (the
# BPFTRACE_STRLEN that launch.py starts bpftrace with)
RECORD_INTS = 7
BINDING_KEY_SIZE = 2 * 8
BINDING_VALUE_SIZE = 8 * RECORD_INTS + 2 * STRLEN


def _c_strings(chars) -> pa.Array:
    """Rows of a fixed char[N] column (numpy uint8, n x N) -> Arrow strings cut
    at each row's first NUL: pyarrow converts numpy's fixed-width bytes that
    way (strnlen; the tests hold it to that, also with bytes after the NUL)."""
    import numpy as np

    n, width = chars.shape
    fixed = pa.array(np.ascontiguousarray(chars).view(f"S{width}").reshape(n), pa.binary())
    try:
        return fixed.cast(pa.string())
    except pa.ArrowInvalid:  # not UTF-8 (a symbol is any bytes): decoded one by one, replacing
        return pa.array([None if b is None else b.decode("utf-8", "replace") for b in fixed.to_pylist()],
                        pa.string())


def records_table(keys: bytes, values: bytes, n: int, value_size: int) -> pa.Table:
    """@b's entries as the kernel holds them -> the columns _parse_bindings makes.

    Key: tid, ts_ns (u64 each). Value: u64s then version and symbol,
    char[BPFTRACE_STRLEN] each — bpftrace lays tuples out like a C struct, and
    nothing here needs padding: RECORD_INTS u64s, or one fewer (no offcpu_ns)
    in a map made before it existed. Object addresses become decimal strings,
    as in the printed form, so both paths name objects the same way."""
    import numpy as np

    k = np.frombuffer(keys, np.uint64, count=2 * n).reshape(n, 2)
    raw = np.frombuffer(values, np.uint8, count=n * value_size).reshape(n, value_size)
    n_ints = (value_size - 2 * STRLEN) // 8
    ints = raw[:, :8 * n_ints].copy().view(np.uint64)  # n x n_ints
    width = STRLEN
    strings = raw[:, 8 * n_ints:]
    offcpu = {"offcpu_ns": pa.array(ints[:, 6].astype(np.int64))} if n_ints > 6 else {}
    return pa.table({
        "tid": pa.array(k[:, 0].astype(np.int32)), "ts_ns": pa.array(k[:, 1].astype(np.int64)),
        "pid": pa.array(ints[:, 0].astype(np.int32)),
        "gen": pc.cast(pa.array(ints[:, 1]), pa.string()),
        "req": pc.cast(pa.array(ints[:, 2]), pa.string()),
        "prov": pc.cast(pa.array(ints[:, 3]), pa.string()),
        "latency_ns": pa.array(ints[:, 4].astype(np.int64)), "kind": pa.array(ints[:, 5].astype(np.int8)),
        **offcpu,
        "version": _c_strings(strings[:, :width]), "symbol": _c_strings(strings[:, width:2 * width]),
    })


def _hex_name(addr: str) -> str:
    return f"<link_map 0x{int(addr):x}>"


def _by_address(addrs: pa.Array) -> pa.Array:
    """Names for objects never announced: their link_map address, in hex."""
    enc = pc.dictionary_encode(addrs)
    return pc.take(pa.array([_hex_name(a) for a in enc.dictionary.to_pylist()], pa.string()), enc.indices)


_FIELDS = {"N": 5, "A": 3, "E": 3, "C": 3, "W": 4}  # record type -> tab splits before its free-text field


def _unescape(text: bytes) -> bytes:
    """An argument or environment piece as gotrace's BPF loader wrote it (csrc/bindload.c put_escaped: a
    newline as \\n, a backslash as \\\\), back to its bytes."""
    return re.sub(rb"\\(.)", lambda m: b"\n" if m[1] == b"n" else m[1], text, flags=re.S)


@dataclass
class BpftraceDecoder:
    backend: str = "bpftrace"
    tree: ProcessTree = field(default_factory=ProcessTree)
    names: dict[str, str] = field(default_factory=dict)  # "pid:gen:lm" -> path ("" = main)
    forked_from: dict[int, tuple[int, int]] = field(default_factory=dict)  # child -> (ppid, parent's gen)
    bias: dict[str, int] = field(default_factory=dict)  # "pid:gen:lm" -> l_addr
    relocs: list[tuple[int, int, str, int]] = field(default_factory=list)
    pending: list[pa.Table] = field(default_factory=list)
    lost_perf: int = 0  # "Lost N events": perf buffer overflow
    emitted: int | None = None  # binding records the script made (@emitted, printed before each MARK)
    received: int = 0  # binding lines that arrived (malformed ones too: counted there)
    malformed: int = 0
    ready_pid: int | None = None
    record_ints: int = RECORD_INTS - 1  # numbers in a printed binding's value: READY says 7 where offcpu_ns is in
    marks: set = field(default_factory=set)  # CPUs whose drain marker arrived
    walks: dict = field(default_factory=dict)  # (exec ts, pid) -> [(step, name)]: W records until their C

    # ---- small records -------------------------------------------------
    def __post_init__(self) -> None:
        # gotrace's BPF program reads argv from the new image, bindsnoop.bt from execve's argument
        self.tree.argv_after_exec = self.backend == "bpf"

    def _control(self, line: bytes) -> None:
        if line[:2] == b"V\t":  # a piece of an environment entry: bytes, its length counts
            f = line.split(b"\t", 4)
            try:
                piece = f[4] if len(f) > 4 else b""
                self.tree.env_piece(int(f[1]), int(f[2]), int(f[3]), _unescape(piece) if self.backend == "bpf" else piece)
            except (IndexError, ValueError):
                self.malformed += 1
            return
        text = line.decode("utf-8", "replace")
        t = text.split("\t", 1)[0]
        # the last field of N, A and E is a name or an argument: tabs in it are its own
        f = text.split("\t", _FIELDS.get(t, -1))
        try:
            if t == "N":
                key = f"{int(f[1])}:{int(f[2])}:{int(f[3])}"
                self.names[key] = f[5] if len(f) > 5 else ""
                self.bias[key] = int(f[4])
            elif t == "F":
                self.tree.fork(int(f[1]), int(f[2]), int(f[3]))
                self.forked_from[int(f[3])] = (int(f[2]), int(f[4]) if len(f) > 4 else 0)
            elif t == "S":
                self.tree.execve_start(int(f[1]), int(f[2]))
            elif t == "A":
                arg = f[3] if len(f) > 3 else ""
                self.tree.argv(int(f[1]), int(f[2]), _unescape(arg.encode()).decode() if self.backend == "bpf" else arg)
            elif t == "W":  # bindsnoop.bt's walk to a working directory, innermost name first
                self.walks.setdefault((int(f[1]), int(f[2])), []).append((int(f[3]), f[4] if len(f) > 4 else ""))
            elif t == "C":  # the working directory of an exec of a relative path (bindsnoop.bt: its walk's end)
                key = (int(f[1]), int(f[2]))
                steps = [name for _i, name in sorted(self.walks.pop(key, []), reverse=True)]
                self.tree.cwd(*key, f[3] if len(f) > 3 else "/" + "/".join(steps))
            elif t == "E":
                # a script's exec runs its interpreter: name the image by what runs (as ld.so does for ld-debug)
                self.tree.exec(int(f[1]), int(f[2]), f[3], name=script_interpreter)
            elif t == "X":
                status = int(f[3])  # -1: the kernel's task_struct layout was unknown
                self.tree.exit(int(f[1]), int(f[2]), exit_code_from_wait_status(status) if status >= 0 else None)
            elif t == "R":
                self.relocs.append((int(f[1]), int(f[2]), f"{int(f[2])}:{int(f[3])}:{int(f[4])}", int(f[5])))
            elif t == "READY":
                self.ready_pid = int(f[1])
                if len(f) > 2:
                    self.record_ints = int(f[2])
            elif t == "MARK":
                self.marks.add(int(f[1]))
            else:
                self.malformed += 1
        except (IndexError, ValueError):
            self.malformed += 1

    def feed(self, block: bytes) -> pa.Table | None:
        """Decode a block of complete lines; return the events ready to save."""
        lines = block.split(b"\n")
        bind_lines = [line for line in lines if line[:2] == b"@b"]  # comprehensions: ~1 M lines/s more
        for line in [line for line in lines if line and line[:2] != b"@b"]:
            if line.startswith(b"Attaching"):
                continue
            elif line[:1] == b"@":
                if line.startswith(b"@emitted: "):  # bpftrace prints a cleared count again at exit: 0
                    self.emitted = max(self.emitted or 0, int(line[10:]))
            elif line[:4] == b"Lost":
                m = LOST.match(line)
                if m:
                    self.lost_perf += int(m.group(1))
            else:
                self._control(line)
        self.received += len(bind_lines)
        return self._ready(self._parse_bindings(_b_rows(bind_lines, self.record_ints + 3)).drop(["map"])
                           if bind_lines else None)

    def feed_records(self, keys: bytes, values: bytes, n: int, value_size: int) -> pa.Table | None:
        """Decode binding records read from the script's map (see bpf_map);
        return the events ready to save."""
        self.received += n
        return self._ready(records_table(keys, values, n, value_size) if n else None)

    def _ready(self, new: pa.Table | None) -> pa.Table | None:
        """New binding rows plus the ones held back, named where possible."""
        tables = self.pending
        self.pending = []
        if new is not None:
            tables.append(new)
        if not tables:
            return None
        return self._resolve(pa.concat_tables(tables) if len(tables) > 1 else tables[0], final=False)

    def _parse_bindings(self, data: bytes) -> pa.Table:
        def skip(row) -> str:
            self.malformed += 1
            return "skip"

        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=B_COLUMNS if self.record_ints > 6 else B_COLUMNS_OLD,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False,
                                              invalid_row_handler=skip),
            convert_options=pacsv.ConvertOptions(column_types=_b_types(), strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False),
        )

    @property
    def lost(self) -> int:
        """Binding records made but never read, plus perf-buffer losses."""
        made = self.emitted if self.emitted is not None else self.received
        return self.lost_perf + max(0, made - self.received)

    def _name_of(self, key: str) -> str | None:
        name = self.names.get(key)
        hops = 0
        while name is None and hops < 64:  # (a reused pid must not make a cycle endless)
            pid, gen, lm = key.split(":")
            parent = self.forked_from.get(int(pid)) if gen == "0" else None
            if parent is None:
                break
            key = f"{parent[0]}:{parent[1]}:{lm}"  # forked, not exec'd: the parent's objects, same addresses
            name = self.names.get(key)
            hops += 1
        if name == "":  # the main program's link_map has an empty l_name
            pid, gen, _ = key.split(":")
            name = self.tree.exe_at(int(pid), int(gen))
        return name

    def _map(self, image: pa.Array, lm: pa.Array) -> pa.Array:
        keys = pc.binary_join_element_wise(image, lm, ":")
        enc = pc.dictionary_encode(keys)
        return pc.take(pa.array([self._name_of(k) for k in enc.dictionary.to_pylist()], pa.string()), enc.indices)

    def _resolve(self, t: pa.Table, final: bool) -> pa.Table | None:
        pid = t["pid"].combine_chunks()
        image = pc.binary_join_element_wise(pc.cast(pid, pa.string()), t["gen"].combine_chunks(), ":")
        requester = self._map(image, t["req"].combine_chunks())
        prov_raw = t["prov"].combine_chunks()
        resolved = pc.not_equal(prov_raw, "0")
        provider = self._map(image, prov_raw)
        known = pc.and_(pc.is_valid(requester), pc.or_(pc.invert(resolved), pc.is_valid(provider)))
        if not final:
            waiting = pc.invert(known)
            if pc.any(waiting).as_py():
                self.pending.append(t.filter(waiting))
                t, requester, provider, resolved, image = (
                    t.filter(known), requester.filter(known), provider.filter(known),
                    resolved.filter(known), image.filter(known))
        else:
            requester = pc.if_else(pc.is_valid(requester), requester, _by_address(t["req"].combine_chunks()))
            provider = pc.if_else(pc.or_(pc.is_valid(provider), pc.invert(resolved)), provider,
                                  _by_address(prov_raw))
        if t.num_rows == 0:
            return None
        provider = pc.if_else(resolved, provider, pa.scalar(None, pa.string()))
        img_enc = pc.dictionary_encode(image)
        exe = pc.take(pa.array([self.tree.exe_at(*map(int, k.split(":"))) for k in img_enc.dictionary.to_pylist()],
                               pa.string()), img_enc.indices)
        version = t["version"].combine_chunks()
        version = pc.if_else(pc.equal(version, ""), pa.scalar(None, pa.string()), version)
        code = pc.cast(t["kind"].combine_chunks(), pa.int32())
        unreturned = pc.greater_equal(code, UNRETURNED)  # ld.so's error path left the lookup: no latency
        kind = pc.take(pa.array(KIND_NAMES, pa.string()), pc.bit_wise_and(code, UNRETURNED - 1))
        latency = pc.if_else(unreturned, pa.scalar(None, pa.int64()), t["latency_ns"].combine_chunks())
        offcpu = (pc.if_else(unreturned, pa.scalar(None, pa.int64()), t["offcpu_ns"].combine_chunks())
                  if "offcpu_ns" in t.column_names else None)  # records made before it existed: not measured
        return events_table({
            "ts_ns": t["ts_ns"], "pid": t["pid"], "tid": t["tid"], "exe": exe,
            "requester": requester, "symbol": t["symbol"], "version": version,
            "provider": provider, "kind": kind, "resolved": resolved, "latency_ns": latency,
            "offcpu_ns": offcpu,
        }, self.backend)

    def finish(self) -> pa.Table | None:
        """Flush held-back events, naming unknown objects by address."""
        tables, self.pending = self.pending, []
        if not tables:
            return None
        t = pa.concat_tables(tables)
        self._name_interpreters(t)
        return self._resolve(t, final=True)

    def _name_interpreters(self, t: pa.Table) -> None:
        """ld.so is relocated last, where bindsnoop.bt reads its name: a process that died of a
        symbol lookup error before that leaves it unnamed. In such a process, the one unnamed
        provider is the program's PT_INTERP when that file defines every symbol bound to it
        (read from the files, never guessed: otherwise it stays an address)."""
        rows = t.select(["pid", "gen", "prov", "symbol"]).to_pylist()
        unnamed: dict[str, dict[str, set[str]]] = {}  # "pid:gen" -> link_map -> symbols bound to it
        for r in rows:
            image = f"{r['pid']}:{r['gen']}"
            if r["prov"] != "0" and self._name_of(f"{image}:{r['prov']}") is None:
                unnamed.setdefault(image, {}).setdefault(r["prov"], set()).add(r["symbol"])
        for image, maps in unnamed.items():
            if len(maps) != 1:
                continue
            (lm, symbols), = maps.items()
            pid, gen = map(int, image.split(":"))
            exe = self.tree.exe_at(pid, gen)
            prog = facts.dyn_object(exe) if exe else None
            interp = facts.dyn_object(prog.interpreter) if prog is not None and prog.interpreter else None
            named = {os.path.realpath(n) for k, n in self.names.items() if k.startswith(image + ":") and n}
            if interp is None or os.path.realpath(interp.path) in named:
                continue
            if all(s in interp.definitions for s in symbols):
                self.names[f"{image}:{lm}"] = interp.path

    # ---- small tables --------------------------------------------------
    def relocations_rows(self) -> list[dict]:
        return [{"ts_ns": ts, "pid": pid, "path": self._name_of(key) or _hex_name(key.split(":")[2]),
                 "duration_ns": dur} for ts, pid, key, dur in self.relocs]

    def image_biases(self) -> list[tuple[int, str, int]]:
        """(pid, path, l_addr) for every named object, main program as its exe."""
        rows = {}
        for key in self.names:
            pid = int(key.split(":", 1)[0])
            path = self._name_of(key)
            if path:
                rows[(pid, path)] = self.bias.get(key, 0)
        return [(p, path, b) for (p, path), b in rows.items()]
