"""Decodes bindsnoop.bt's tab-separated records into the session tables.

Binding records (the bulk) are parsed in blocks with Arrow's CSV reader and
mapped to names with dictionary encoding, so no Python code runs per event;
the rare fork/exec/exit/name records are handled one by one.

bpftrace reads one perf buffer per CPU, so a record can arrive before the name
announcement (N) it refers to, when the thread migrated between CPUs. Events
whose objects are not yet named are held back and retried with the next block;
``finish()`` names whatever is left by address.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from ..lazy import pa, pacsv, pc, pd

from ..process_tree import ProcessTree
from ..schema import exit_code_from_wait_status

B_COLUMNS = ["rec", "ts_ns", "pid", "tid", "symbol", "version", "req", "prov", "latency_ns", "kind"]


def _b_types() -> dict:
    return {
        "rec": pa.string(), "ts_ns": pa.int64(), "pid": pa.int32(), "tid": pa.int32(),
        "symbol": pa.string(), "version": pa.string(), "req": pa.string(), "prov": pa.string(),
        "latency_ns": pa.int64(), "kind": pa.int8(),
    }
KIND_NAMES = ("", "eager", "lazy", "dlsym")  # by the script's kind code
LOST = re.compile(rb"^Lost (\d+) events")


@dataclass
class BpftraceDecoder:
    backend: str = "bpftrace"
    tree: ProcessTree = field(default_factory=ProcessTree)
    names: dict[str, str] = field(default_factory=dict)  # "pid:lm" -> path ("" = main)
    bias: dict[str, int] = field(default_factory=dict)  # "pid:lm" -> l_addr
    relocs: list[tuple[int, int, str, int]] = field(default_factory=list)
    pending: list[pa.Table] = field(default_factory=list)
    lost: int = 0
    malformed: int = 0
    ready_pid: int | None = None
    marks: set = field(default_factory=set)  # CPUs whose drain marker arrived

    # ---- small records -------------------------------------------------
    def _control(self, line: bytes) -> None:
        f = line.decode("utf-8", "replace").split("\t")
        try:
            t = f[0]
            if t == "N":
                key = f"{int(f[1])}:{f[2]}"
                self.names[key] = f[4] if len(f) > 4 else ""
                self.bias[key] = int(f[3], 16)
            elif t == "F":
                self.tree.fork(int(f[1]), int(f[2]), int(f[3]))
            elif t == "A":
                self.tree.argv(int(f[1]), int(f[2]), f[3] if len(f) > 3 else "")
            elif t == "E":
                self.tree.exec(int(f[1]), int(f[2]), f[3])
            elif t == "X":
                self.tree.exit(int(f[1]), int(f[2]), exit_code_from_wait_status(int(f[3])))
            elif t == "R":
                self.relocs.append((int(f[1]), int(f[2]), f"{int(f[2])}:{f[3]}", int(f[4])))
            elif t == "READY":
                self.ready_pid = int(f[1])
            elif t == "MARK":
                self.marks.add(int(f[1]))
            else:
                self.malformed += 1
        except (IndexError, ValueError):
            self.malformed += 1

    def feed(self, block: bytes) -> pa.Table | None:
        """Decode a block of complete lines; return the events ready to save."""
        bind_lines = []
        for line in block.split(b"\n"):
            if line[:2] == b"B\t":
                bind_lines.append(line)
            elif line[:1] in (b"", b"@") or line.startswith(b"Attaching"):
                continue
            elif line[:4] == b"Lost":
                m = LOST.match(line)
                if m:
                    self.lost += int(m.group(1))
            else:
                self._control(line)
        tables = self.pending
        self.pending = []
        if bind_lines:
            tables.append(self._parse_bindings(b"\n".join(bind_lines)))
        if not tables:
            return None
        return self._resolve(pa.concat_tables(tables) if len(tables) > 1 else tables[0], final=False)

    def _parse_bindings(self, data: bytes) -> pa.Table:
        def skip(row) -> str:
            self.malformed += 1
            return "skip"

        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=B_COLUMNS, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False,
                                              invalid_row_handler=skip),
            convert_options=pacsv.ConvertOptions(column_types=_b_types(), strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False),
        )

    def _map(self, pid: pa.Array, lm: pa.Array) -> pa.Array:
        keys = pc.binary_join_element_wise(pc.cast(pid, pa.string()), lm, ":")
        enc = pc.dictionary_encode(keys).combine_chunks() if isinstance(keys, pa.ChunkedArray) else pc.dictionary_encode(keys)
        looked = []
        for k in enc.dictionary.to_pylist():
            name = self.names.get(k)
            if name == "":  # the main program's link_map has an empty l_name
                name = self.tree.exe_of(int(k.split(":", 1)[0]))
            looked.append(name)
        return pc.take(pa.array(looked, pa.string()), enc.indices)

    def _resolve(self, t: pa.Table, final: bool) -> pa.Table | None:
        pid = t["pid"].combine_chunks()
        requester = self._map(pid, t["req"].combine_chunks())
        prov_raw = t["prov"].combine_chunks()
        resolved = pc.not_equal(prov_raw, "0")
        provider = self._map(pid, prov_raw)
        known = pc.and_(pc.is_valid(requester), pc.or_(pc.invert(resolved), pc.is_valid(provider)))
        if not final:
            waiting = pc.invert(known)
            if pc.any(waiting).as_py():
                self.pending.append(t.filter(waiting))
                t, requester, provider, resolved, pid = (
                    t.filter(known), requester.filter(known), provider.filter(known),
                    resolved.filter(known), pid.filter(known))
        else:
            requester = pc.if_else(pc.is_valid(requester), requester,
                                   pc.binary_join_element_wise("<link_map 0x", t["req"].combine_chunks(), ">", ""))
            provider = pc.if_else(pc.or_(pc.is_valid(provider), pc.invert(resolved)), provider,
                                  pc.binary_join_element_wise("<link_map 0x", prov_raw, ">", ""))
        if t.num_rows == 0:
            return None
        provider = pc.if_else(resolved, provider, pa.scalar(None, pa.string()))
        pid_enc = pc.dictionary_encode(pid)
        exe = pc.take(pa.array([self.tree.exe_of(p) for p in pid_enc.dictionary.to_pylist()], pa.string()),
                      pid_enc.indices)
        version = t["version"].combine_chunks()
        version = pc.if_else(pc.equal(version, ""), pa.scalar(None, pa.string()), version)
        kind = pc.take(pa.array(KIND_NAMES, pa.string()), pc.cast(t["kind"].combine_chunks(), pa.int32()))
        n = t.num_rows
        return pa.table({
            "ts_ns": t["ts_ns"], "pid": pid, "tid": t["tid"], "exe": exe,
            "requester": requester, "symbol": t["symbol"], "version": version,
            "provider": provider, "kind": kind, "resolved": resolved,
            "latency_ns": t["latency_ns"], "latency_raw_ns": t["latency_ns"],
            "backend": pa.repeat(pa.scalar(self.backend, pa.string()), n),
        })

    def finish(self) -> pa.Table | None:
        """Flush held-back events, naming unknown objects by address."""
        tables, self.pending = self.pending, []
        if not tables:
            return None
        return self._resolve(pa.concat_tables(tables), final=True)

    # ---- small tables --------------------------------------------------
    def relocations_frame(self) -> pd.DataFrame:
        rows = []
        for ts, pid, key, dur in self.relocs:
            name = self.names.get(key)
            if name == "":
                name = self.tree.exe_of(pid)
            rows.append((ts, pid, name or f"<link_map 0x{key.split(':')[1]}>", dur))
        return pd.DataFrame(rows, columns=["ts_ns", "pid", "path", "duration_ns"])

    def image_biases(self) -> pd.DataFrame:
        """(pid, path, l_addr) for every named object, main program as its exe."""
        rows = {}
        for key, name in self.names.items():
            pid = int(key.split(":", 1)[0])
            path = name if name else self.tree.exe_of(pid)
            if path:
                rows[(pid, path)] = self.bias.get(key, 0)
        return pd.DataFrame([(p, path, b) for (p, path), b in rows.items()], columns=["pid", "path", "l_addr"])
