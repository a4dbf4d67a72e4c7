"""glibc's ld.so errors as the text users paste them (glibc 2.36's elf/ sources: rtld.c,
dl-load.c, dl-lookup.c, dl-version.c, dl-error-skeleton.c; tests/fixtures/dyld-formats/).

At start-up ld.so prints ``PROGRAM: error while loading shared libraries: NAME: MESSAGE``
(``_dl_signal_error`` → ``_dl_fatal_printf``), a failed lazy binding ``PROGRAM: symbol lookup
error: OBJECT: undefined symbol: NAME[, version V]``, a version check ``PROGRAM: LIBRARY:
version `V' not found (required by OBJECT)`` (2.36 quotes with a backtick; later releases
with ``'``; both are read), and dlerror() the same without the program: ``NAME: cannot open
shared object file: No such file or directory`` (Python's ``OSError: …``, Go's
``plugin.Open``).
"""
from __future__ import annotations

import re

from .record import LoadError

WHILE_LOADING = re.compile(r"^(?P<pre>.*?)(?P<prog>[^\s:][^:]*): error while loading shared libraries: "
                           r"(?P<lib>[^:]+): (?P<msg>.+?)\s*$")
LOOKUP = re.compile(r"^(?P<pre>.*?)(?P<prog>[^\s:][^:]*): symbol lookup error: (?P<obj>[^:]+): "
                    r"undefined symbol: (?P<sym>[^\s,]+)(?:, version (?P<ver>\S+))?\s*$")
VERSION = re.compile(r"^(?P<pre>.*?)(?:(?P<prog>[^\s:][^:]*): )?(?P<lib>/?[^\s:]+): version [`'](?P<ver>[^'`]+)' "
                     r"not found \(required by (?P<req>[^)]+)\)\s*$")
# glibc before 2.26: "symbol S, version V" (or without the comma), a full stop after it in some pastes
RELOCATION = re.compile(r"^(?P<pre>.*?)(?P<prog>[^\s:][^:]*): relocation error: +(?P<obj>[^:]+): symbol (?P<sym>[^\s,]+),? "
                        r"version (?P<ver>\S+) not defined in file (?P<lib>\S+) with link time reference\.?\s*$")
EXCEPTION = re.compile(r"^(?:\w+\.)*[A-Z]\w*(?:Error|Exception)$")  # Python's OSError, ImportError …: no program
DLERROR_OPEN = re.compile(r"(?:^|[\s:'\"(])(?P<lib>[^\s:'\"(]+\.so[^\s:'\"]*): (?P<msg>cannot open shared object file: "
                          r"[^'\"]+?|wrong ELF class: ELFCLASS\d+|invalid ELF header|file too short)['\")]?\s*$")
DLERROR_UNDEF = re.compile(r"(?:^|[\s:'\"(])(?P<obj>/?[^\s:'\"(]+): undefined symbol: (?P<sym>[^\s,'\"]+)"
                           r"(?:, version (?P<ver>[^\s'\"]+))?")


def find(line: str) -> LoadError | None:
    """The glibc error on ``line``, or None."""
    if "error while loading shared libraries: " in line:
        m = WHILE_LOADING.match(line)
        if m:
            err = LoadError("glibc", "library-not-loaded", program=m.group("prog").strip(), library=m.group("lib"))
            _open_message(err, m.group("msg"))
            return err
    if "symbol lookup error: " in line:
        m = LOOKUP.match(line)
        if m:
            return LoadError("glibc", "symbol-not-found", "undefined", program=m.group("prog").strip(),
                             requester=m.group("obj"), symbol=m.group("sym"), version=m.group("ver"), via="call")
    if "' not found (required by " in line:
        m = VERSION.match(line)
        if m:
            prog = (m.group("prog") or "").strip() or None
            dl = prog is not None and EXCEPTION.match(prog) is not None  # dlerror's text in a traceback
            return LoadError("glibc", "version-not-found", "old-version", program=None if dl else prog,
                             library=m.group("lib"), version=m.group("ver"), requester=m.group("req"),
                             via="dlopen" if dl else "launch")
    if "relocation error: " in line:
        m = RELOCATION.match(line)
        if m:
            return LoadError("glibc", "symbol-not-found", "undefined", program=m.group("prog").strip(),
                             requester=m.group("obj"), symbol=m.group("sym"), version=m.group("ver"),
                             library=m.group("lib"))
    if ".so" in line:
        m = DLERROR_OPEN.search(line)
        if m:
            err = LoadError("glibc", "library-not-loaded", library=m.group("lib"), via="dlopen")
            _open_message(err, m.group("msg"))
            return err
    if "undefined symbol: " in line:
        m = DLERROR_UNDEF.search(line)
        if m:
            return LoadError("glibc", "symbol-not-found", "undefined", requester=m.group("obj"),
                             symbol=m.group("sym"), version=m.group("ver"), via="dlopen")
    return None


def _open_message(err: LoadError, msg: str) -> None:
    err.tried = []
    if msg.startswith("cannot open shared object file"):
        err.cause = "missing" if "No such file" in msg else "other"
    elif msg.startswith("wrong ELF class: "):
        have = msg.removeprefix("wrong ELF class: ").strip()
        err.cause, err.have = "wrong-arch", [have]
        err.need = ["ELFCLASS64" if have == "ELFCLASS32" else "ELFCLASS32"]
    elif msg.startswith(("invalid ELF header", "file too short", "ELF load command")):
        err.cause = "bad-file"
    else:
        err.cause = "other"
