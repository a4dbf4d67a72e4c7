"""The host's dynamic linker, the file every Linux bind probe attaches to, and what its probes need.

ld.so's lookup, fixup and relocation functions are local symbols: only the
debug file's .symtab has them (Debian's libc6-dbg). Every backend and the
lldb commands ask here, so a missing debug package is always reported the
same way, with the same fix.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from ..binary import facts
from ..errors import BackendUnavailable
from .backend import Availability

# ld.so's internal functions the bind backends put probes or breakpoints on.
# _dl_signal_cexception: where a lookup of a global reference that found nothing raises its error
LDSO_SYMBOLS = frozenset({"_dl_lookup_symbol_x", "_dl_fixup", "_dl_profile_fixup", "_dl_relocate_object",
                          "_dl_signal_cexception"})
DEBUG_SYMBOLS_FIX = "install glibc's debug symbols: apt-get install libc6-dbg"
UNRESOLVABLE = "ld.so's internal symbols are not resolvable"

_LDSO = {
    "x86_64": "/lib64/ld-linux-x86-64.so.2",
    "aarch64": "/lib/ld-linux-aarch64.so.1",
}


def ldso_path(machine: str | None = None) -> str | None:
    path = _LDSO.get(machine or platform.machine())
    return os.path.realpath(path) if path and os.path.exists(path) else None


@dataclass(frozen=True)
class LdsoLayout:
    """Link-time addresses in ld.so that tell a lookup's kind by its caller.

    A return address inside ``_dl_fixup``/``_dl_profile_fixup`` is a lazy
    binding, elsewhere in ld.so's text an eager one (relocation), outside ld.so
    a dlsym. Backends rebase these by ld.so's load bias in each process.
    """

    lookup: int  # _dl_lookup_symbol_x
    lookup_end: int
    fixup: tuple[int, int]
    profile_fixup: tuple[int, int]
    text: tuple[int, int]
    signal_error: int = 0  # _dl_signal_cexception: a lookup that found nothing raising its error

    def kind_of(self, caller: int) -> str:
        """eager | lazy | dlsym for a link-time return address."""
        if self.fixup[0] <= caller < self.fixup[1] or self.profile_fixup[0] <= caller < self.profile_fixup[1]:
            return "lazy"
        if self.text[0] <= caller < self.text[1]:
            return "eager"
        return "dlsym"


def ldso_layout(ldso: str) -> LdsoLayout | None:
    """The layout of this ld.so, or None when its debug symbols are missing."""
    funcs = facts.function_ranges(ldso, LDSO_SYMBOLS)
    text = facts.text_range(ldso)
    if len(funcs) != len(LDSO_SYMBOLS) or text is None:
        return None
    return LdsoLayout(lookup=funcs["_dl_lookup_symbol_x"][0], lookup_end=funcs["_dl_lookup_symbol_x"][1],
                      fixup=funcs["_dl_fixup"], profile_fixup=funcs["_dl_profile_fixup"], text=text,
                      signal_error=funcs["_dl_signal_cexception"][0])


def symbols_available(ldso: str) -> Availability:
    """Whether ``ldso``'s internal symbols resolve; the missing ones and the fix when not."""
    missing = sorted(LDSO_SYMBOLS - set(facts.function_ranges(ldso, LDSO_SYMBOLS)))
    if missing:
        return Availability(False, f"{UNRESOLVABLE} ({', '.join(missing)}: the files are stripped)",
                            DEBUG_SYMBOLS_FIX)
    return Availability(True, "ld.so's internal symbols resolve")


def ldso_problem(ldso: str | None, backend: str) -> Availability | None:
    """Why ``backend``'s uprobes cannot go into ``ld.so`` (ldso_path's answer): none found, or its
    internal symbols do not resolve; None when they can."""
    if ldso is None:
        return Availability(False, "cannot find glibc's ld.so on this host",
                            f"the {backend} backend supports glibc systems only")
    symbols = symbols_available(ldso)
    return None if symbols.ok else symbols


def require_layout(ldso: str | None = None) -> tuple[str, LdsoLayout]:
    """(ld.so's path, its layout), or BackendUnavailable saying what to install."""
    ldso = ldso or ldso_path()
    if ldso is None:
        raise BackendUnavailable("cannot find glibc's dynamic linker on this host (Linux with glibc only)")
    layout = ldso_layout(ldso)
    if layout is None:
        raise BackendUnavailable(f"{UNRESOLVABLE}; {DEBUG_SYMBOLS_FIX}")
    return ldso, layout
