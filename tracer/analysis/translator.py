"""Which events are the translator's own, not the translated program's.

A program run by a binfmt_misc translator (qemu-user, Rosetta for Linux) is,
in the same pid, first the translator's own image — a host program with its
own dynamic linker binding libgnutls, libnettle and a few thousand other
symbols — then the guest program. Those host bindings are not what the user
asked about: a translated `hello` made 114 bindings, qemu 3,700 around them.
So reports, compare and plots show the guest's by default and the
translator's share apart (``--include-translator`` mixes them again).

An event is the translator's when its program (``exe``) is the translator
itself: a file whose real name is a translator's name (``qemu-aarch64``),
or a binfmt_misc interpreter (``/usr/libexec/qemu-binfmt/aarch64-binfmt-P``).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Iterable

class TranslatorFilter:
    """``filter(exe)``: is this program a translator? Cached per path."""

    def __init__(self, names: Iterable[str], interpreters: Iterable[str] = ()):
        self.names = frozenset(n for n in names if n)
        self.interpreters = frozenset(os.path.basename(i) for i in interpreters if i)
        self._cached = functools.lru_cache(maxsize=4096)(self._decide)

    def __bool__(self) -> bool:
        return bool(self.names or self.interpreters)

    def __call__(self, exe: Any) -> bool:
        return exe is not None and self._cached(str(exe))

    def _decide(self, exe: str) -> bool:
        base = os.path.basename(exe)
        if base in self.interpreters or base in self.names:
            return True
        try:
            return os.path.basename(os.path.realpath(exe)) in self.names
        except OSError:
            return False


def from_session(meta: dict[str, Any], processes: list[dict]) -> TranslatorFilter:
    """The filter for a saved session: the translators its processes table names
    (capture/translated/translation.annotate fills ``translator``) and the
    interpreter an ``--arch`` run used."""
    translation = meta.get("translation") or {}
    names = {p["translator"] for p in processes if p.get("translator") and p["translator"] != "unknown"}
    names |= {translation.get("translator")} if translation.get("translator") else set()
    return TranslatorFilter(names, [translation.get("interpreter")] if translation.get("interpreter") else [])


def guest_images(processes: list[dict], translators: TranslatorFilter) -> list[dict]:
    """One row per translated program. In a pid, the translator's own image and the
    guest program's that follows it are one program (the guest's row stands for it);
    a translator image alone is a static guest, which never shows a dynamic linker
    of its own (the arm64 Go toolchain); a guest image alone is one whose exec was
    seen directly (bpftrace names the file exec'd)."""
    out: list[dict] = []
    pending: dict[int, int] = {}  # pid -> index in out of its translator image, awaiting its guest
    for p in processes:
        if not p.get("translator"):
            pending.pop(p.get("pid"), None)
            continue
        pid = p.get("pid")
        if translators(p.get("exe")):
            pending[pid] = len(out)
            out.append(p)
        elif pid in pending:
            out[pending.pop(pid)] = p
        else:
            out.append(p)
    return out


def guest_events(session, include_translator: bool = False):
    """A loaded session's events without the translator's own (all of them with
    ``include_translator``), as the report counts them."""
    ev = session.events
    if include_translator or not len(ev):
        return ev
    from ..session.reader import frame_rows

    translators = from_session(session.meta, frame_rows(session.processes))
    if not translators:
        return ev
    theirs = ev["exe"].map(lambda e: translators(e)).astype(bool)  # categorical: decided once per program
    return ev[~theirs.to_numpy()]


# backends whose probes sit on the host's dynamic linker: under binfmt_misc translation, what they
# record in a translated program image is its translator's own lookups (the guest's ld.so is code
# the translator runs, not the host's); an --arch run's ld-debug reads the guest's own account
HOST_ONLY = ("bpf", "bpftrace", "dtrace")


def replay_programs(meta: dict[str, Any], processes: list[dict]) -> dict[tuple[Any, Any], str]:
    """(pid, exe) of a translated program image whose lookups a host-only backend recorded -> the
    program that made them: its translator, by the interpreter binfmt_misc ran (the image's argv[0],
    e.g. /usr/libexec/qemu-binfmt/aarch64-binfmt-P -> qemu-aarch64). Replayed in the guest's scope,
    the translator's lookups would all disagree."""
    if meta.get("backend") not in HOST_ONLY or (meta.get("translation") or {}).get("interpreter"):
        return {}
    out = {}
    for p in processes:
        argv = p.get("argv")
        if p.get("translator") and argv is not None and len(argv) and str(argv[0]).startswith("/") \
                and os.path.basename(str(p.get("exe"))) != os.path.basename(str(argv[0])):
            out[(p.get("pid"), p.get("exe"))] = str(argv[0])
    return out


def as_translator(programs: dict[tuple[Any, Any], str], pid: Any, exe: Any, *names: Any) -> tuple:
    """(the program whose scope replays a lookup of (pid, exe), then ``names`` with the guest's path
    read as that program: the translator's ld.so names its main program by the file exec'd)."""
    program = programs.get((pid, exe))
    if program is None:
        return (exe, *names)
    return (program, *(program if n == exe else n for n in names))

