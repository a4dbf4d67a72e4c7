"""A whole DYLD_PRINT_* log, read as it grows: events while it is read, the small tables at its end.

Shared by the dyld-print backend (a log being written by a running command) and
``gotrace import dyld-print`` (logs captured elsewhere). Bodies are split by pid
(demux.py), accounted per pid (account.py) and turned into event rows; at the end
the processes and images tables are built from what each pid's lines said. Not
run on macOS (see lines.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ...binary import facts
from .account import ProcessAccount
from .demux import Demux


@dataclass
class LogStats:
    bodies: int = 0
    unknown: int = 0  # bodies of no known form (skipped)
    ambiguous: int = 0  # bodies that could have been more than one pid's (never attributed)
    lost: int = 0  # bodies given up, and lines left unfinished at the end
    stray: int = 0  # text before any prefix
    prebuilt: int = 0  # bind lines without symbol names (PrebuiltLoader)
    errors: int = 0  # first lines of load errors (tracer/loaderrors reads the messages)

    @property
    def malformed(self) -> int:
        return self.unknown + self.ambiguous + self.lost + self.stray


class DyldLog:
    """Feed bytes of one log (several processes' lines, as dyld appended them)."""

    def __init__(self, first_position: int = 0) -> None:
        self.accounts: dict[int, ProcessAccount] = {}
        self.rows: list[tuple] = []
        self.ts_ns: int | None = 0
        self.first_position = first_position
        self.demux = Demux(self._account, self._commit)

    @property
    def position(self) -> int:
        """Bodies taken so far, counted from ``first_position``: the order of lines across the log."""
        return self.first_position + self.demux.bodies

    def _account(self, pid: int) -> ProcessAccount:
        acc = self.accounts.get(pid)
        if acc is None:
            acc = self.accounts[pid] = ProcessAccount(pid)
        return acc

    def _commit(self, pid: int, body: str) -> None:
        pos = self.position
        self._account(pid).take(body, pos, pos if self.ts_ns is None else self.ts_ns, self.rows)

    def feed(self, data: bytes, ts_ns: int | None) -> list[tuple]:
        """Take more of the log; return the event rows it completed:
        (ts_ns, pid, exe, requester, symbol, provider, kind, resolved). ``ts_ns``
        is the time the data was read; None: the line's position in the log."""
        self.ts_ns = ts_ns
        self.demux.feed(data)
        rows, self.rows = self.rows, []
        return rows

    def close(self, ts_ns: int | None) -> list[tuple]:
        self.ts_ns = ts_ns
        self.demux.close()
        rows, self.rows = self.rows, []
        return rows

    def stats(self) -> LogStats:
        d = self.demux
        return LogStats(bodies=d.bodies, unknown=sum(a.unknown for a in self.accounts.values()),
                        errors=sum(a.errors for a in self.accounts.values()),
                        ambiguous=d.ambiguous, lost=d.lost, stray=d.stray,
                        prebuilt=sum(a.prebuilt for a in self.accounts.values()))

    def searches(self) -> list[dict]:
        """The searches table: each path dyld considered for a library, in its order, and how it ended."""
        rows = []
        for acc in self.accounts.values():
            for n, sr in enumerate(acc.searches):
                cands = sr["rows"] or [{"path": None, "via": None, "outcome": "not found" if sr.get("not_found")
                                        else None, "error": None}]
                found = any(r["outcome"] == "found" for r in cands)
                for k, r in enumerate(cands):
                    # a path the search went past: dyld says nothing of it (not a file, and not in the cache);
                    # in a search that found nothing, every path is one where nothing was
                    rows.append({"pid": acc.pid, "library": sr["library"], "search": n, "step": k, **r,
                                 "outcome": r["outcome"] or ("passed over" if found else "not found"
                                                             if sr.get("not_found") else None)})
        return rows

    def unknown_samples(self) -> list[str]:
        """The first few bodies no form matched, verbatim."""
        return [b for a in self.accounts.values() for b in a.unknown_samples][:5]

    def host_is_arm64(self) -> bool:
        """Whether the log shows an Apple Silicon host: Rosetta's segment, or any arm64 process."""
        return any(p.rosetta or p.cache_arch == "arm64" for a in self.accounts.values() for p in a.programs)

    def processes(self, host_arm64: bool | None = None) -> list[dict]:
        """One row per program a pid ran, in the order they started. ``host_arm64``:
        whether x86_64 programs ran translated (None: as the log itself shows)."""
        if host_arm64 is None:
            host_arm64 = self.host_is_arm64()
        rows = []
        for acc in self.accounts.values():
            for prog in acc.programs:
                arch = program_arch(prog)
                translated = prog.rosetta or (arch == "x86_64" and host_arm64)
                rows.append({"pid": acc.pid, "exe": prog.exe, "arch": arch, "start_ns": prog.first_ts,
                             "translator": "rosetta" if translated else None, "_order": prog.first_line})
        rows.sort(key=lambda r: r.pop("_order"))
        return rows

    def images(self) -> list[dict]:
        """The images table: every image dyld logged (DYLD_PRINT_LIBRARIES or a __TEXT segment); where
        its segments were logged, the load address, and the link-time __TEXT vmaddr and slide when the
        file is on this machine with the UUID dyld logged."""
        rows = []
        for acc in self.accounts.values():
            for prog in acc.programs:
                for m in prog.by_path.values():
                    text = next((s for s in m.segments if s[0] == "__TEXT"), None)
                    if text is None:
                        if m.logged:  # DYLD_PRINT_LIBRARIES without DYLD_PRINT_SEGMENTS: where is not known
                            rows.append({"pid": acc.pid, "path": m.path, "load_base": None, "link_base": None,
                                         "slide": None, "uuid": m.uuid})
                        continue
                    link = None if m.cache else facts.macho_text_vmaddr(m.path, m.uuid, program_arch(prog))
                    load = text[1]
                    rows.append({"pid": acc.pid, "path": m.path, "load_base": load, "link_base": link,
                                 "slide": None if link is None else load - link, "uuid": m.uuid})
        return rows


def event_columns(rows: list[tuple]) -> dict:
    """Event tuples as columns for session.schema.events_table."""
    ts, pid, exe, req, sym, prov, kind, ok = zip(*rows)
    return {"ts_ns": ts, "pid": pid, "exe": exe, "requester": req, "symbol": sym, "provider": prov, "kind": kind,
            "resolved": ok}


def program_arch(prog) -> str | None:
    """The program's architecture: whose shared region its cache dylibs are in, a
    ROSETTA segment (x86_64 code translated), else its file's only slice."""
    if prog.cache_arch:
        return prog.cache_arch
    if prog.rosetta:
        return "x86_64"
    if prog.exe and os.path.isabs(prog.exe):
        return facts.macho_arch(prog.exe, prog.uuid)
    return None
