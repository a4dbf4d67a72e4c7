"""What dyld's lines say about each process: its programs, images, bindings and dlsym calls.

One :class:`ProcessAccount` per pid takes that pid's bodies in order (the demux
has already said whose each body is) and keeps what later lines need: the
images loaded (dyld names them by leaf in bind lines, by full path in
DYLD_PRINT_LIBRARIES), their segments (DYLD_PRINT_SEGMENTS: runtime addresses),
each image's bind counters, the dlopen handles and the dlsym calls still waiting
for their result. It also answers the demux's question — could this body be
this process's next one? — without changing anything, so a wrong guess can be
thrown away.

dyld4 binds everything when an image loads (macOS 12+): a bind target is an
``eager`` event; a dlsym is a ``dlsym`` event whose provider is the image
holding the address it returned (or, with no segments logged, the image behind
the handle dlopen gave). dyld does not print who called dlsym: its requester is
null. Symbols are Mach-O names (C's leading underscore), as bind lines print
them; a dlsym argument gets the underscore dyld adds when it looks it up.
Not run on macOS (see lines.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import lines as L

BIND_START = re.compile(r"^<([^<>/]+)/bind#(\d+)[>(]")
BIND_TARGET = re.compile(r"^<[^<>/]+/bind#\d+[^>]*> -> 0x[0-9a-f]+ [<(]([^/<>()]+|<none>)/")
NOT_SEGMENTS = ("Mapping", "Kernel", "Using", "dlopen", "dlsym", "fixup", "      dlopen", "     dlsym")


@dataclass
class Mapped:
    """One image in one program: where dyld put it."""

    path: str
    uuid: str | None = None
    segments: list = field(default_factory=list)  # (name, start, end), __PAGEZERO left out
    cache: bool = False  # in the dyld shared cache (no file on disk to read a link-time address from)
    logged: bool = False  # named by a DYLD_PRINT_LIBRARIES line (its Mapping line comes first)


@dataclass
class Program:
    """One program image a pid ran (exec starts a new one in the same pid)."""

    exe: str | None = None
    uuid: str | None = None
    first_line: int = 0  # position in the log: the start order of programs across pids
    first_ts: int | None = None  # when its first line was read
    kernel_mapped: bool = False
    rosetta: bool = False  # a ROSETTA segment: the process runs translated
    cache_arch: str | None = None  # whose shared region the cache dylibs sit in
    by_path: dict = field(default_factory=dict)  # path -> Mapped
    by_leaf: dict = field(default_factory=dict)  # leaf -> path (the latest loaded with that leaf)
    counters: dict = field(default_factory=dict)  # leaf -> the bind# numbers printed for it
    handles: dict = field(default_factory=dict)  # dlopen handle -> path
    opening: list = field(default_factory=list)  # dlopen paths waiting for their result
    asking: list = field(default_factory=list)  # (handle, name) dlsym calls waiting for their result
    mapping: str | None = None  # the image whose segments are being printed
    awaiting: str | None = None  # mapped, its DYLD_PRINT_LIBRARIES line not printed yet
    loose: list = field(default_factory=list)  # segments whose image is unknown (after lost lines)


class _Delta:
    """What the demux's pending lines for a pid (its current guess) add to the
    pid's account, for the checks only: the account itself never changes on a guess."""

    def __init__(self, acc: ProcessAccount, pending: list[str]):
        prog = acc.programs[-1] if acc.programs else None
        self.parsed = [L.parse(b) for b in pending]
        self.last = self.parsed[-1] if self.parsed else acc.last
        self.order_unknown = acc.order_unknown and not self.parsed
        self.awaiting_unknown = acc.awaiting_unknown and not any(q[0] in (L.MAP, L.LIB) for q in self.parsed)
        self.libraries = acc.libraries_logged or any(q[0] == L.LIB for q in self.parsed)
        self.segments = acc.segments_logged or any(q[0] == L.SEG for q in self.parsed)
        self.awaiting = prog.awaiting if prog else None
        self.asking = [n for _h, n in prog.asking] if prog else []
        self.opening = list(prog.opening) if prog else []
        self.leaves: set = set()
        self.counters: dict = {}
        self.ranges: list = []
        self.seg_prev = None  # the start of the last segment of the mapping being printed
        for q in self.parsed:
            k = q[0]
            if k == L.LIB:
                self.leaves.add(L.leaf(q[2]))
                self.awaiting = None
            elif k == L.MAP:
                self.awaiting = None if q[1] == "Kernel mapped" else q[2]
                self.seg_prev = None
            elif k == L.SEG and q[1] != "ROSETTA":
                self.seg_prev = q[3]
                if q[2] != "...":
                    self.ranges.append((q[3], q[4]))
            elif k in (L.BINDING, L.MISSING_WEAK):
                self.counters.setdefault(q[1], set()).add(q[2])
            elif k == L.SYM:
                self.asking.append(q[2])
            elif k == L.FOUND and q[1] in self.asking:
                self.asking.remove(q[1])
            elif k == L.OPEN:
                self.opening.append(q[1])
            elif k == L.OPENED:
                x = next((x for x in reversed(self.opening) if L.leaf(x) == q[1]), None)
                if x is not None:
                    self.opening.remove(x)
        if self.seg_prev is None and not any(q[0] == L.MAP for q in self.parsed) and prog and prog.mapping:
            m = prog.by_path.get(prog.mapping)
            self.seg_prev = m.segments[-1][1] if m and m.segments else None


class ProcessAccount:
    """Everything one pid's lines said, in order."""

    def __init__(self, pid: int):
        self.pid = pid
        self.programs: list[Program] = []
        self.last: tuple | None = None  # the previous body, parsed
        self.unknown = 0  # bodies no form matches
        self.unknown_samples: list[str] = []  # the first few, verbatim
        self.errors = 0  # first lines of load errors (the messages are read by tracer/loaderrors)
        self.searches: list[dict] = []  # DYLD_PRINT_SEARCHING: {library, rows: [{path, via, outcome, error}]}
        self.search: dict | None = None  # the search whose lines are being printed
        # what lost lines (given up by the demux) leave unknown; each relaxes the checks that need it
        self.order_unknown = False  # the previous line: until one more line is taken
        self.awaiting_unknown = False  # which mapped image awaits its library line: until a Mapping or library line
        self.lost = False  # lines lost without candidates: images, counters and calls are unknown for good
        self.prebuilt = 0  # bind lines without names (PrebuiltLoader)
        self.libraries_logged = False
        self.segments_logged = False
        self._ts: int | None = None  # the time of the body being taken
        self._deltas: dict = {}  # pending lines -> _Delta, while the account does not change

    def lost_lines(self, candidates: list[str] | None = None) -> None:
        """Some of this pid's lines were given up here. With ``candidates`` (every line
        the demux's guesses could have given it), what they would add to the images,
        bind counters and calls is added (more is harmless: checks only ask whether
        something is there); without, those become unknown for good. Either way the
        previous line and the image awaiting its library line are unknown for a while,
        and segments go nowhere until the next Mapping line."""
        self.order_unknown = self.awaiting_unknown = True
        self.last = None
        self._deltas.clear()
        prog = self.current
        prog.mapping = None
        if candidates is None:
            self.lost = True
            return
        for q in map(L.parse, candidates):
            if q[0] == L.LIB:
                prog.by_leaf.setdefault(L.leaf(q[2]), q[2])
            elif q[0] in (L.BINDING, L.MISSING_WEAK):
                prog.counters.setdefault(q[1], set()).add(q[2])
            elif q[0] == L.SEG and q[2] != "...":
                prog.loose.append((q[3], q[4]))
            elif q[0] == L.SYM:
                prog.asking.append((None, q[2]))
            elif q[0] == L.OPEN:
                prog.opening.append(q[1])

    # -- the demux's question ------------------------------------------------------------

    def accepts(self, body: str, pending: list[str]) -> bool:
        """Could ``body`` be this pid's next whole line, after ``pending`` (lines the
        demux has given it in its current guess)? Every test is an order dyld itself
        keeps, so it is never false for a line that really is this pid's next:

        * an image's Mapping line (or ``Using mapping in dyld cache``), its segments and
          its DYLD_PRINT_LIBRARIES line come one right after the other; the main
          program's ``Kernel mapped`` line follows its library line; segments follow
          their Mapping line, each at a higher address than the one before;
        * an image's bind lines follow its library line and name images it loaded;
          its bind targets count from 0 (the weak-def overrides on a counter of their
          own: bind#N needs a bind#N-1 before it); a bound address lies in an image the
          process mapped; a fixup names a target already printed and a location in
          its own image;
        * a dlsym or dlopen result follows its call.
        """
        if not L.viable(body, complete=True):
            return False
        return self._fits(L.parse(body), self._delta(pending))

    def start_ok(self, text: str, pending: list[str]) -> bool:
        """Could a line of this pid begin with ``text`` (the part written so far)?
        The checks of ``accepts`` that the text written so far already decides."""
        if not L.viable(text):
            return False
        c = text[0]
        if c == "<":
            m = BIND_START.match(text)
            d = self._delta(pending)
            if m is not None:
                if not self._bind_fits(m.group(1), int(m.group(2)), d):
                    return False
                t = BIND_TARGET.match(text)
                return t is None or not d.libraries or self._loaded(t.group(1), d)
            if len(text) > 39 and not d.awaiting_unknown and d.awaiting:  # "<UUID> path": the path is known
                path = text[39:] if text[37:39] == "> " else text[text.find("> ") + 2:] if "> " in text else ""
                return d.awaiting.startswith(path)
            return True
        if c == "K" and text.startswith("Kernel mapped "):
            d = self._delta(pending)
            if d.order_unknown or not d.libraries:
                return True
            return d.last is not None and d.last[0] == L.LIB and d.last[2].startswith(text[14:])
        if c == " " and text.startswith('     dlsym("'):
            if self.lost:
                return True
            name = text[12:]
            end = name.find('")')
            asking = self._delta(pending).asking
            if end >= 0:
                return name[:end] in asking
            return any(n.startswith(name) for n in asking)
        if " (" in text and (c == "_" or c == " " or c.isalpha()) and not text.startswith(NOT_SEGMENTS):
            d = self._delta(pending)  # a segment line, by the time its name is written
            return d.order_unknown or (d.last is not None and d.last[0] in (L.MAP, L.SEG))
        return True

    def _delta(self, pending) -> _Delta:
        key = tuple(pending)
        d = self._deltas.get(key)
        if d is None:
            if len(self._deltas) > 256:
                self._deltas.clear()
            d = self._deltas[key] = _Delta(self, key)
        return d

    def _fits(self, p: tuple, d: _Delta) -> bool:
        kind = p[0]
        if kind == L.LIB:
            return d.awaiting_unknown or not d.awaiting or p[2] == d.awaiting
        if kind == L.MAP:
            if not d.libraries:
                return True
            if p[1] == "Kernel mapped":
                return d.order_unknown or (d.last is not None and d.last[0] == L.LIB and d.last[2] == p[2])
            return d.awaiting_unknown or not d.awaiting
        if kind == L.SEG:
            if d.order_unknown:
                return True
            if d.last is None or d.last[0] not in (L.MAP, L.SEG):
                return False
            return p[1] == "ROSETTA" or d.seg_prev is None or p[3] > d.seg_prev
        if kind in (L.BINDING, L.MISSING_WEAK):
            if not self._bind_fits(p[1], p[2], d):
                return False
            if kind == L.MISSING_WEAK:
                return True
            target, addr = p[4], p[3]
            if target is not None and d.libraries and not self._loaded(target, d):
                return False
            if target is not None and addr and d.segments and not self.lost:
                return self._mapped(addr, d)
            return True
        if kind == L.FIX:
            if d.libraries and not self._loaded(p[1], d):
                return False
            seen = self.current.counters.get(p[1], ()) if self.programs else ()
            return self.lost or p[2] in seen or p[2] in d.counters.get(p[1], ())
        if kind == L.FOUND:
            return self.lost or p[1] in d.asking
        if kind == L.OPENED:
            return self.lost or any(L.leaf(x) == p[1] for x in d.opening)
        return True

    def _bind_fits(self, leaf: str, n: int, d: _Delta) -> bool:
        if d.libraries and not self._loaded(leaf, d):
            return False
        if n == 0 or self.lost:
            return True
        seen = self.current.counters.get(leaf, ()) if self.programs else ()
        return n - 1 in seen or n - 1 in d.counters.get(leaf, ())

    def _loaded(self, leaf: str, d: _Delta) -> bool:
        return self.lost or leaf == "<none>" or leaf in d.leaves or bool(self.programs and leaf in self.current.by_leaf)

    def _mapped(self, addr: int, d: _Delta) -> bool:
        if any(s <= addr < e for s, e in d.ranges):
            return True
        if self.programs and any(s <= addr < e for s, e in self.current.loose):
            return True
        return self.image_at(addr) is not None

    # -- taking a body --------------------------------------------------------------------

    @property
    def current(self) -> Program:
        if not self.programs:
            self.programs.append(Program())
        return self.programs[-1]

    def take(self, body: str, position: int, ts_ns: int, out: list) -> None:
        """Account one body; append one event tuple per binding to ``out``:
        (ts_ns, pid, exe, requester, symbol, provider, kind, resolved)."""
        p = L.parse(body)
        kind = p[0]
        self._ts = ts_ns
        self._deltas.clear()
        prog = self.current
        if prog.first_ts is None:
            prog.first_ts = ts_ns
        if kind == L.BINDING:
            leaf, n, target, symbol = p[1], p[2], p[4], p[5]
            prog.counters.setdefault(leaf, set()).add(n)
            if symbol is None:
                self.prebuilt += 1
            out.append((ts_ns, self.pid, prog.exe, prog.by_leaf.get(leaf, leaf), symbol,
                        None if target is None else prog.by_leaf.get(target, target), "eager", True))
        elif kind == L.MISSING_WEAK:
            prog.counters.setdefault(p[1], set()).add(p[2])
            out.append((ts_ns, self.pid, prog.exe, prog.by_leaf.get(p[1], p[1]), p[3], None, "eager", False))
        elif kind == L.LIB:
            self._library(p[1], p[2], position)
        elif kind == L.MAP:
            self._mapping(p[1], p[2], position)
        elif kind == L.SEG:
            self._segment(p[1], p[2], p[3], p[4])
        elif kind == L.OPEN:
            prog.opening.append(p[1])
        elif kind == L.OPENED:
            path = next((x for x in reversed(prog.opening) if L.leaf(x) == p[1]), None)
            if path is not None:
                prog.opening.remove(path)
            if p[2] is not None:
                prog.handles[p[2]] = prog.by_leaf.get(p[1]) or path or p[1]
        elif kind == L.SYM:
            prog.asking.append((p[1], p[2]))
        elif kind == L.FOUND:
            i = next((i for i in range(len(prog.asking) - 1, -1, -1) if prog.asking[i][1] == p[1]), None)
            handle = prog.asking.pop(i)[0] if i is not None else None
            addr = p[2]
            provider = (self.image_at(addr) or prog.handles.get(handle)) if addr is not None else None
            out.append((ts_ns, self.pid, prog.exe, None, "_" + p[1], provider, "dlsym", addr is not None))
        elif kind == L.SEARCH:
            self.search = {"library": p[1], "rows": [], "rpath": None}
            self.searches.append(self.search)
        elif kind == L.RPATH and self.search is not None:
            self.search["rpath"] = f"LC_RPATH '{p[1]}' from {p[2]}"
        elif kind == L.CANDIDATE and self.search is not None:
            how = p[1] + (f" ({self.search['rpath']})" if self.search["rpath"] and "@" in p[1] else "")
            self.search["rows"].append({"path": p[2], "via": how, "outcome": None, "error": None})
        elif kind == L.SEARCHED and self.search is not None:
            rows = self.search["rows"]
            hit = next((r for r in reversed(rows) if r["path"] == p[1]), None) if p[1] else None
            if hit is None and p[1]:  # found without a candidate line (an image already loaded)
                hit = {"path": p[1], "via": None, "outcome": None, "error": None}
                rows.append(hit)
            if hit is not None:
                hit["outcome"], hit["error"] = p[2], p[3]
            else:
                self.search["not_found"] = True
            if p[2] != "error":
                self.search = None
        elif kind == L.UNKNOWN:
            self.unknown += 1
            if len(self.unknown_samples) < 5:
                self.unknown_samples.append(body)
        elif kind == L.ERROR:
            self.errors += 1
        self.last = p
        self.order_unknown = False
        if kind in (L.MAP, L.LIB):
            self.awaiting_unknown = False

    def _library(self, uuid: str | None, path: str, position: int) -> None:
        self.libraries_logged = True
        prog = self.current
        if path in prog.by_path and prog.by_path[path].logged:
            # dyld never loads one path twice in a program: an exec in the same pid
            # (a log without DYLD_PRINT_SEGMENTS, which would have said "Kernel mapped")
            moved = self._take_back_main(prog)
            prog = self._new_program(position)
            if moved is not None:
                self._library(moved.uuid, moved.path, position)
        if prog.exe is None and not prog.opening:  # an image a pending dlopen loads is never the program
            prog.exe, prog.uuid, prog.first_line = path, uuid, position
        m = prog.by_path.get(path)
        if m is None:
            m = prog.by_path[path] = Mapped(path, uuid)
        m.uuid, m.logged = uuid, True
        prog.by_leaf[L.leaf(path)] = path
        prog.awaiting = None

    def _take_back_main(self, prog: Program) -> Mapped | None:
        """A new program's main image was just logged into the old one: take it out."""
        if self.last is None or self.last[0] != L.LIB:
            return None
        path = self.last[2]
        if path == prog.exe or path not in prog.by_path:
            return None
        m = prog.by_path.pop(path)
        if prog.by_leaf.get(L.leaf(path)) == path:
            del prog.by_leaf[L.leaf(path)]
        return m

    def _new_program(self, position: int) -> Program:
        prog = Program(first_line=position, first_ts=self._ts)
        self.programs.append(prog)
        return prog

    def _mapping(self, how: str, path: str, position: int) -> None:
        prog = self.current
        if how == "Kernel mapped":
            if prog.kernel_mapped:  # an exec: this program's main image was logged just before
                moved = self._take_back_main(prog)
                prog = self._new_program(position)
                if moved is not None:
                    self._library(moved.uuid, moved.path, position)
            prog.kernel_mapped = True
            if prog.exe is None:
                prog.exe, prog.first_line = path, position
        else:
            prog.awaiting = path
        m = prog.by_path.setdefault(path, Mapped(path))
        m.cache = how.startswith("Using")
        m.segments = []
        prog.mapping = path

    def _segment(self, name: str, prot: str, start: int, end: int) -> None:
        self.segments_logged = True
        prog = self.current
        if name == "ROSETTA":
            prog.rosetta = True
            return
        m = prog.by_path.get(prog.mapping) if prog.mapping else None
        if m is None:  # its Mapping line was lost: the range still counts for the address checks
            if prot != "...":
                prog.loose.append((start, end))
            return
        if prot != "...":  # __PAGEZERO: no address of the process's is in it (dyld logs it up to the header)
            m.segments.append((name, start, end))
        if m.cache and prog.cache_arch is None:
            prog.cache_arch = L.region_arch(start)

    def image_at(self, addr: int) -> str | None:
        """The image of the current program whose segments hold ``addr``."""
        for m in self.current.by_path.values():
            for _name, start, end in m.segments:
                if start <= addr < end:
                    return m.path
        return None
