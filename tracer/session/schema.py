"""The contract between capture and analysis.

Every backend produces exactly these tables and columns, and every analysis
(report, notebooks, compare, plot) relies on nothing else. Columns are
snake_case with their unit in the name. Every backend builds its events with
:func:`events_table`, and the small tables go through ``from_rows`` or
``to_arrow``, so a backend cannot drift silently.

The Arrow schemas (EVENTS, PROCESSES, IMAGES, RELOCATIONS, TABLES) are built on
first use, so importing this module does not load pyarrow before the traced
command has started.
"""
from __future__ import annotations

from ..heavy import pa, pd

FORMAT = "gotrace-session"  # meta.json's "format"
META = "meta.json"
SCHEMA_VERSION = 5  # 2: events gained latency_raw_ns (v1 sessions read with it = latency_ns)
# 3: processes gained arch and translator (older sessions read with them null)
# 4: images gained uuid (older sessions read with it null)
# 5: the errors and searches tables (older sessions read with none)

LOADER_PREFIXES = ("LD_", "DYLD_")
LOADER_NAMES = ("GLIBC_TUNABLES",)


def loader_variable(entry: str) -> bool:
    """Whether an environment entry ("NAME=VALUE") is one the dynamic linker reads: glibc's ld.so
    looks at every name starting LD_ (rtld.c's process_envvars), and GLIBC_TUNABLES; dyld at
    every DYLD_ one. A process's ``loader_env`` holds exactly these, in environment order."""
    name = entry.split("=", 1)[0]
    return name.startswith(LOADER_PREFIXES) or name in LOADER_NAMES


def loader_env(environment) -> list[str]:
    """The entries of an environment ("NAME=VALUE" strings, in order) the dynamic linker reads."""
    return [e for e in environment if loader_variable(e)]


TS_MARKS = {
    # What instant of a lookup ``ts_ns`` is, by the events' ``backend``:
    # "end": when the lookup returned (its start is ts_ns - latency_raw_ns: the probes stamp it at
    #        the return, and latency_raw_ns is entry to return on the same clock);
    # "start": when it was entered (the lookup ran from ts_ns to ts_ns + latency_raw_ns);
    # "seen": neither: when gotrace read the line that reported it (no latency), so events of
    #         one process keep their order but not their times.
    # A lookup that never returned (latency null: it raised "symbol lookup error") has no span:
    # bpf and bpftrace stamp it when it raised, lldb when it was entered.
    "bpf": "end",  # bindsnoop.bpf.c: the uretprobe's bpf_ktime_get_ns
    "bpftrace": "end",  # bindsnoop.bt: nsecs in the uretprobe
    "dtrace": "end",  # dlsymsnoop.d / dyldbindsnoop.d: `timestamp` in the return probe
    "lldb": "start",  # the entry breakpoint's stop (recorder.py, dyld_recorder.py)
    "ld-debug": "seen",  # LD_DEBUG prints no times: when the line was read (imported logs: its order)
    "dyld-print": "seen",  # likewise dyld's DYLD_PRINT_* lines
}


def lookup_span(backend: str | None, ts_ns: int, latency_raw_ns: int | None) -> tuple[int, int | None]:
    """(start, duration) of one lookup on the session's clock: where it happened, whichever
    instant its backend stamps (TS_MARKS); duration None where none was measured."""
    if latency_raw_ns is None:
        return ts_ns, None
    if TS_MARKS.get(backend or "") == "end":
        return ts_ns - latency_raw_ns, latency_raw_ns
    return ts_ns, latency_raw_ns


KINDS = ("eager", "lazy", "dlsym")
"""eager: bound while ld.so relocated an image (at load, or -z now);
lazy: bound on first call through a PLT slot (_dl_fixup);
dlsym: looked up at run time by dlsym/dlvsym."""


def kind_dtype():
    """The categorical dtype of ``kind`` (a function: pandas loads lazily)."""
    return pd.CategoricalDtype(list(KINDS))


def _build() -> dict:
    EVENTS = pa.schema(
        [
            ("ts_ns", pa.int64()),  # CLOCK_MONOTONIC; see metadata ts_source, and TS_MARKS for what instant
            ("pid", pa.int32()),
            ("tid", pa.int32()),
            ("exe", pa.string()),
            ("requester", pa.string()),  # object whose reference is bound
            ("symbol", pa.string()),
            ("version", pa.string()),  # null when the reference is unversioned
            ("provider", pa.string()),  # defining object; null if the lookup failed
            ("kind", pa.string()),  # one of KINDS
            ("resolved", pa.bool_()),
            ("latency_ns", pa.int64()),  # resolver time; null where not measured
            # as observed, before any correction for the tracer's own cost (the
            # lldb backend subtracts its calibrated stop/resume time; see the
            # session's latency_method); equal to latency_ns where none applies
            ("latency_raw_ns", pa.int64()),
            ("backend", pa.string()),
            # of latency_ns, the time the lookup's thread was switched out (preempted, or blocked on a
            # page fault or a lock: sched_switch, bpf and bpftrace backends); latency_ns - offcpu_ns is
            # the time on a CPU. Null where not measured (ld-debug, lldb, dtrace, imported logs, and
            # sessions recorded before it existed). Last: the lldb recorder's rows are positional.
            ("offcpu_ns", pa.int64()),
        ]
    )

    PROCESSES = pa.schema(
        [
            ("pid", pa.int32()),
            ("ppid", pa.int32()),  # null where the backend cannot see it (ld-debug)
            ("exe", pa.string()),
            ("argv", pa.list_(pa.string())),
            ("start_ns", pa.int64()),
            ("end_ns", pa.int64()),
            ("exit_code", pa.int32()),  # 128+N for death by signal N, as a shell says
            ("arch", pa.string()),  # the program image's architecture (ELF e_machine)
            ("translator", pa.string()),  # what ran it when foreign (qemu-aarch64 ...); null = native
            # the dynamic linker's variables this image had at its exec ("NAME=VALUE", in the order of
            # its environment; LOADER_VARIABLES says which): [] = seen, none set; null = not seen
            ("loader_env", pa.list_(pa.string())),
        ]
    )

    IMAGES = pa.schema(
        [
            ("pid", pa.int32()),
            ("path", pa.string()),
            ("load_base", pa.uint64()),  # runtime address of the first PT_LOAD
            ("link_base", pa.uint64()),  # link-time address of the first PT_LOAD
            ("slide", pa.int64()),  # load_base - link_base (ld.so's l_addr)
            ("uuid", pa.string()),  # Mach-O LC_UUID as dyld printed it; null where not recorded
        ]
    )

    RELOCATIONS = pa.schema(
        [
            ("ts_ns", pa.int64()),
            ("pid", pa.int32()),
            ("path", pa.string()),
            ("duration_ns", pa.int64()),  # one _dl_relocate_object call
        ]
    )

    # What the analyses read of each object the processes loaded, kept at capture (the files may
    # be gone when the session is read: `go test` deletes its binaries, builds replace theirs).
    # One row per distinct file (object_id); LOADED says which file each process's name was.
    OBJECTS = pa.schema(
        [
            ("object_id", pa.string()),  # "build-id:HEX", else "file:DEV:INODE:SIZE:MTIME" (this capture's)
            ("path", pa.string()),  # a name it was loaded under
            ("format", pa.string()),  # elf
            ("size", pa.int64()),
            ("build_id", pa.string()),
            ("machine", pa.int32()),  # ELF e_machine
            ("bits", pa.int32()),
            ("soname", pa.string()),
            ("interpreter", pa.string()),  # PT_INTERP
            ("needed", pa.list_(pa.string())),  # DT_NEEDED, in order
            ("rpath", pa.list_(pa.string())),  # DT_RPATH as written ($ORIGIN not expanded)
            ("runpath", pa.list_(pa.string())),
            ("symbolic", pa.bool_()),  # DT_SYMBOLIC / DF_SYMBOLIC
            ("nodeflib", pa.bool_()),  # DF_1_NODEFLIB
            ("versioned", pa.bool_()),  # has DT_VERSYM
            ("copy_relocated", pa.list_(pa.string())),  # R_*_COPY targets and their aliases
            ("copy_aliases", pa.list_(pa.struct([("alias", pa.string()), ("of", pa.string())]))),
            ("canonical_plt", pa.list_(pa.string())),  # undefined functions with a value (non-PIE)
            ("version_defs", pa.list_(pa.string())),  # DT_VERDEF, base first
            ("version_needs", pa.list_(pa.struct([("file", pa.string()), ("version", pa.string())]))),
            # how it was kept: "from the running process" (/proc/PID/exe or its mapping: the very file),
            # "by path during the run" (the process had ended), "by path after the run"
            ("kept", pa.string()),
        ]
    )

    SYMBOLS = pa.schema(
        [
            ("object_id", pa.string()),
            ("name", pa.string()),
            ("defined", pa.bool_()),  # false: an undefined reference (binding weak or global)
            ("version", pa.string()),
            ("version_index", pa.int32()),  # DT_VERSYM's, without the hidden bit
            ("hidden", pa.bool_()),  # name@VERSION rather than name@@VERSION
            ("binding", pa.string()),  # global | weak | unique
            ("visibility", pa.string()),
            ("type", pa.string()),
        ]
    )

    LOADED = pa.schema(
        [
            ("pid", pa.int32()),
            ("path", pa.string()),  # as the session names it (events, images, processes)
            ("object_id", pa.string()),
            ("real_path", pa.string()),  # the file it was, symlinks resolved, as the process saw it
        ]
    )

    # What the loader refused, one row per error message (tracer/loaderrors/): dyld's "Library not
    # loaded", "Symbol not found" …, glibc's "error while loading shared libraries" … The process is
    # the one the message names (null where the text does not say).
    ERRORS = pa.schema(
        [
            ("pid", pa.int32()),
            ("exe", pa.string()),  # the process's program where known, else the program the message names
            ("source", pa.string()),  # dyld | glibc
            ("kind", pa.string()),  # loaderrors.record.KINDS
            ("cause", pa.string()),  # loaderrors.record.CAUSES
            ("requester", pa.string()),
            ("library", pa.string()),  # what could not load, or where the symbol was expected
            ("symbol", pa.string()),
            ("version", pa.string()),
            ("tried", pa.list_(pa.struct([("path", pa.string()), ("reason", pa.string())]))),
            ("have", pa.list_(pa.string())),  # architectures (ELF classes) of the file found
            ("need", pa.list_(pa.string())),  # those the process could load
            ("via", pa.string()),  # launch | dlopen | call
            ("line", pa.int64()),  # where in the log the message starts (1-based; imported logs)
            ("message", pa.string()),  # verbatim
        ]
    )

    # dyld's library search (DYLD_PRINT_SEARCHING, imported logs): for each search, every path it
    # considered in its order, how it came to that path, and how the search ended there
    SEARCHES = pa.schema(
        [
            ("pid", pa.int32()),
            ("library", pa.string()),  # the name searched, as the load command or dlopen wrote it (@rpath/…)
            ("search", pa.int32()),  # the process's n-th search
            ("step", pa.int32()),  # the path's place in it
            ("path", pa.string()),  # null: the search printed no path
            ("via", pa.string()),  # dyld's words: "original path", "@path expansion (LC_RPATH '…' from …)" …
            ("outcome", pa.string()),  # found | error | passed over | not found (the search found nothing) | null
            ("error", pa.string()),  # why a found file was refused
        ]
    )

    TABLES = {
        "events": EVENTS,
        "processes": PROCESSES,
        "images": IMAGES,
        "relocations": RELOCATIONS,
        "objects": OBJECTS,
        "symbols": SYMBOLS,
        "loaded": LOADED,
        "errors": ERRORS,
        "searches": SEARCHES,
    }
    return {"ERRORS": ERRORS, "SEARCHES": SEARCHES, "EVENTS": EVENTS, "PROCESSES": PROCESSES, "IMAGES": IMAGES,
            "RELOCATIONS": RELOCATIONS, "OBJECTS": OBJECTS, "SYMBOLS": SYMBOLS, "LOADED": LOADED,
            "TABLES": TABLES}


def __getattr__(name: str):
    if name in ("EVENTS", "PROCESSES", "IMAGES", "RELOCATIONS", "OBJECTS", "SYMBOLS", "LOADED", "ERRORS", "SEARCHES", "TABLES"):
        globals().update(_build())
        return globals()[name]
    raise AttributeError(name)


# Columns filled later in the pipeline (translate.annotate), or that older sessions and some backends
# lack (loader_env, offcpu_ns); null when a writer has none.
OPTIONAL = {"processes": ("arch", "translator", "loader_env"), "images": ("uuid",), "events": ("offcpu_ns",)}


def latency_calibration(latency_method) -> dict | None:
    """The calibration behind a session's latencies (meta.json's ``latency_method``),
    when they are estimates (the lldb backend subtracts its own measured stop/resume
    cost); None when they are measured as they are, or not at all."""
    cal = latency_method.get("calibration") if isinstance(latency_method, dict) else None
    return cal if cal and cal.get("median_ns") is not None else None


def to_arrow(table: str, frame: pd.DataFrame) -> pa.Table:
    """Coerce a backend's frame to the contract: exact columns, order and types."""
    schema = __getattr__("TABLES")[table]
    absent = [n for n in OPTIONAL.get(table, ()) if n not in frame.columns]
    if absent:
        frame = frame.assign(**{n: None for n in absent})
    missing = [n for n in schema.names if n not in frame.columns]
    if missing:
        raise ValueError(f"{table} frame lacks columns {missing}")
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def from_rows(table: str, rows: list[dict]) -> pa.Table:
    """Rows (dicts by column name; a column a row lacks is null) as the contract's table.

    The small tables travel as rows from backend to disk: building them needs
    neither pandas nor numpy, so `gotrace bind` never imports pandas."""
    schema = __getattr__("TABLES")[table]
    extra = {k for r in rows for k in r} - set(schema.names)
    if extra:
        raise ValueError(f"{table} rows have columns outside the contract: {sorted(extra)}")
    return pa.Table.from_pylist(rows, schema=schema)


def from_columns(table: str, columns: dict[str, list]) -> pa.Table:
    """Columns (lists by column name, all of one length) as the contract's table."""
    schema = __getattr__("TABLES")[table]
    extra = set(columns) - set(schema.names)
    if extra:
        raise ValueError(f"{table} columns outside the contract: {sorted(extra)}")
    n = len(next(iter(columns.values()))) if columns else 0
    return pa.Table.from_arrays([pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type)
                                 for f in schema], schema=schema)


def events_table(columns: dict, backend: str | None = None) -> pa.Table:
    """The events table, built the one way every backend builds it.

    ``columns`` maps event column names to Arrow arrays or Python sequences
    of equal length. What a backend cannot see it leaves out: ``tid``,
    ``version``, ``provider``, ``latency_ns`` and ``offcpu_ns`` are then null,
    ``latency_raw_ns`` is ``latency_ns`` (nothing was corrected), ``resolved``
    is true (a backend that sees only successful bindings) and ``backend``
    is the ``backend`` argument on every row.
    """
    events = __getattr__("EVENTS")
    extra = set(columns) - set(events.names)
    if extra:
        raise ValueError(f"events have columns outside the contract: {sorted(extra)}")
    n = len(next(iter(columns.values()))) if columns else 0  # Arrow arrays and sequences both have len
    arrays = []
    for f in events:
        v = columns.get(f.name)
        if v is None:
            if f.name == "latency_raw_ns" and columns.get("latency_ns") is not None:
                v = columns["latency_ns"]
            elif f.name == "resolved":
                v = pa.repeat(pa.scalar(True), n)
            elif f.name == "backend" and backend is not None:
                v = pa.repeat(pa.scalar(backend, pa.string()), n)
            else:
                v = pa.nulls(n, f.type)
        if not isinstance(v, (pa.Array, pa.ChunkedArray)):
            v = pa.array(v, f.type)
        elif v.type != f.type:
            v = v.cast(f.type)
        arrays.append(v)
    return pa.Table.from_arrays(arrays, schema=events)


def events_from_rows(rows: list[tuple]) -> pa.Table:
    """Event rows as tuples in the contract's column order (the lldb recorder's) as the events table."""
    names = __getattr__("EVENTS").names
    cols = list(zip(*rows)) if rows else [[] for _ in names]
    return events_table({name: list(col) for name, col in zip(names, cols)})


def empty(table: str) -> pd.DataFrame:
    """An empty frame with the table's columns and dtypes."""
    return __getattr__("TABLES")[table].empty_table().to_pandas()
