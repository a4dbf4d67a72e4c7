"""The grammar of dyld's DYLD_PRINT_* lines: one body (the text after ``dyld[pid]: ``) at a time.

Every form comes from a format string in dyld's sources (apple-oss-distributions/dyld,
tags dyld-940 to dyld-1378; ../shared/research/macos-dyld.md), printed by libplatform's
``_simple_vdprintf``: ``%p`` is ``0x`` and lowercase hex without padding, ``%14.*s``
prints the segment name as it is (the precision special case ignores the width),
``%14s`` pads ``ROSETTA`` to 14 columns. Not run on macOS: no Mac was at hand, the
lines the tests feed are built from those format strings.

Bind lines, by dyld generation (N counts an image's bind targets from 0):

* dyld-1323.3 (macOS 26) on: ``<leaf/bind#N> -> 0xADDR <target-leaf/symbol>)`` (the
  unmatched ``)`` is dyld's), ``<leaf/bind#N> -> 0xADDR <target-leaf/variant-table#K('symbol')>)``;
* dyld-940 to 1286 (``%lu`` before 1160, ``%llu`` after; the same text), and weak-def
  overrides in every generation: ``<leaf/bind#N> -> 0xADDR (target-leaf/symbol)``;
* missing weak imports: ``<leaf/bind#N> -> missing-weak-bind (symbol)``;
* PrebuiltLoader (OS programs and the shared cache), no names: ``<leaf/bind#N> -> 0xADDR``,
  ``<leaf/bind#N> -> 0xADDR (target-leaf+0x0000ABCD)``, ``<leaf/bind#N(variant-table#K)> -> 0xADDR``,
  ``<leaf/bind#N> -> missing-weak-bind``.

A target leaf of ``<none>`` is dyld's for a target without an image (an absolute symbol).
"""
from __future__ import annotations

import functools
import re

import regex

from ...loaderrors.dyld_text import FIRST_PATTERN

UUID = r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"
LIBRARY = re.compile(rf"^<({UUID}|no uuid)> (.+)$")
BIND = re.compile(r"^<([^<>/]+)/bind#(\d+)(?:\(variant-table#\d+\))?> -> (.*)$")
T_VARIANT = re.compile(r"^0x([0-9a-f]+) <([^/]*)/variant-table#\d+\('(.*)'\)>\)$")
T_NEW = re.compile(r"^0x([0-9a-f]+) <([^/]*)/(.+)>\)$")
T_OLD = re.compile(r"^0x([0-9a-f]+) \(([^/]*)/(.+)\)$")
T_OFFSET = re.compile(r"^0x([0-9a-f]+) \((.+)\+0x[0-9A-F]+\)$")
T_ADDR = re.compile(r"^0x([0-9a-f]+)$")
T_MISSING = re.compile(r"^missing-weak-bind(?: \((.*)\))?$")
FIXUP = re.compile(r"^fixup: \*0x[0-9A-F]+ (?:= 0x[0-9A-F]+|\(skipping missing weak bind\)) <([^<>/]+)/(?:weak-)?bind#(\d+)>$")
MAPPING = re.compile(r"^(Mapping|Kernel mapped|Using mapping in dyld cache for) (.+?)(?: \(slice offset=0x[0-9A-F]+\))?$")
SEGMENT = re.compile(r"^ *([^ ()]+) \(([r.][w.][x.])\) 0x([0-9A-F]+)->0x([0-9A-F]+)(?: | \(fileOffset=.*\))?$")
DLOPEN = re.compile(r'^dlopen\("(.*)", 0x([0-9A-F]+)\)$')
DLOPEN_RESULT = re.compile(r"^      dlopen\((.*)\) => (?:0x([0-9a-f]+)|NULL, '(.*)')$")
DLSYM = re.compile(r'^dlsym\(0x([0-9a-f]+), "(.*)"\)$')
DLSYM_RESULT = re.compile(r'^     dlsym\("(.*)"\) => (?:0x([0-9a-f]+)|NULL(.*))$')

# The first line of a load error dyld halts with (its other lines carry no prefix: tracer/loaderrors reads them)
ERROR_START = re.compile("^" + FIRST_PATTERN)

# DYLD_PRINT_SEARCHING (dyld-940 on, Loader::getLoader): a search, each path it may take, how it ended
FIND_PATH = re.compile(r'^find path "(.*)"$')
POSSIBLE = re.compile(r'^  possible path\(([^)]*)\): "(.*)"$')
SEARCH_NONE = re.compile(r'^  not found: "(.*)"$')
SEARCH_RPATH = re.compile(r"^  LC_RPATH '(.*)' from '(.*)'$")

# What a parsed body is (the first field of parse()'s tuple)
(LIB, BINDING, MISSING_WEAK, FIX, MAP, SEG, OPEN, OPENED, SYM, FOUND, IGNORED, UNKNOWN, ERROR, SEARCH, CANDIDATE,
 SEARCHED, RPATH) = range(17)

# Lines dyld prints under these variables that say nothing gotrace records (counted, never "unknown")
IGNORED_STARTS = ("rebase: ", "bind:   ", "fixup: ", "running initializer ", "page-in link setup",
                  "unmapped 0x", "mprotect 0x", "cache singleton fixup", "objc-", " objc-mapped",
                  "dlopen_preflight(", "      dlopen_preflight(", "_dyld_", " => ", "dlclose(",
                  "dladdr(", "dlerror(", "NSAddImage", "NSLookup", "NSIsSymbol", "move ", "has interposing",
                  "skipping duplicate", "dlopen() within", "dyld_image_path_containing_address(",
                  "dyld_shared_cache_", "dyld_get_", "dyld_program_", "dyld_sdk_", "dyld_minos_",
                  # DYLD_PRINT_SEARCHING, _INTERPOSING, page-in linking, the shared cache's own fixups (dyld-940 on)
                  "find path \"", "  possible path(", "  found: ", "  not found: ", "  LC_RPATH '",
                  "  found existing image by install name: ", "  switch to realpath: ",
                  "Setting up kernel page-in linking for ", "Setting up exclave page-in linking for ",
                  "__map_with_linking_np(", "interpose: ", "   '", "cache fixup: ", "cache GOT fixup: ",
                  "cache patch: ", "running terminator ", "dyld_image_", "dlsym_",
                  # the shared cache's mapping, loaders, DOF, destructors, AMFI notes, objc's duplicates (dyld-940 on)
                  "mapped dyld cache file ", "re-using existing shared cache (", "Mapping the shared cache ",
                  "main executable resides where dyld cache would be", "        0x", "adding DOF section ",
                  "adding registrationID=", "using JustInTimeLoader ", "using PrebuiltLoader ",
                  "registering old style destructor ", "called static terminator ", "  interpose replaced ",
                  "Note: ", "Class ")

# dlsym's special handles, as %p prints them (dlfcn.h)
SPECIAL_HANDLES = {0xFFFFFFFFFFFFFFFF: "RTLD_NEXT", 0xFFFFFFFFFFFFFFFE: "RTLD_DEFAULT",
                   0xFFFFFFFFFFFFFFFD: "RTLD_SELF", 0xFFFFFFFFFFFFFFFB: "RTLD_MAIN_ONLY"}

# Where the kernel puts the shared region, [BASE, BASE + SIZE) of xnu-11417's
# osfmk/mach/shared_region.h (arm64's SIZE grew from 0x100000000 in xnu-11215): a cache
# dylib's address tells which architecture's cache, so which architecture the process runs
SHARED_REGION = (("x86_64", 0x7FF800000000, 0x7FF800000000 + 0x7FE000000),
                 ("arm64", 0x180000000, 0x180000000 + 0x180000000))


_H, _U = "[0-9a-f]+", "[0-9A-F]+"  # %p, %lX
_LEAF = r"[^/<>()\n]+"  # a leaf name: no slash; no brackets, which the forms put around it
_SYM = r"[^\s<>()']+"  # a mangled symbol name (C, C++, Swift manglings have no spaces or brackets)
# Every form as a grammar, for the demux: a line is only ever a whole form, and the
# text written so far must be the start of one (regex's partial matching decides it).
FORMS = regex.compile("|".join((
    rf"<(?:{UUID}|no uuid)> [^\n]+",
    rf"<{_LEAF}/bind#\d+(?:\(variant-table#\d+\))?> -> (?:0x{_H}"
    rf"(?: <(?:{_LEAF}|<none>)/(?:{_SYM}|variant-table#\d+\('{_SYM}'\))>\)| \((?:{_LEAF}|<none>)/{_SYM}\)"
    rf"| \({_LEAF}\+0x{_U}\))?|missing-weak-bind(?: \({_SYM}\))?)",
    r"(?:Mapping|Kernel mapped|Using mapping in dyld cache for) [^\n]+",
    rf" *[A-Za-z_][A-Za-z0-9_]{{0,15}} \([r.][w.][x.]\) 0x{_U}->0x{_U}(?: | \(fileOffset=[^\n]*\))?",
    rf"fixup: \*0x{_U} (?:= 0x{_U}|\(skipping missing weak bind\)) <{_LEAF}/(?:weak-)?bind#\d+>",
    rf"fixup: \*0x{_U} = 0x{_U} <[^\n]*>",  # rebases, objc and Swift's own, function variants (read, not recorded)
    rf'dlopen\("[^\n]*", 0x{_U}\)',
    rf"      dlopen\([^\n]*\) => (?:0x{_H}|NULL, '[^\n]*')",
    rf'dlsym\(0x{_H}, "[^\n]*"\)',
    rf'     dlsym\("[^\n]*"\) => (?:0x{_H}|NULL[^\n]*)',
    FIRST_PATTERN + "[^\n]*",
    r"[^\n]* has interposed '[^\n]*",
    "(?:" + "|".join(regex.escape(s) for s in IGNORED_STARTS if s != "fixup: ") + ")[^\n]*",
)))


@functools.lru_cache(maxsize=1 << 16)
def viable(text: str, complete: bool = False) -> bool:
    """Whether ``text`` is (``complete``) or could begin (else) a line of a form dyld prints."""
    if complete:
        return FORMS.fullmatch(text) is not None
    return FORMS.fullmatch(text, partial=True) is not None


@functools.lru_cache(maxsize=1 << 16)
def parse(body: str) -> tuple:
    """The body as a tuple whose first field says what it is:

    (LIB, uuid|None, path) · (BINDING, leaf, n, addr, target_leaf|None, symbol|None, weak_form)
    · (MISSING_WEAK, leaf, n, symbol|None) · (FIX, leaf, n) · (MAP, how, path)
    · (SEG, name, prot, start, end) · (OPEN, path) · (OPENED, leaf, handle|None, error|None)
    · (SYM, handle, name) · (FOUND, name, addr|None, why_null) · (IGNORED,) · (UNKNOWN,)
    · (ERROR,): the first line of a load error (tracer/loaderrors reads the message)
    · (SEARCH, name) · (CANDIDATE, how, path) · (SEARCHED, path|None, outcome, error|None) · (RPATH, rpath, image)
    """
    c = body[:1]
    if (c == "f" and body.startswith("find path ")) or body.startswith("  "):
        q = _search(body)
        if q is not None:
            return q
    if c == "<":
        m = BIND.match(body)
        if m:
            return _bind(m.group(1), int(m.group(2)), m.group(3))
        m = LIBRARY.match(body)
        if m:
            return (LIB, None if m.group(1) == "no uuid" else m.group(1), m.group(2))
        return (UNKNOWN,)
    if c == "f" and body.startswith("fixup: "):
        m = FIXUP.match(body)
        return (FIX, m.group(1), int(m.group(2))) if m else (IGNORED,)
    if c in "MKU" and not body.startswith("Mapping the shared cache "):
        m = MAPPING.match(body)
        if m:
            return (MAP, m.group(1), m.group(2))
    if c == "d":
        m = DLSYM.match(body)
        if m:
            return (SYM, int(m.group(1), 16), m.group(2))
        m = DLOPEN.match(body)
        if m:
            return (OPEN, m.group(1))
    if body.startswith("     dlsym(\""):
        m = DLSYM_RESULT.match(body)
        if m:
            return (FOUND, m.group(1), int(m.group(2), 16) if m.group(2) else None, (m.group(3) or "").strip(" ,"))
    if body.startswith("      dlopen("):
        m = DLOPEN_RESULT.match(body)
        if m:
            return (OPENED, m.group(1), int(m.group(2), 16) if m.group(2) else None, m.group(3))
    m = SEGMENT.match(body)
    if m:
        return (SEG, m.group(1), m.group(2), int(m.group(3), 16), int(m.group(4), 16))
    if body.startswith(IGNORED_STARTS) or " has interposed '" in body:
        return (IGNORED,)
    if ERROR_START.match(body):
        return (ERROR,)
    return (UNKNOWN,)


def _search(body: str) -> tuple | None:
    m = FIND_PATH.match(body)
    if m:
        return (SEARCH, m.group(1))
    m = POSSIBLE.match(body)
    if m:
        return (CANDIDATE, m.group(1), m.group(2))
    if body.startswith("  found"):  # "  found: KIND: \"path\"", "… (0x00A2) \"path\"", "… => \"error\"", "… -> …"
        rest = body[7:]
        q = rest.find('"')
        path = rest[q + 1:rest.find('"', q + 1)] if q >= 0 else rest.rsplit(": ", 1)[-1] or None
        e = rest.find(' => "')
        kind = rest.lstrip(": ").split(":", 1)[0]
        return (SEARCHED, path, "error" if kind.endswith("-error") else "found", rest[e + 5:-1] if e >= 0 else None)
    m = SEARCH_NONE.match(body)
    if m:
        return (SEARCHED, None, "not found", None)
    m = SEARCH_RPATH.match(body)
    if m:
        return (RPATH, m.group(1), m.group(2))
    return None


def _bind(leaf: str, n: int, tail: str) -> tuple:
    m = T_VARIANT.match(tail) or T_NEW.match(tail)
    weak = False
    if m is None:
        m, weak = T_OLD.match(tail), True  # dyld before 1323, and weak-def overrides in every generation
    if m:
        target = m.group(2)
        return (BINDING, leaf, n, int(m.group(1), 16), None if target == "<none>" else target, m.group(3), weak)
    m = T_MISSING.match(tail)
    if m:
        return (MISSING_WEAK, leaf, n, m.group(1))
    m = T_OFFSET.match(tail) or T_ADDR.match(tail)
    if m:
        return (BINDING, leaf, n, int(m.group(1), 16), m.group(2) if m.re is T_OFFSET else None, None, False)
    return (UNKNOWN,)


def leaf(path: str) -> str:
    """dyld's leaf name of a path (Loader::leafName: what follows the last /)."""
    return path.rsplit("/", 1)[-1]


def region_arch(addr: int) -> str | None:
    """The architecture whose shared region holds ``addr`` (None: outside both)."""
    for arch, lo, hi in SHARED_REGION:
        if lo <= addr < hi:
            return arch
    return None
