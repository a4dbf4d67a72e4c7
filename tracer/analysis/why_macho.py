"""Why a symbol bound where it did on macOS: dyld's namespaces, read from the requester's bind info.

Not run on macOS: built from dyld's sources (../shared/research/macos-dyld.md)
and tested against Mach-O files ld64.lld builds here.

A Mach-O image linked the usual way (MH_TWOLEVEL) names, for each symbol it
imports, the library it was linked against (the bind's library ordinal):
dyld looks the symbol up there and nowhere else — two libraries defining the
same function never compete, which is the ELF global scope's opposite. That
library may re-export it from another (libSystem.B.dylib re-exports
libsystem_c.dylib's functions), and an inserted library's __interpose tuples
(DYLD_INSERT_LIBRARIES) replace it for everyone else. A bind with the
flat-lookup ordinal (every bind of an image linked -flat_namespace: ld64 and
lld write it so, and dyld reads an nlist ordinal of an image without
MH_TWOLEVEL so) searches every loaded image in load order; a weak-lookup
bind (C++ weak definitions) takes the first image that has a weak
definition, coalescing them. The libraries
live in the shared cache of the Mac that ran: their exports cannot be read
here, so candidates are not listed and a re-export is said, not checked.
"""
from __future__ import annotations

import os
from typing import Any

from ..binary import facts
from .objects import readable

SPECIAL = ("<flat lookup>", "<main executable>", "<self>", "<weak lookup>")


def _leaf(path) -> str:
    return os.path.basename(str(path)) if path else "-"


def _inserted(env: dict[str, str]) -> list[str]:
    return [p for p in env.get("DYLD_INSERT_LIBRARIES", "").split(":") if p]


def explain_macho(images: list[str], exe: str, requester: str, symbol: str, kind: str, provider: str | None,
                  env: dict[str, str], cwd: str | None) -> dict[str, Any]:
    """One lookup of a Mach-O process (``images``: its images in load order)."""
    order = list(dict.fromkeys([exe] + [i for i in images if i != exe]))
    inserted = _inserted(env)
    notes: list[str] = []
    scope, agrees, interposed, reason = order, None, None, ""
    file = readable(requester, cwd)
    binds = facts.macho_binds(file) if file else None
    lib = binds[1].get(symbol) if binds else None
    if kind == "dlsym":
        reason = ("dlsym: dyld searched from the handle passed (RTLD_DEFAULT: every image in load order; a dlopen "
                  "handle: that image and what it re-exports), which no backend records")
    elif binds is None:
        reason = f"{_leaf(requester)} is not readable here: its bind ordinals, which decide where dyld looks, cannot be read"
    elif symbol not in binds[1]:
        reason = f"{_leaf(requester)} has no bind for {symbol} today: the file changed since the run"
    elif provider and _leaf(provider) in {_leaf(i) for i in inserted} and lib not in SPECIAL:
        scope, agrees, interposed = [provider] + [i for i in order if _leaf(i) == _leaf(lib)], True, True
        reason = (f"DYLD_INSERT_LIBRARIES: {_leaf(provider)} interposes on {symbol} (its __interpose tuples replace "
                  f"{_leaf(lib)}'s for every other image)")
    elif lib == "<flat lookup>":  # dyld goes by the bind's ordinal: MH_TWOLEVEL decides only an nlist's (macho.py)
        how = "the flat-lookup ordinal" if binds[0] else "-flat_namespace (no MH_TWOLEVEL)"
        reason = (f"flat namespace ({how}): dyld searches every image in load order and takes the first that "
                  "exports it")
        interposed = None
    elif lib == "<weak lookup>":
        reason = ("a weak definition, coalesced: dyld takes the first image in load order with a weak (or regular) "
                  "definition, so every image shares one")
    elif lib in ("<main executable>", "<self>"):
        target = exe if lib == "<main executable>" else requester
        scope, agrees, interposed = [target], _leaf(provider) == _leaf(target), False
        reason = f"the bind names {'the main executable' if lib == '<main executable>' else 'the image itself'}"
    else:
        in_order = [i for i in order if _leaf(i) == _leaf(lib)]
        scope = in_order or [lib]
        if provider is None:
            agrees, interposed = True, False
            reason = (f"two-level namespace: {_leaf(requester)} looks {symbol} up in {_leaf(lib)} only (its bind "
                      "ordinal), which does not export it")
        elif _leaf(provider) == _leaf(lib):
            agrees, interposed = True, False
            reason = (f"two-level namespace: {_leaf(requester)} was linked against {_leaf(lib)} for {symbol} (the "
                      "bind's library ordinal), so dyld looks there and nowhere else")
        else:
            interposed = False if not inserted else None
            reason = (f"two-level namespace: {_leaf(requester)} was linked against {_leaf(lib)} for {symbol}; dyld "
                      f"found it in {_leaf(provider)}, which {_leaf(lib)} re-exports (libSystem re-exports "
                      "libsystem_*)" + (", unless an inserted library interposed" if inserted else ""))
            notes.append(f"re-exports live in {_leaf(lib)}'s load commands, in the shared cache of the Mac that "
                         "ran: not checked here")
    if binds is not None and not binds[0]:
        notes.append(f"{_leaf(requester)} was linked -flat_namespace")
    searched = scope[:scope.index(provider) + 1] if provider in scope else scope
    return {"requester": requester, "symbol": symbol, "version": None, "kind": kind, "scope": scope,
            "searched": searched, "candidates": [], "chosen": provider, "replayed": provider if agrees else None,
            "agrees": agrees, "reason": reason, "interposed": bool(interposed) if interposed is not None else None,
            "own_definition": None, "notes": notes + ["not run on macOS: dyld's rules, read from its sources"],
            "unreadable": [] if file else [requester], "bind_library": lib}
