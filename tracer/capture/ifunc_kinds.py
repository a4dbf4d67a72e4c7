"""The kind of a lookup the vDSO makes for an IFUNC resolver: that of the binding it is part of.

glibc looks the kernel's fast entry points up in the vDSO (dl_vdso_vsym): at
start-up from ld.so, and again from libc when an IFUNC resolver runs (time,
gettimeofday …: x86-64's time() is an IFUNC that asks for __vdso_time) — right
after the lookup of the IFUNC symbol itself, on the same thread, while ld.so
relocates (eager) or binds a PLT slot (lazy). The probes (bpf, bpftrace, lldb)
name a lookup's kind by its caller, and a caller in libc is dlsym's: such a
lookup would be counted a dlsym no program made. It takes the kind of its
thread's previous lookup instead (a dlsym of an IFUNC symbol stays a dlsym).
A program's own dlsym on a handle of the vDSO would look the same; none is seen
in practice.
"""
from __future__ import annotations

from ..heavy import pa, pc
from .object_keeper import VDSO


class IfuncKinds:
    """Relabels, table by table, the dlsym-kind lookups by the vDSO. A resolver's lookup follows its IFUNC
    symbol's at once, so the table before is kept: the binding may have ended it."""

    def __init__(self) -> None:
        self.before: pa.Table | None = None

    def __call__(self, table: pa.Table) -> pa.Table:
        kinds = table.column("kind").cast(pa.string())
        # a requester the backend could not name (null: DTrace for Linux) is no vDSO (is_in gives false for it)
        suspect = pc.and_(pc.equal(kinds, "dlsym"),
                          pc.is_in(table.column("requester").cast(pa.string()), value_set=pa.array(VDSO)))
        if not pc.any(suspect).as_py():  # the common table: nothing to do
            self.before = table
            return table
        pids = pa.array(sorted(set(pc.filter(table.column("pid"), suspect).to_pylist())), table.schema.field("pid").type)

        def concerned(t: pa.Table, rows, flags) -> pa.Table:  # the lookups of the processes concerned
            keep = pc.is_in(t.column("pid"), value_set=pids)
            return pa.table({"ts_ns": pc.filter(t.column("ts_ns"), keep), "pid": pc.filter(t.column("pid"), keep),
                             "tid": pc.filter(t.column("tid"), keep),
                             "kind": pc.filter(t.column("kind"), keep).cast(pa.string()),
                             "row": pc.filter(rows, keep), "suspect": pc.filter(flags, keep)})

        parts = [concerned(table, pa.array(range(table.num_rows), pa.int64()), suspect)]
        if self.before is not None:
            n = self.before.num_rows
            parts.insert(0, concerned(self.before, pa.nulls(n, pa.int64()), pa.array([False] * n, pa.bool_())))
        rows = pa.concat_tables(parts)
        rows = rows.take(pc.sort_indices(rows.column("ts_ns")))  # each thread's lookups in time order
        last: dict[tuple[int, int], str] = {}
        changed: dict[int, str] = {}
        for pid, tid, kind, row, flag in zip(*(rows.column(c).to_pylist() for c in ("pid", "tid", "kind", "row",
                                                                                  "suspect"))):
            if flag and (pid, tid) in last:
                kind = changed[row] = last[(pid, tid)]
            last[(pid, tid)] = kind
        if changed:
            import numpy as np

            mask = np.zeros(table.num_rows, dtype=bool)
            at = sorted(changed)
            mask[at] = True
            i = table.schema.get_field_index("kind")
            table = table.set_column(i, table.schema.field(i), pc.replace_with_mask(
                kinds, pa.array(mask), pa.array([changed[r] for r in at], pa.string())).cast(table.schema.field(i).type))
        self.before = table
        return table
