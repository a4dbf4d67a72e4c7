"""Parses glibc's LD_DEBUG=files,bindings,reloc output, one process file at a time.

glibc prints no timestamps and does not say why a symbol was bound, so kinds
come from where in ld.so's run the binding line appears:

* before ``transferring control`` / ``calling init`` (start-up, or inside a
  ``relocation processing`` block of a dlopen) → ``eager``;
* afterwards → a PLT slot bound on first call (``lazy``) when the requester has
  a JUMP_SLOT relocation for the symbol and this is its first binding in the
  image, otherwise ``dlsym``; a line without a version for a symbol the requester
  references with one (GLIBC_2.2.5 …) is always ``dlsym``: the PLT slot's lookup
  carries the reference's version, dlsym's none.
* a program with nothing beside it (no DT_NEEDED, no preload: no libc, so neither
  ``initialize program`` nor ``transferring control`` is ever printed) is named by
  its own ``relocation processing`` line, and after a ``(lazy)`` one a binding of
  one of its JUMP_SLOT symbols is a call (ld.so binds no PLT slot inside a lazy
  block). Limitation: a symbol it also references through the GOT (bound in the
  block) is then taken for that call.

A pid's file holds every program image that pid exec'd (glibc appends), and
the lines of children it forked that had not yet exec'd (each line carries
its writer's pid, which is what events use); each
start-up begins with ld.so binding the vDSO's own symbols, clock_gettime
first, which marks a new image (an IFUNC resolver looking up __vdso_time at
run time does not). A translated program (qemu-user through binfmt_misc) is a second ld.so
in the same pid: after the translator's own start-up, the guest's ld.so loads
the program's libraries (`file=libc.so.6 [0];  needed by ./prog [0]`) with no
vDSO line; a `needed by` naming an object this image never loaded marks that
new image (a dlopen's dependencies name the object it just loaded).
LD_DEBUG prints successful bindings only: failed lookups are invisible
here (the bpftrace backend sees them).
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Callable

from ...binary import facts


LINE = re.compile(r"^\s*(\d+):\t(.*)$")
BINDING_LINE = re.compile(  # the common line, matched in one go
    r"^\s*(\d+):\tbinding file (.+?) \[\d+\] to (.+?) \[\d+\]: (?:normal|protected) symbol `(.*?)'(?: \[(.*)\])?$"
)
RELOC = re.compile(r"^relocation processing: (.+?)( \(lazy\))?$")
RUNTIME = ("calling init:", "initialize program:", "transferring control:", "calling fini:")
GEN_LINK_MAP = re.compile(r"^file=(.+?) \[\d+\];  generating link map$")
NEEDED_BY = re.compile(r"^file=.+? \[\d+\];  needed by (.+?) \[\d+\]$")
BASE = re.compile(r"^\s*dynamic: 0x[0-9a-f]+\s+base: (0x[0-9a-f]+)\s+size:")
VDSO = "linux-vdso.so.1"
# the first vDSO symbol ld.so looks up when a program starts (glibc's setup_vdso_pointers);
# later vDSO lookups at run time come from IFUNC resolvers (time, gettimeofday) and start nothing
VDSO_FIRST = frozenset({"__vdso_clock_gettime", "__kernel_clock_gettime"})


_TAG = ":\tbinding file "
# glibc writes a binding line in two write(2)s: "PID:\tbinding file … symbol `SYM'", then " [VERSION]\n"
# or "\n" (_dl_debug_bindings: _dl_debug_printf, then _dl_debug_printf_c). Another process writing to
# the same file between them (a forked child; every process on a shared stderr) puts its whole line
# after the quote, and the first line's end on a line of its own, with no pid.
_MID_PREFIX = re.compile(r"' +\d+:\t")
_CUT = ("cut",)  # _split_text's word for a binding line with more after its symbol than a version
_PREFIXED = re.compile(r"\s*\d+:\t")


class Untangler:
    """Puts back together binding lines another process's line cut in two (see _MID_PREFIX).

    The cut line's first part is held until a line with no pid prefix comes (its end), which is
    then joined to the last part held. Exact when one line is cut at a time; when two are, each
    keeps its symbol and pid, and a version may go to the other."""

    def __init__(self) -> None:
        self.cuts: list[str] = []

    def lines(self, lines: list[str]) -> list[str]:
        out = []
        for raw in lines:
            if self.cuts and not _PREFIXED.match(raw):
                out.append(self.cuts.pop() + raw)
                continue
            m = _MID_PREFIX.search(raw)
            while m:
                self.cuts.append(raw[:m.start() + 1])
                raw = raw[m.start() + 1:]
                m = _MID_PREFIX.search(raw)
            out.append(raw)
        return out

    def rest(self) -> list[str]:
        """The first parts whose end never came (read as lines without a version)."""
        cuts, self.cuts = self.cuts, []
        return cuts


_SPLITS: dict[str, tuple] = {}  # a binding line's text after the pid -> its fields
_SPLITS_MAX = 1 << 16


def _remember(rest: str, raw: str):
    """(requester, provider, symbol, version) of a binding line's text after
    its pid (``rest``), else None; remembered for the next line like it.

    A build runs the same programs over and over (gcc, cc1, as, ld for every
    cgo file), so most lines repeat but for the pid: LdDebugFileParser.feed
    looks the text up first and comes here only for text it has not seen.
    New text is split with plain string searches, four times faster than the
    equivalent regex; anything unexpected is left to the regex.
    """
    fields = _split_text(rest, raw)
    if fields is not None:
        if len(_SPLITS) >= _SPLITS_MAX:  # bounded: a long session's memory stays flat
            _SPLITS.clear()
        _SPLITS[rest] = fields
    return fields


def _split_text(rest: str, raw: str):
    a = rest.find(" [")
    b = rest.find("] to ", a)
    c = rest.find(" [", b + 5)
    d = rest.find(" symbol `", c)
    e = rest.find("'", d + 9)
    if min(a, b, c, d, e) < 0:
        m = BINDING_LINE.match(raw)
        return m.groups()[1:] if m else None
    if len(rest) > e + 1 and rest[e + 1:e + 3] != " [" and _MID_PREFIX.match(rest, e):
        return _CUT  # another process's line after the quote (Untangler)
    ver = rest[e + 3:-1] if len(rest) > e + 3 and rest[-1] == "]" else None
    return rest[:a], rest[b + 5:c], rest[d + 9:e], ver


@dataclass
class ImageState:
    """One program image within a pid's file."""

    pid: int
    name: str | None = None  # argv[0] as ld.so prints the main program
    runtime: bool = False
    bound: set = field(default_factory=set)  # (requester, symbol) bound at run time
    bases: dict[str, int] = field(default_factory=dict)  # soname -> l_addr
    paths: set = field(default_factory=set)
    held: list = field(default_factory=list)  # bindings seen before the program's name
    loaded: set = field(default_factory=set)  # names from this image's file= lines
    alone: bool = False  # relocated lazily with nothing loaded beside it: no libc, no runtime lines
    relocating: str | None = None  # the object of the last "relocation processing" line, as ld.so names it


@dataclass
class LdDebugFileParser:
    """Stateful parser for one LD_DEBUG_OUTPUT.<pid> file, fed in pieces."""

    pid: int
    search_path: str = os.defpath
    jump_slots: Callable[[str], frozenset | None] = facts.jump_slot_symbols
    versioned: Callable[[str], frozenset | None] = facts.versioned_references
    images: list[ImageState] = field(default_factory=list)
    other_pids: set = field(default_factory=set)  # forked children writing here
    _pending_soname: str | None = None
    _untangle: Untangler = field(default_factory=Untangler)
    _last_ts: int = 0
    _which: dict[str, str] = field(default_factory=dict)

    @property
    def current(self) -> ImageState:
        if not self.images:
            self.images.append(ImageState(self.pid))
        return self.images[-1]

    def resolve_main(self, name: str) -> str:
        """ld.so names the main program by argv[0]; find the file it ran."""
        if os.sep in name:
            return name
        if name not in self._which:
            self._which[name] = shutil.which(name, path=self.search_path) or name
        return self._which[name]

    def _name(self, obj: str, img: ImageState) -> str:
        if img.name is not None and obj == img.name:
            return self.resolve_main(obj)
        return obj

    def feed(self, lines: list[str], ts_ns: int, out: list[tuple]) -> None:
        """Append one tuple per binding to ``out``:
        (ts_ns, pid, exe, requester, symbol, version, provider, kind)."""
        self._last_ts = ts_ns
        if self._untangle.cuts:  # a cut line's end may come now
            lines = self._untangle.lines(lines)
        k = self._feed(lines, ts_ns, out)
        if k >= 0:  # a cut line: the rest of the piece taken apart (the Untangler splits at the
            # quote every line _split_text calls cut, so none is left) and read again
            self._feed(self._untangle.lines(lines[k:]), ts_ns, out)

    def _feed(self, lines: list[str], ts_ns: int, out: list[tuple]) -> int:
        """Read lines up to one another process cut in two (its index: feed untangles from there), else -1."""
        images = self.images
        append = out.append
        splits, tag, skip = _SPLITS, _TAG, len(_TAG)
        pid_s_seen, line_pid = None, self.pid
        name_seen, exe_seen = None, None
        for raw in lines:
            # a binding line, split inline (this loop runs once per line of a whole build)
            i = raw.find(tag)
            fields = None
            if i >= 0:
                rest = raw[i + skip:]
                fields = splits.get(rest)
                if fields is None:
                    fields = _remember(rest, raw)
                if fields is _CUT:
                    return lines.index(raw)  # the first such line: an equal one before it would have been
            if fields is not None:
                req, prov, sym, ver = fields
                raw_req = req  # as ld.so names it (the main program by argv[0]), like "relocation processing"
                pid_s = raw[:i]
                # the line's own pid: a child forked without exec writes into
                # its parent's file (the descriptor is inherited)
                if pid_s != pid_s_seen:
                    pid_s_seen, line_pid = pid_s, int(pid_s)
                    if line_pid != self.pid:
                        self.other_pids.add(line_pid)
                if req == VDSO and prov == VDSO and sym in VDSO_FIRST and (not images or images[-1].runtime):
                    images.append(ImageState(self.pid))  # a new exec starts with vDSO set-up
                img = images[-1] if images else self.current
                name = img.name
                if name is None:
                    exe = None
                else:
                    if name is not name_seen:
                        name_seen, exe_seen = name, self.resolve_main(name)
                    exe = exe_seen
                    if req == name:
                        req = exe
                    if prov == name:
                        prov = exe
                runtime = img.runtime
                if not runtime and img.relocating not in (None, raw_req) and raw_req != VDSO:
                    # relocation binds the references of the object it processes: another object's binding
                    # in its block is a call (an IFUNC resolver's, or an early initialiser's through a PLT slot)
                    runtime = True
                if not runtime and img.alone and exe is not None and req == exe:
                    # a PLT slot is never bound inside a lazy block: this one was called
                    slots = self.jump_slots(req) if os.sep in req else None
                    runtime = slots is not None and sym in slots
                if not runtime:
                    kind = "eager"
                else:
                    key = (req, sym)
                    refs = self.versioned(req) if ver is None and os.sep in req else None
                    if refs and sym in refs:
                        # the object's own reference names a version, which its PLT slot's lookup carries;
                        # a line without one is dlsym's (and leaves the slot's first call still to come)
                        kind = "dlsym"
                    else:
                        slots = self.jump_slots(req) if os.sep in req else None
                        first = key not in img.bound
                        img.bound.add(key)
                        kind = "lazy" if first and (slots is None or sym in slots) else "dlsym"
                if exe is None:
                    img.held.append((ts_ns, line_pid, None, req, sym, ver, prov, kind))
                else:
                    append((ts_ns, line_pid, exe, req, sym, ver, prov, kind))
                continue
            m = LINE.match(raw)
            if not m:
                continue
            msg = m.group(2)
            if msg.startswith("relocation processing: "):
                r = RELOC.match(msg)
                img = self.current
                if r:
                    img.paths.add(r.group(1))
                    img.relocating = r.group(1)
                if r and img.name is None and not img.runtime and (os.sep not in r.group(1) or not img.loaded):
                    # the main program is relocated under its argv[0], libraries by path; with
                    # nothing loaded beside it (no DT_NEEDED, no preload) the first block is its own
                    if not img.loaded and r.group(2):
                        img.alone = True
                    self._set_name(img, r.group(1), out)
                img.runtime = False
            elif msg.startswith(RUNTIME):
                img = self.current
                if msg.startswith(("initialize program:", "transferring control:")) and img.name is None:
                    self._set_name(img, msg.split(":", 1)[1].strip(), out)
                img.runtime = True
            elif msg.startswith("file="):
                g = GEN_LINK_MAP.match(msg)
                self._pending_soname = g.group(1) if g else None
                n = NEEDED_BY.match(msg)
                if n and self.current.runtime and n.group(1) not in self.current.loaded \
                        and os.path.basename(n.group(1)) not in self.current.loaded:
                    self.images.append(ImageState(self.pid))  # a guest ld.so starting (translation)
                if n and self.current.name is None and not self.current.runtime:
                    self._set_name(self.current, n.group(1), out)
                self.current.loaded.add(msg[5:msg.find(" [")])
            elif self._pending_soname and "base:" in msg:
                b = BASE.match(msg)
                if b:
                    self.current.bases[self._pending_soname] = int(b.group(1), 16)
                self._pending_soname = None
        return -1

    def _set_name(self, img: ImageState, name: str, out: list[tuple]) -> None:
        img.name = name
        if img.held:
            exe = self.resolve_main(name)
            out.extend((r[0], r[1], exe, self._name(r[3], img), r[4], r[5], self._name(r[6], img), r[7])
                       for r in img.held)
            img.held.clear()

    def flush(self, out: list[tuple]) -> None:
        """At the end: release bindings of images whose name never appeared."""
        cut = self._untangle.rest()
        if cut:
            self.feed(cut, self._last_ts, out)
        for img in self.images:
            out.extend(img.held)
            img.held.clear()

    def image_rows(self) -> list[tuple[int, str, int]]:
        """(pid, path, l_addr) for libraries whose load bias ld.so printed."""
        rows = []
        for img in self.images:
            by_base = {os.path.basename(p): p for p in img.paths}
            for soname, bias in img.bases.items():
                rows.append((self.pid, by_base.get(os.path.basename(soname), soname), bias))
        return rows

    def exes(self) -> list[str | None]:
        return [self.resolve_main(i.name) if i.name else None for i in self.images]
