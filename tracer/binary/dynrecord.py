"""What ld.so reads of an object (elf_dynsyms.DynObject) as plain rows, and back.

A session keeps these rows for every object its processes loaded (as uftrace
keeps each binary's symbol tables beside its data), so `report`, `why` and
`compare` give the same answers when the files are gone — `go test` deletes its
test binaries, a build replaces its outputs, a session is read on another machine.
The rows are the session's OBJECTS and SYMBOLS tables (session/schema.py).
"""
from __future__ import annotations

from collections.abc import Mapping

from .elf_dynsyms import Definition, DynObject, NameIndex

SYMBOL_FIELDS = ("name", "version", "version_index", "hidden", "binding", "visibility", "type")


def object_row(obj: DynObject, object_id: str, size: int | None) -> dict:
    """The object's facts as one OBJECTS row (its definitions go to ``symbol_columns``)."""
    return {
        "object_id": object_id, "path": obj.path, "format": "elf", "size": size, "build_id": obj.build_id,
        "machine": obj.machine, "bits": obj.bits, "soname": obj.soname, "interpreter": obj.interpreter,
        "needed": list(obj.needed), "rpath": list(obj.rpath), "runpath": list(obj.runpath),
        "symbolic": obj.symbolic, "nodeflib": obj.nodeflib, "versioned": obj.versioned,
        "copy_relocated": sorted(obj.copy_relocated),
        "copy_aliases": [{"alias": a, "of": o} for a, o in sorted(obj.copy_aliases.items())],
        "canonical_plt": sorted(obj.canonical_plt),
        "version_defs": list(obj.version_defs),
        "version_needs": [{"file": f, "version": v} for f, v in obj.version_needs],
    }


def symbol_columns(obj: DynObject, object_id: str) -> dict[str, list]:
    """The object's definitions, then its undefined references, as SYMBOLS columns."""
    defs = obj.definitions
    cols = defs.columns() if hasattr(defs, "columns") else _columns_of(defs)
    n = len(cols["name"])
    refs = getattr(defs, "undefined", {}) or {}
    out = {"object_id": [object_id] * (n + len(refs)), "defined": [True] * n + [False] * len(refs)}
    for f in SYMBOL_FIELDS:
        out[f] = list(cols[f]) + ([None] * len(refs) if f != "name" and f != "binding" else [])
    out["name"] += list(refs)
    out["binding"] += ["weak" if weak else "global" for weak in refs.values()]
    return out


def _columns_of(defs: Mapping) -> dict[str, list]:
    cols: dict[str, list] = {f: [] for f in SYMBOL_FIELDS}
    for name in defs:
        for d in defs[name]:
            for f in SYMBOL_FIELDS:
                cols[f].append(getattr(d, f))
    return cols


class KeptDefinitions(NameIndex):
    """name -> [Definition], from a session's SYMBOLS rows of one object (an Arrow table), made into
    Definitions only when asked for (a replay asks for a few names of cc1's 28,000); ``undefined``
    as Definitions has it. Only the names are read up front."""

    def __init__(self, symbols):
        import pyarrow.compute as pc

        self._table = symbols
        defined = symbols["defined"]
        refs = symbols.filter(pc.invert(defined))
        self.undefined: dict[str, bool] = dict(zip(refs["name"].to_pylist(),
                                                   pc.equal(refs["binding"], "weak").to_pylist()))
        self._index: dict[str, list[int]] = {}
        for row, (name, is_def) in enumerate(zip(symbols["name"].to_pylist(), defined.to_pylist())):
            if not is_def:
                continue
            if name in self._index:
                self._index[name].append(row)
            else:
                self._index[name] = [row]
        self._made: dict[str, list[Definition]] = {}
        self.canonical_plt: set[str] = set()

    def __getitem__(self, name: str) -> list[Definition]:
        if name not in self._made:
            rows = self._table.take(self._index[name]).select(list(SYMBOL_FIELDS)).to_pylist()
            self._made[name] = [Definition(name, r["version"], int(r["version_index"]), bool(r["hidden"]),
                                           r["binding"], r["visibility"], r["type"]) for r in rows]
        return self._made[name]



def from_rows(row: dict, symbols) -> DynObject:
    """The DynObject a session kept (its OBJECTS row and its SYMBOLS rows as an Arrow table): what
    the analyses read of the file, without the file."""
    defs = KeptDefinitions(symbols)
    defs.canonical_plt = set(row.get("canonical_plt") or ())
    return DynObject(
        path=row["path"], machine=int(row["machine"] or 0), bits=int(row["bits"] or 64), soname=row["soname"],
        interpreter=row["interpreter"], needed=list(row["needed"] or ()), rpath=list(row["rpath"] or ()),
        runpath=list(row["runpath"] or ()), symbolic=bool(row["symbolic"]), nodeflib=bool(row["nodeflib"]),
        versioned=bool(row["versioned"]), definitions=defs,
        copy_relocated=set(row["copy_relocated"] or ()),
        copy_aliases={a["alias"]: a["of"] for a in row["copy_aliases"] or ()},
        canonical_plt=defs.canonical_plt,
        version_defs=list(row["version_defs"] or ()),
        version_needs=[(n["file"], n["version"]) for n in row["version_needs"] or ()],
        build_id=row["build_id"],
    )
