"""Why dyld loaded a library from where it did, as its own account says (DYLD_PRINT_SEARCHING).

glibc's search is replayed from the files (why_library.py); dyld's is read from what dyld
printed: each search, every path it considered in its order (an LC_RPATH expansion, the
install name, DYLD_LIBRARY_PATH, the cache), which it passed over, and where it ended. A
search that found nothing is the start of a "Library not loaded"; the session's errors say
the rest. Not run on macOS: the lines come from dyld-940 … 1378's format strings.
"""
from __future__ import annotations

import os
from typing import Any

from ..session.reader import frame_rows


def _matches(name: str, library: str | None, paths: list) -> bool:
    leaf = os.path.basename(name)
    return bool(library) and (library == name or os.path.basename(library) == leaf
                              or any(p and (p == name or os.path.basename(p) == leaf) for p in paths))


def dyld_searches(s, library: str, pid: int | None = None) -> dict[str, Any]:
    """Every search of a session for ``library`` (a name as dyld printed it, a leaf or a path)."""
    exes = {int(r["pid"]): r.get("exe") for r in frame_rows(s.processes)}
    groups: dict[tuple, list[dict]] = {}
    for r in frame_rows(s.searches) if len(s.searches) else []:
        if pid is None or int(r["pid"]) == pid:
            groups.setdefault((int(r["pid"]), int(r["search"])), []).append(r)
    out = []
    for (p, _n), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r["step"])
        if not _matches(library, rows[0]["library"], [r["path"] for r in rows]):
            continue
        hit = next((r["path"] for r in rows if r["outcome"] == "found"), None)
        out.append({"pid": p, "exe": exes.get(p), "library": rows[0]["library"], "found": hit,
                    "steps": [{k: r[k] for k in ("path", "via", "outcome", "error")} for r in rows if r["path"]]})
    return {"library": library, "pid": pid, "session": str(s.path), "searches": out}
