"""One load error, whichever loader wrote it: the row of a session's ``errors`` table.

``kind`` is what the loader says failed; ``cause`` is why, read from its reasons, so
"Library not loaded" whose only candidate was an x86_64 file for an arm64 process is
kind library-not-loaded, cause wrong-arch. The vocabularies are closed (KINDS, CAUSES)
so a report, a budget and a query can count them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

KINDS = {
    "library-not-loaded": "a library (or a dlopen'ed file) could not be loaded",
    "symbol-not-found": "a symbol the program or a library needs is defined nowhere it was looked for",
    "flat-namespace": "a flat-namespace lookup found the symbol in no loaded image",
    "version-not-found": "a library lacks a symbol version the program was linked against (glibc)",
    "missing-uuid": "dyld refuses an image without LC_UUID (macOS 15.4 and later)",
    "dyld-cache": "dyld could not use its shared cache",
}

CAUSES = {
    "missing": "no file at any path tried",
    "no-rpath": "an @rpath name, and the requester has no LC_RPATH that leads to it",
    "wrong-arch": "a file was found but not for this process's architecture (or ELF class)",
    "code-signature": "a file was found but its code signature was refused",
    "wrong-platform": "a file was found but built for another platform (iOS, the simulator, Mac Catalyst)",
    "bad-file": "a file was found but it is not a loadable image",
    "sandbox": "the sandbox or a hardened runtime refused the path",
    "old-version": "a library was found, older than the one linked against",
    "undefined": "the named library does not export the symbol (or is not the one linked against)",
    "lazy": "a symbol was missing at its first call, not at load",
    "other": "the loader's own words say what (see message)",
}


@dataclass
class LoadError:
    source: str  # "dyld" | "glibc"
    kind: str  # KINDS
    cause: str = "other"  # CAUSES
    pid: int | None = None
    program: str | None = None  # the program the loader named (glibc: argv[0]; dyld: none)
    requester: str | None = None  # "Referenced from", "required by", the object of a symbol lookup error
    library: str | None = None  # what could not be loaded, or "Expected in" (the expected provider)
    symbol: str | None = None
    version: str | None = None
    tried: list = field(default_factory=list)  # [(path, reason)] in dyld's order
    have: list = field(default_factory=list)  # architectures the file found had
    need: list = field(default_factory=list)  # architectures the process could use
    via: str = "launch"  # launch | dlopen | call (a lazy binding) | insert (DYLD_INSERT_LIBRARIES)
    line: int = 0  # 1-based line of the input where the message starts
    message: str = ""  # the loader's text, verbatim (its lines joined by \n)

    def row(self) -> dict:
        """The row of a session's errors table."""
        d = asdict(self)
        d["tried"] = [{"path": p, "reason": r} for p, r in self.tried]
        return d
