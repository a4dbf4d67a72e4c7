"""dyld's load errors, every generation, as the text users paste them.

The forms (format strings of apple-oss-distributions/dyld, tests/fixtures/dyld-formats/):

* dyld2 (macOS ≤ 10.15, and dyld3's fallbacks on 11) — ``dyld: Library not loaded: %s`` /
  ``  Referenced from: %s`` / ``  Reason: image not found`` (or ``no suitable image found.
  Did find:`` and one ``\\t%s: %s`` line per file); ``dyld: Symbol not found: %s`` /
  ``  Referenced from: %s`` / ``  Expected in: %s`` / `` in %s``; ``dyld: lazy symbol binding
  failed: Symbol not found: …``; from dlopen: ``dlopen(%s, %d): image not found``.
* dyld4 of macOS 12 — ``dyld[%d]: Library not loaded: %s`` / ``  Referenced from: %s`` /
  ``  Reason: tried: '%s' (%s), '%s' (%s)``; ``Symbol not found: (%s)`` with
  ``Referenced from: '%s'`` / ``Expected in: '%s'``; architectures as ``(have (x), need (y))``.
* dyld4 of macOS 13 on — ``Referenced from: <UUID> %s``, ``Symbol not found: %s``, ``Expected in:
  <UUID> %s``, ``(have 'x', need 'y')`` or ``need 'arm64e' or 'arm64'``, ``symbol not found in
  flat namespace '%s'``, ``missing LC_UUID load command in %s``; dlopen's
  ``dlopen(%s, 0x%04X): tried: …``.
* crash reports: the same message under ``Termination Reason: … DYLD …``, lines not indented.

Whatever stands before the message on its line (``dyld[123]: ``, ``ImportError: ``, a
timestamp, Go's ``plugin.Open("x"): ``) is not part of it. Messages that a terminal or a
web page wrapped or flattened onto one line read the same. Not run on macOS: the tests
read messages published from real Macs and lines built from dyld's format strings.
"""
from __future__ import annotations

import re

from .record import LoadError

PID = re.compile(r"dyld\[(\d+)\]:")
# how the first line of each of dyld4's messages begins, after "dyld[PID]: " (the demux's grammar has them too)
FIRST_WORDS = ("Library not loaded: ", "Symbol not found: ", "symbol not found in flat namespace ",
               "missing LC_UUID load command", "dyld cache '", "terminating because inserted dylib ",
               "lazy symbol binding failed: ", "missing symbol called", "tried: '")
FIRST_PATTERN = "(?:" + "|".join(re.escape(w) for w in FIRST_WORDS) + r"|symbol '[^'\n]*' missing from root )"
DLOPEN = re.compile(r"dlopen\(([^()]+?), (0x[0-9A-Fa-f]+|\d+)\): ")
STARTS = re.compile(
    r"(?P<lib>Library not loaded: )"
    r"|(?P<lazy>lazy symbol binding failed: )?(?P<sym>Symbol not found: )"
    r"|(?P<flat>symbol not found in flat namespace )"
    r"|(?P<uuid>missing LC_UUID load command in )"
    r"|(?P<cache>dyld cache '(?P<cachepath>[^']*)' not loaded: )"
    r"|(?P<insert>terminating because inserted dylib '(?P<inserted>[^']*)' could not be loaded: "
    r"|could not load inserted (?:library|dylib) '?(?P<inserted2>[^' ]*)'?(?: because | into | *$))"
    r"|(?P<called>missing symbol called)"
    r"|symbol '(?P<rootsym>[^']*)' missing from root that overrides (?P<rootlib>\S+?)\. Use of that symbol in "
    r"(?P<rootreq>.+?) is being set to 0xBAD4007")
# dyld3's launch closures (dyld-635 to 852), halted with "dyld: %s"
DYLD3_DEPENDENT = re.compile(r"dependent dylib '(?P<lib>[^']*)' not found for '(?P<req>[^']*)'\.? ?(?P<rest>.*)$")
DYLD3_SYMBOL = re.compile(r"symbol '(?P<sym>[^']*)' not found, expected (?:in '(?P<lib>[^']*)', needed by "
                          r"'(?P<req>[^']*)'|in flat namespace by '(?P<flatreq>[^']*)'|to be weak-def coalesced"
                          r"(?: (?:by|in) '(?P<weakreq>[^']*)')?)")
DYLD3_TRIED = re.compile(r"tried(?: but (?:didn't find|invalid))?: (.*)$")
MARKS = re.compile(r"\s*\b(Referenced from|Reason|Expected in):\s*")
# a continuation line, also behind the decoration a tool put before every line (│, >, #)
CONTINUES = re.compile(r"^[\s│|>#*]*(Referenced from|Reason|Expected in):\s*(.*?)\s*$")
DID_FIND = re.compile(r"^\s+([^\s:][^:]*): (.+?)\s*$")  # dyld2's "\t%s: %s" under "Did find:" (tab or spaces)
IN_PROGRAM = re.compile(r"^\s+in (/.+?)\s*$")
AGAIN = re.compile(r"^dyld\[\d+\]: tried: '")
UUID_AGAIN = re.compile(r"^(?:dyld\[\d+\]: )?missing LC_UUID load command\s*$")
TERMINATED = re.compile(r"^\s*\(terminated at launch; ignore backtrace\)\s*$")
UUID_PART = re.compile(r"^<[0-9A-Fa-f-]{36}>\s*")
BUILT_FOR = re.compile(r"\s*\((?:which was )?built for [^)]*\)\s*$")
ARCH = re.compile(r"\b(x86_64h|x86_64|arm64e|arm64_32|arm64|armv7[sk]?|armv6|i386|ppc64|ppc)\b")


def find(line: str) -> tuple[re.Match | None, re.Match | None]:
    """The start of a dyld error on ``line`` (and a dlopen before it), or (None, None)."""
    d = DLOPEN.search(line)
    m = STARTS.search(line, d.end() if d else 0) or DYLD3_DEPENDENT.search(line) or DYLD3_SYMBOL.search(line)
    if m is None and d is None:
        return None, None
    if d is not None and m is None:  # dlopen's own reason: one of dyld's, or not a loader's message at all
        rest = line[d.end():]
        if not rest.startswith(("tried: ", "image not found", "no suitable image found", "Library not loaded",
                                "Symbol not found", "symbol not found in flat", "file not found", "code signature")):
            return None, None
    return d, m


def read(lines: list[str], i: int, d: re.Match | None, m: re.Match | None) -> tuple[LoadError, int]:
    """The error that starts on ``lines[i]``; and the index of the line after it."""
    line = lines[i]
    pid_m = PID.search(line, 0, (d or m).start())  # "dyld[PID]: " ends where the message starts
    err = LoadError("dyld", "library-not-loaded", pid=int(pid_m.group(1)) if pid_m else None,
                    via="dlopen" if d else "launch")  # its line: the caller's (scan knows the input's numbering)
    start = (d or m).start()
    body = line[start:]
    first = line[m.end():] if m else line[d.end():]
    opened = _path(d.group(1)) if d is not None else None
    # the fields of the first line (a flattened message holds them all)
    parts = MARKS.split(first)
    head, fields = parts[0].strip(), list(zip(parts[1::2], parts[2::2]))
    if m is not None and m.re is not STARTS:  # dyld3: the whole message on one line
        _dyld3(err, m)
        fields_reason = "dyld3"
    elif m is None:  # dlopen(path, mode): <its own reason>
        err.cause, err.tried, err.have, err.need = _reason(head)
        fields_reason = head
    else:
        fields_reason = None
        if m.group("lib"):
            err.library = _path(head)
        elif m.group("sym"):
            err.kind, err.symbol = "symbol-not-found", _symbol(head)
            if m.group("lazy"):
                err.via, err.cause = "call", "lazy"
            else:
                err.cause = "undefined"
        elif m.group("flat"):
            err.kind, err.symbol, err.cause = "flat-namespace", _symbol(head), "undefined"
        elif m.group("uuid"):
            err.kind, err.library, err.cause = "missing-uuid", _path(head), "bad-file"
        elif m.group("cache"):
            err.kind, err.library, err.cause = "dyld-cache", m.group("cachepath"), "other"
        elif m.group("called"):  # a missing weak import called at run time (dyld4)
            err.kind, err.via, err.cause = "symbol-not-found", "call", "undefined"
        elif m.group("rootsym"):  # a root (an override of an OS library) lacks a symbol: a warning, set to 0xBAD4007
            err.kind, err.cause, err.symbol = "symbol-not-found", "undefined", m.group("rootsym")
            err.library, err.requester = m.group("rootlib"), m.group("rootreq")
        elif m.group("insert"):  # DYLD_INSERT_LIBRARIES
            err.library, err.via = m.group("inserted") or m.group("inserted2"), "insert"
            reason = line[m.end():].strip()
            if reason:
                err.cause, err.tried, err.have, err.need = _reason(reason)
                fields_reason = reason
    message = [body.rstrip()]
    j = i + 1
    did_find = "Did find:" in first
    reason_open = False
    while j < len(lines):
        nxt = lines[j]
        c = CONTINUES.match(nxt)
        if c:
            fields.append((c.group(1), c.group(2)))
            did_find = did_find or "Did find:" in c.group(2)
            reason_open = c.group(1) == "Reason" and _unbalanced(c.group(2))
        elif reason_open and nxt.strip():
            name, value = fields[-1]
            # wrapped inside a quoted path: the break was no character of it; else at a space
            sep = "" if _in_quote(value) else " "
            fields[-1] = (name, value.rstrip() + sep + nxt.strip())
            reason_open = _unbalanced(fields[-1][1])
        elif did_find and DID_FIND.match(nxt) and nxt[:1].isspace():
            p = DID_FIND.match(nxt)
            err.tried.append((p.group(1), p.group(2)))
        elif IN_PROGRAM.match(nxt) and fields:
            err.program = IN_PROGRAM.match(nxt).group(1)
        elif TERMINATED.match(nxt):
            pass
        elif AGAIN.match(nxt) and err.via == "insert":  # dyld4 prints the inserted dylib's tried list again
            pass
        elif err.kind == "missing-uuid" and UUID_AGAIN.match(nxt):  # and the LC_UUID error alone, again
            pass
        else:
            break
        message.append(nxt.rstrip())
        j += 1
    for name, value in fields:
        value = value.strip()
        if name == "Referenced from":
            err.requester = _path(value)
        elif name == "Expected in":
            if value == "flat namespace":
                err.kind = "flat-namespace" if err.kind == "symbol-not-found" else err.kind
            else:
                err.library = _path(value)
        elif name == "Reason":
            fields_reason = value
            cause, tried, have, need = _reason(value)
            err.cause, err.have, err.need = cause, have, need
            err.tried = tried + err.tried
    if err.tried:  # every path tried, from the Reason or dyld2's "Did find:" lines: the worst says why
        err.cause = _worst(r for _p, r in err.tried)
        for _p, r in err.tried:
            h, n = _archs(r)
            err.have, err.need = err.have or h, err.need or n
    if opened is not None:  # what dlopen was asked for: the library it failed, or the image that needed a symbol
        if err.kind == "library-not-loaded":
            err.library = err.library or opened
        else:
            err.requester = err.requester or opened
    if err.kind == "library-not-loaded" and err.cause == "other" and fields_reason is None:
        err.cause = "missing"
    err.message = "\n".join(message)
    return err, j


def _dyld3(err: LoadError, m: re.Match) -> None:
    g = m.groupdict()
    if m.re is DYLD3_DEPENDENT:
        err.library, err.requester = g["lib"], g["req"]
        t = DYLD3_TRIED.search(g["rest"] or "")
        why = "didn't find" if "didn't find" in (g["rest"] or "") else "invalid" if "invalid" in (g["rest"] or "") else ""
        err.tried = [(p, why) for p in re.findall(r"'([^']*)'", t.group(1))] if t else []
        err.cause = "bad-file" if why == "invalid" else "missing"
        return
    err.kind, err.symbol, err.cause = "symbol-not-found", g["sym"], "undefined"
    if g.get("flatreq") is not None:
        err.kind, err.requester = "flat-namespace", g["flatreq"]
    else:
        err.library, err.requester = g.get("lib"), g.get("req") or g.get("weakreq")


def _in_quote(text: str) -> bool:
    """Whether a tried list ends inside one of its quoted paths (quotes outside brackets open and close them)."""
    depth, inside = 0, False
    for ch in text[text.find("tried:"):] if "tried:" in text else "":
        if ch == "(" and not inside:
            depth += 1
        elif ch == ")" and not inside:
            depth -= 1
        elif ch == "'" and depth == 0:
            inside = not inside
    return inside


def _unbalanced(text: str) -> bool:
    """Whether a Reason is cut short (a terminal or a page wrapped it): a bracket left open, or a
    tried list that ends on its separator or inside a quoted path."""
    t = text.rstrip()
    if t.count("(") > t.count(")") or t.endswith((",", "tried:")):
        return True
    return t.startswith("tried:") and not t.endswith(")")


def _path(text: str) -> str:
    text = BUILT_FOR.sub("", UUID_PART.sub("", text.strip())).strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def _symbol(text: str) -> str:
    text = text.strip()
    if len(text) > 1 and (text[0], text[-1]) in (("(", ")"), ("'", "'"), ('"', '"')):
        text = text[1:-1]
    return text


def parse_tried(text: str) -> tuple[list[tuple[str, str]], str]:
    """dyld4's ``tried: 'path' (reason), 'path' (reason)`` as pairs; and what follows them.
    A reason holds brackets and quotes of its own (``(have 'arm64', need 'x86_64')``,
    ``code signature in <…> '/x' not valid``): it ends where its bracket closes."""
    out = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " ,":
            i += 1
        if i >= n or text[i] != "'":
            break
        j = text.find("' (", i + 1)
        if j < 0:
            break
        depth, k = 0, j + 2
        for k in range(j + 2, n):
            if text[k] == "(":
                depth += 1
            elif text[k] == ")":
                depth -= 1
                if depth == 0:
                    break
        if depth:
            out.append((text[i + 1:j], text[j + 3:].rstrip(")")))
            return out, ""
        out.append((text[i + 1:j], text[j + 3:k]))
        i = k + 1
    return out, text[i:].strip()


def _reason(text: str) -> tuple[str, list, list, list]:
    """(cause, tried, have, need) of a Reason (or of dlopen's own words)."""
    text = text.strip()
    tried: list = []
    if text.startswith("tried: "):
        tried, _rest = parse_tried(text[7:])
        cause = _worst(r for _p, r in tried) if tried else "other"
    elif text.startswith("no LC_RPATH's "):  # "found" (dyld-1122), "used.  They may be invalid …" (dyld-1231)
        cause = "no-rpath"
    elif "Incompatible library version" in text:
        cause = "old-version"
    elif text.startswith("no suitable image found"):
        cause = "other"  # the Did find lines say which
    else:
        cause = reason_cause(text)
    have, need = [], []
    for _p, r in tried or [("", text)]:
        h, n = _archs(r)
        if h or n:
            have, need = h, n
            break
    return cause, tried, have, need


ORDER = ("code-signature", "wrong-arch", "wrong-platform", "bad-file", "sandbox", "old-version", "no-rpath", "missing", "other")


def _worst(reasons) -> str:
    """The cause a list of tried paths comes to: a file that was there but refused says
    more than the paths where nothing was."""
    found = {reason_cause(r) for r in reasons}
    return next((c for c in ORDER if c in found), "other")


def reason_cause(reason: str) -> str:
    r = reason.lower()
    if "signature" in r or "code signing" in r or "not valid for use in process" in r:
        return "code-signature"
    if ("incompatible architecture" in r or "wrong architecture" in r or "incompatible cpu" in r
            or "missing compatible architecture" in r or "no matching architecture" in r):
        return "wrong-arch"
    if "platform" in r or "simulator" in r:
        return "wrong-platform"
    if ("not a mach-o file" in r or "not a file" in r or "file too short" in r or "malformed" in r
            or "unknown file type" in r or "load command" in r or r == "invalid"):  # dyld3: "tried but invalid"
        return "bad-file"
    if ("sandbox" in r or "hardened" in r or "security policy" in r or "not allowed" in r
            or "protected system dylib" in r or "restricted" in r):
        return "sandbox"
    if ("no such file" in r or "image not found" in r or "not in dyld cache" in r or "file not found" in r
            or "didn't find" in r):
        return "missing"
    return "other"


def _archs(reason: str) -> tuple[list, list]:
    """(have, need) of an architecture reason; a message cut after "have …" still says what the file had."""
    i = reason.find("have ")
    if i < 0:
        return [], []
    j = reason.find("need ", i)
    if j < 0:
        return ARCH.findall(reason[i:]), []
    return ARCH.findall(reason[i:j]), ARCH.findall(reason[j:])
