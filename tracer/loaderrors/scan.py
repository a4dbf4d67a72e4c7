"""Every load error in a text, and which of its lines they were.

The text is anything a user holds: a dyld or LD_DEBUG log, a CI log, a crash report, a
Python traceback; lines that are no loader's are left for the caller to count. CRLF line
ends read as LF. A crash report's ``Process: NAME [PID]`` and ``Path:`` lines give the
pid and program of the DYLD error under them, and ``(Translated)`` in its ``Code Type``
says the process ran under Rosetta.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import dyld_text, glibc_text
from .record import LoadError

CRASH_PROCESS = re.compile(r"^Process:\s+(.+?) \[(\d+)\]\s*$")
CRASH_PATH = re.compile(r"^Path:\s+(/.+?)\s*$")
CRASH_CODE = re.compile(r"^Code Type:\s+(\S+)(?:\s+\((Translated|Native)\))?")


@dataclass
class Scan:
    errors: list[LoadError] = field(default_factory=list)
    lines: set[int] = field(default_factory=set)  # 0-based indexes of the lines the errors took
    translated: bool = False  # a crash report said "(Translated)"


def split(text: str) -> list[str]:
    """Lines, whichever line ends the text used."""
    return text.splitlines()


# a message run onto the end of the one before it (dyld4 of macOS 12 gathers several, crash reports too)
RUN_ON = re.compile(r"(?<=[)'])(?=(?:Library not loaded|Symbol not found): )")
CUT_HEAD = re.compile(r"(?:Library not loaded|Symbol not found)\s*$")




def _may_start(line: str) -> bool:
    """Whether a loader's message (or a crash report's header) could begin on ``line``: a line without
    any of these words is passed over on this test alone, as most lines of a log are (substring
    tests: ten times faster than one regular expression of them)."""
    return ("not " in line or "dlopen(" in line or "LC_UUID" in line or "dyld cache" in line or "inserted" in line
            or "missing" in line or "error" in line or "undefined" in line or "cannot open" in line or "ELF" in line
            or "too short" in line or "dependent" in line or line.startswith(("Process:", "Path:", "Code Type:")))
# what a line must hold for the next one to be joined to it (a message a terminal or a page broke)
JOINS = re.compile(r"Library not loaded\s*$|Symbol not found\s*$|relocation error: |error while loading shared "
                   r"libraries:\s*$")


def _joined(last: str, line: str, lines_in_last: int) -> str | None:
    """``last`` and ``line`` as the one line a terminal or a page broke, or None: dyld's first line
    cut before its ": " (``Library not loaded`` / ``: path``), glibc's relocation error wrapped over up
    to four lines, glibc's "error while loading shared libraries:" wrapped after its colon."""
    if line.startswith(": ") and CUT_HEAD.search(last):
        return last + line
    if not line.strip():
        return None
    if "relocation error: " in last and "with link time reference" not in last and lines_in_last < 4:
        return last.rstrip() + " " + line.strip()
    if last.rstrip().endswith("error while loading shared libraries:"):
        return last.rstrip() + " " + line.strip()
    return None


def _unrun(lines: list[str]) -> tuple[list[str], list[list[int]], set[int]]:
    """Lines with run-on messages split apart and messages a terminal broke joined again; for each,
    the indexes of the input lines it came from; and which lines are run-on pieces (a message that
    began at the end of another's line: the same process's). A line is joined first, then split: a
    run-on message whose first line was cut comes out whole."""
    out, origin, run_on = [], [], set()
    joinable = False  # whether the last line is one a broken message could continue
    for i, line in enumerate(lines):
        if not joinable and "Library not loaded: " not in line and "Symbol not found: " not in line:
            out.append(line)
            origin.append([i])
            joinable = (("loaded" in line or "found" in line or "relocation error" in line or "libraries:" in line)
                        and JOINS.search(line) is not None)
            continue
        came, was_run_on = [i], False
        whole = _joined(out[-1], line, len(origin[-1])) if joinable else None
        if whole is not None:  # the last line again, with this one: split below as one
            line, came = whole, [*origin.pop(), i]
            out.pop()
            was_run_on = len(out) in run_on
            run_on.discard(len(out))
        pieces = RUN_ON.split(line) if ("Library not loaded: " in line or "Symbol not found: " in line) else [line]
        for k, piece in enumerate(pieces):
            if k or was_run_on:
                run_on.add(len(out))
            out.append(piece)
            origin.append(came if not k else [i])
        joinable = JOINS.search(out[-1]) is not None
    return out, origin, run_on


def scan(text: str | list[str]) -> Scan:
    raw = split(text) if isinstance(text, str) else text
    lines, origin, run_on = _unrun(raw)
    out = Scan()
    crash_pid, crash_prog = None, None
    i = 0
    while i < len(lines):
        line = lines[i]
        if not _may_start(line):
            i += 1
            continue
        if line.startswith(("Process:", "Path:", "Code Type:")):
            p, q, c = CRASH_PROCESS.match(line), CRASH_PATH.match(line), CRASH_CODE.match(line)
            if p:
                crash_pid = int(p.group(2))
            elif q:
                crash_prog = q.group(1)
            elif c and c.group(2) == "Translated":
                out.translated = True
        d, m = dyld_text.find(line)
        if d is not None or m is not None:
            err, j = dyld_text.read(lines, i, d, m)
            if err.pid is None and crash_pid is not None:
                err.pid, err.program = crash_pid, err.program or crash_prog
            elif err.pid is None and i in run_on and out.errors:
                err.pid = out.errors[-1].pid
            err.line = origin[i][0] + 1
            out.errors.append(err)
            out.lines.update(n for k in range(i, j) for n in origin[k])
            i = j
            continue
        err = glibc_text.find(line)
        if err is not None:
            err.line, err.message = origin[i][0] + 1, line.strip()
            out.errors.append(err)
            out.lines.update(origin[i])
        i += 1
    return out
