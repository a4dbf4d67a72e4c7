"""Locates the host's dynamic linker and libc, the files bind probes attach to."""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass

# ld.so's internal functions the bind backends put probes or breakpoints on.
# They are local symbols: only the debug file's .symtab has them (libc6-dbg).
LDSO_SYMBOLS = frozenset({"_dl_lookup_symbol_x", "_dl_fixup", "_dl_profile_fixup", "_dl_relocate_object"})

_LDSO = {
    "x86_64": "/lib64/ld-linux-x86-64.so.2",
    "aarch64": "/lib/ld-linux-aarch64.so.1",
}
_LIBC_DIRS = {
    "x86_64": ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"],
    "aarch64": ["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"],
}


def ldso_path(machine: str | None = None) -> str | None:
    path = _LDSO.get(machine or platform.machine())
    return os.path.realpath(path) if path and os.path.exists(path) else None


def libc_path(machine: str | None = None) -> str | None:
    for d in _LIBC_DIRS.get(machine or platform.machine(), []):
        cand = os.path.join(d, "libc.so.6")
        if os.path.exists(cand):
            return os.path.realpath(cand)
    return None


@dataclass(frozen=True)
class LdsoLayout:
    """Link-time addresses in ld.so that tell a lookup's kind by its caller.

    A return address inside ``_dl_fixup``/``_dl_profile_fixup`` is a lazy
    binding, elsewhere in ld.so's text an eager one (relocation), outside ld.so
    a dlsym. Backends rebase these by ld.so's load bias in each process.
    """

    lookup: int  # _dl_lookup_symbol_x
    lookup_end: int
    relocate: int  # _dl_relocate_object
    fixup: tuple[int, int]
    profile_fixup: tuple[int, int]
    text: tuple[int, int]

    def kind_of(self, caller: int) -> str:
        """eager | lazy | dlsym for a link-time return address."""
        if self.fixup[0] <= caller < self.fixup[1] or self.profile_fixup[0] <= caller < self.profile_fixup[1]:
            return "lazy"
        if self.text[0] <= caller < self.text[1]:
            return "eager"
        return "dlsym"


def ldso_layout(ldso: str) -> LdsoLayout | None:
    """The layout of this ld.so, or None when its debug symbols are missing."""
    from . import elfinfo

    funcs = elfinfo.function_ranges(ldso, LDSO_SYMBOLS)
    text = elfinfo.text_range(ldso)
    if len(funcs) != len(LDSO_SYMBOLS) or text is None:
        return None
    return LdsoLayout(lookup=funcs["_dl_lookup_symbol_x"][0], lookup_end=funcs["_dl_lookup_symbol_x"][1],
                      relocate=funcs["_dl_relocate_object"][0], fixup=funcs["_dl_fixup"],
                      profile_fixup=funcs["_dl_profile_fixup"], text=text)
