"""Whose line is it: one DYLD_PRINT_TO_FILE log that several processes append to, split by pid.

How dyld writes (dyld-1378 DyldRuntimeState.cpp ``RuntimeState::vlog``; libplatform-375
src/simple/string_io.c): the ``dyld[pid]: `` prefix is one write(), then the body goes
through ``_simple_vdprintf``, whose buffer is 32 bytes in the build dyld links
(MYBUFSIZE: 256 only with DEBUG), so a body is written in 32-byte pieces and a last
piece of 1–32 bytes ending in its newline. The file is opened O_APPEND, so each
write lands whole, but the writes of processes logging at the same moment
interleave: ``dyld[11]: dyld[12]: <cc/bind#`` ... and the rest of both bodies later,
in any order. Within a process dyld holds a lock around the prefix and the body, so a
pid never starts a line before its previous one is complete. Not run on macOS.

So the stream is cut into writes exactly (a piece is 32 bytes without a newline,
or up to and including a newline within 32 bytes, or a short body without one
that a prefix follows), and every piece goes to one of the pids whose line is
unfinished. When only one is unfinished there is nothing to decide. When several
are, every assignment the pids' own accounts accept is kept (account.accepts:
orders dyld keeps — a bind line names an image its process loaded, a dlsym result
follows its call ...); guesses that end up the same are merged, and one that a
pid's next prefix contradicts (its line would still be unfinished) is dropped.
A body is handed over when a single guess is left, or, when the stream reaches
a point where no line is unfinished, if every guess left agrees on it. What the
guesses disagree on is counted as ``ambiguous`` and never attributed: a body is
never given to the wrong pid on a guess.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Callable

PREFIX = re.compile(rb"dyld\[(\d+)\]: ")
PIECE = 32  # _simple_vdprintf's buffer: a body reaches the file in writes of this size
MAX_GUESSES = 64  # beyond this the unfinished lines are given up (counted) until none is unfinished
COLLAPSE = 16  # more guesses than this: settle the finished lines (_agreed), keep guessing the unfinished
MAX_WINDOW = 16  # finished lines left undecided this long are settled (those the guesses disagree on: ambiguous)


class Demux:
    """Feed it bytes as they arrive; it calls ``commit(pid, body)`` for every body
    whose pid is certain, in each pid's own order.

    ``account(pid)`` returns the pid's account (its ``accepts``, ``start_ok`` and
    ``tainted`` are consulted; it is never changed here). Counters: ``ambiguous``
    (bodies two guesses gave to different pids), ``lost`` (bodies given up when
    the guesses ran out or contradicted each other), ``stray`` (text with no
    prefix before it: a log that starts mid-line)."""

    def __init__(self, account: Callable[[int], object], commit: Callable[[int, str], None]):
        self.account = account
        self.commit = commit
        self.buf = b""
        self.open = 0  # prefixes minus finished bodies: every guess agrees on it
        self.guesses: list[tuple[dict, dict]] = [({}, {})]  # (pid -> unfinished bytes, pid -> done bodies)
        self.window = 0  # bodies finished since the last point where guesses were settled
        self.resync = False  # guesses given up: drop pieces until no line is unfinished
        self.resync_pids: set[int] = set()
        self.ambiguous = 0
        self.lost = 0
        self.stray = 0
        self.bodies = 0

    # -- cutting the stream into writes --------------------------------------------------

    def feed(self, data: bytes, final: bool = False) -> None:
        buf = self.buf + data if self.buf else data
        i, n = 0, len(buf)
        while i < n:
            if buf.startswith(b"dyld[", i):
                m = PREFIX.match(buf, i)
                if m is None:
                    if n - i < 24 and not final:
                        break  # the rest of the prefix has not been read yet
                else:
                    pid = int(m.group(1))
                    i = m.end()
                    if self.open == 0 and not self.resync and len(self.guesses) == 1:
                        j = buf.find(b"\n", i)
                        if j >= 0 and buf.find(b"dyld[", i, j) < 0:  # the usual case: one line, whole
                            self.bodies += 1
                            self.commit(pid, buf[i:j].decode("utf-8", "replace"))
                            i = j + 1
                            continue
                    self._prefix(pid)
                    continue
            j = buf.find(b"\n", i, i + PIECE)
            if j >= 0:
                k = buf.find(b"dyld[", i + 1, j)
                if k > 0 and PREFIX.match(buf, k):  # a body printed without a newline ("dlerror()"), then a prefix
                    self._piece(buf[i:k], True)
                    i = k
                    continue
                self._piece(buf[i:j + 1], True)
                i = j + 1
                continue
            k = buf.find(b"dyld[", i + 1, i + PIECE + 4)
            if 0 < k < i + PIECE:  # a body without a newline, and the next write is a prefix
                self._piece(buf[i:k], True)
                i = k
                continue
            if n - i >= PIECE + 4 or (final and n - i >= PIECE):
                self._piece(buf[i:i + PIECE], False)
                i += PIECE
                continue
            if not final:
                break
            self._piece(buf[i:], True)  # the end of the log: whatever is left ends here
            i = n
        self.buf = buf[i:]

    def close(self) -> None:
        """The end of the log: a line still unfinished is lost."""
        self.feed(b"", final=True)
        if not self.resync:
            self._agreed()  # what is still undecided at the end stays so
        self.lost += self.open
        self.open = 0

    # -- whose piece ---------------------------------------------------------------------

    def _prefix(self, pid: int) -> None:
        self.open += 1
        if self.resync:
            self.resync_pids.add(pid)
            return
        kept = []
        for partial, done in self.guesses:
            if pid in partial:
                continue  # its previous line would still be unfinished: dyld's lock forbids it
            p = dict(partial)
            p[pid] = b""
            kept.append((p, done))
        self._settle(kept)

    def _piece(self, piece: bytes, finishes: bool) -> None:
        if self.open == 0:
            self.stray += finishes
            return
        if finishes:
            self.open -= 1
            self.window += 1
        if self.resync:
            if finishes:
                self.lost += 1
            if self.open == 0:
                self._end_resync()
            return
        kept = []
        for partial, done in self.guesses:
            for pid, have in partial.items():
                text = have + piece
                acc = self.account(pid)
                if finishes:
                    body = text[:-1] if text.endswith(b"\n") else text
                    body_s = body.decode("utf-8", "replace")
                    if not acc.accepts(body_s, done.get(pid, ())):
                        continue
                    p = {k: v for k, v in partial.items() if k != pid}
                    d = dict(done)
                    d[pid] = (*done.get(pid, ()), body_s)
                    kept.append((p, d))
                else:
                    if not acc.start_ok(text.decode("utf-8", "replace"), done.get(pid, ())):
                        continue
                    p = dict(partial)
                    p[pid] = text
                    kept.append((p, done))
        self._settle(kept)

    def _settle(self, kept: list[tuple[dict, dict]]) -> None:
        unique = {}
        for g in kept:
            key = (tuple(sorted(g[0].items())), tuple(sorted(g[1].items())))
            unique.setdefault(key, g)
        guesses = list(unique.values())
        if not guesses:  # no assignment fits: the log breaks dyld's rules (or is cut): nothing is certain
            self._contradiction()
            return
        self.guesses = guesses
        self._hand_over_agreed()
        if len(self.guesses) > COLLAPSE or (len(self.guesses) > 1 and self.window > MAX_WINDOW):
            self._agreed()  # finished lines still undecided: stop carrying them
            if len(self.guesses) > MAX_GUESSES:
                self._give_up()

    def _hand_over_agreed(self) -> None:
        """Hand over, per pid, the bodies every guess gives it first (in that order)."""
        if len(self.guesses) == 1:
            partial, done = self.guesses[0]
            self._hand_over(done)
            self.guesses = [(partial, {})]
            self.window = 0
            return
        pids = set().union(*(d.keys() for _p, d in self.guesses))
        agreed = {}
        for pid in pids:
            seqs = [d.get(pid, ()) for _p, d in self.guesses]
            k = 0
            while all(len(s) > k for s in seqs) and len({s[k] for s in seqs}) == 1:
                k += 1
            if k:
                agreed[pid] = seqs[0][:k]
        if agreed:
            self._hand_over(agreed)
            self.window -= sum(len(v) for v in agreed.values())
            self.guesses = [(p, {pid: seq[len(agreed.get(pid, ())):] for pid, seq in d.items()
                                 if len(seq) > len(agreed.get(pid, ()))}) for p, d in self.guesses]

    def _hand_over(self, done: dict) -> None:
        for pid, bodies in done.items():
            for body in bodies:
                self.bodies += 1
                self.commit(pid, body)

    def _agreed(self) -> None:
        """Stop guessing about finished lines. A body every guess gives the same pid
        is that pid's (handed over in the first guess's order); the rest are counted
        as ambiguous, and each pid is told which lines it may have lost
        (account.lost_lines). The guesses about unfinished lines go on."""
        self._hand_over_agreed()
        pids = set().union(*(d.keys() for _p, d in self.guesses))
        sure, maybe = {}, {}
        for pid in pids:
            seqs = [d.get(pid, ()) for _p, d in self.guesses]
            common = Counter(seqs[0])
            for seq in seqs[1:]:
                common &= Counter(seq)
            sure[pid] = []
            for body in seqs[0]:
                if common[body]:
                    common[body] -= 1
                    sure[pid].append(body)
            maybe[pid] = sorted({b for seq in seqs for b in seq} - set(sure[pid]))
        self._hand_over(sure)
        for pid in pids:  # after the sure ones: what they leave known about order, the loss makes unknown
            if maybe[pid]:
                self.account(pid).lost_lines(maybe[pid])
        self.ambiguous += self.window - sum(len(v) for v in sure.values())
        self.window = 0
        unique = {}
        for partial, _done in self.guesses:
            unique.setdefault(tuple(sorted(partial.items())), (partial, {}))
        self.guesses = list(unique.values())

    def _contradiction(self) -> None:
        """No guess fits: every body finished since the last settled point is lost,
        and so is every unfinished one (dropped until no line is unfinished)."""
        unfinished = set().union(*(p.keys() for p, _d in self.guesses))
        touched = set().union(*(d.keys() for _p, d in self.guesses))
        for pid in unfinished | touched:
            self.account(pid).lost_lines(None)
        self.lost += self.window
        self.window = 0
        self.guesses = [({}, {})]
        self.resync = self.open > 0
        self.resync_pids = set(unfinished)

    def _give_up(self) -> None:
        """Too many guesses about unfinished lines: drop those lines, and every piece,
        until no line is unfinished."""
        unfinished = set().union(*(p.keys() for p, _d in self.guesses))
        for pid in unfinished:
            self.account(pid).lost_lines(None)
        self.resync = self.open > 0
        self.resync_pids = set(unfinished)
        if not self.resync:
            self.guesses = [({}, {})]

    def _end_resync(self) -> None:
        for pid in self.resync_pids:
            self.account(pid).lost_lines(None)
        self.resync = False
        self.resync_pids = set()
        self.guesses = [({}, {})]
        self.window = 0
