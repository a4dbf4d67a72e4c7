"""`gotrace check`: what a binary demands of the machines it will run on, judged against a CI's rules.

Static, from the file alone. For ELF: every versioned library's floor (the highest
version DT_VERNEED asks of it, and the symbols that ask for it: the one number
behind "version `GLIBC_2.34' not found"), the link mode (static, static-pie,
dynamic: PT_INTERP), DT_NEEDED, bind-now and where it comes from (DF_BIND_NOW,
DF_1_NOW, DT_BIND_NOW); for Go binaries the build settings of their build info
(CGO_ENABLED, -ldflags, -tags ...). For Mach-O, per slice: LC_UUID (macOS 26's dyld
refuses a binary without it), the minimum OS (LC_BUILD_VERSION's minos, the Mach-O
floor) and the architectures of a fat file.

Each rule that fails is one Failure: the rule, what the file has, the culprits.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from ..errors import GotraceError
from .sniff import BadBinary

FAMILIES = {"glibc": "GLIBC", "glibcxx": "GLIBCXX", "cxxabi": "CXXABI", "gcc": "GCC"}
LINK_MODES = ("static", "static-pie", "dynamic")


def version_tuple(text: str, what: str) -> tuple[int, ...]:
    """"2.28" -> (2, 28); a one-line error for anything else."""
    try:
        parts = tuple(int(x) for x in text.strip().split("."))
    except ValueError:
        parts = ()
    if not parts or any(p < 0 for p in parts):
        raise GotraceError(f"{what} takes a version like 2.28, not {text!r}")
    return parts


def dotted(v: tuple[int, ...] | None) -> str:
    """(13, 0, 0) -> 13.0, (2, 28) -> 2.28, (10, 15, 2) -> 10.15.2: as readelf and llvm-objdump write them."""
    if not v:
        return "?"
    v = tuple(v)
    while len(v) > 2 and v[-1] == 0:
        v = v[:-1]
    return ".".join(map(str, v))


@dataclass
class Rules:
    max_versions: dict = field(default_factory=dict)  # family (GLIBC ...) -> the newest version allowed
    link: str | None = None  # static | static-pie | dynamic
    needed_allow: list | None = None  # DT_NEEDED names allowed (None: any)
    bind_now: str | None = None  # "require" | "forbid"
    go_settings: dict = field(default_factory=dict)  # build setting -> value (-tags: must include it)
    macos: tuple | None = None  # the oldest macOS it must run on
    archs: list | None = None  # architectures a (fat) file must hold


@dataclass
class Failure:
    rule: str
    message: str
    culprits: list = field(default_factory=list)


@dataclass
class FileCheck:
    path: str
    format: str
    facts: dict
    failures: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"path": self.path, "format": self.format, **self.facts,
                "failures": [asdict(f) for f in self.failures], "ok": not self.failures}


def check_file(path: str, rules: Rules) -> FileCheck:
    from .open import read_binary

    if not os.path.exists(path):
        raise GotraceError(f"no such file: {path}")
    try:
        fmt, data = read_binary(path)
    except BadBinary as exc:
        raise GotraceError(str(exc)) from None
    if fmt == "ELF":
        return _elf(path, data, rules)
    return _macho(path, rules)


def _elf(path: str, data: bytes, rules: Rules) -> FileCheck:
    from .elf import DF_1_NOW, DF_1_PIE, DF_BIND_NOW, read_elf
    from .elf_versions import version_needs

    img = read_elf(path, data)
    needs = version_needs(path, data)
    dyn = _dyn_flags(path, data)
    if img.interpreter:
        mode = "dynamic"
    elif not dyn["dynamic"]:  # no PT_INTERP nor PT_DYNAMIC: ld.so takes no part, even in an ET_DYN file
        mode = "static"  # (the kernel runs it alone; file(1): "statically linked")
    elif dyn["flags_1"] & DF_1_PIE or img.pie:
        mode = "static-pie"
    elif img.file_type == "shared-object":
        mode = "shared-object"
    else:
        mode = "static"
    sources = (["DT_FLAGS: DF_BIND_NOW"] if dyn["flags"] & DF_BIND_NOW else []) \
        + (["DT_FLAGS_1: DF_1_NOW"] if dyn["flags_1"] & DF_1_NOW else []) \
        + (["DT_BIND_NOW"] if dyn["bind_now_tag"] else [])
    floors: dict[str, dict] = {}
    private = []
    for n in needs:
        if n.number is None:
            private.append({"library": n.library, "version": n.version, "symbols": n.symbols})
            continue
        key = f"{n.library} {n.family}"
        cur = floors.get(key)
        if cur is None or n.number > cur["_number"]:
            floors[key] = {"library": n.library, "family": n.family, "version": n.version, "symbols": n.symbols,
                           "_number": n.number}
    facts = {
        "arch": img.arch, "link_mode": mode, "interpreter": img.interpreter,
        "needed": [lib.name for lib in img.libraries],
        "bind_now": bool(sources), "bind_now_from": sources,
        "floors": [{k: v for k, v in f.items() if k != "_number"} for f in floors.values()],
        "private_versions": private,
        "versions": [{"library": n.library, "version": n.version, "symbols": n.symbols} for n in needs],
        "go": _go(img.go),
    }
    out = FileCheck(path, "ELF", facts)
    for family, limit in rules.max_versions.items():
        above = [(n, s) for n in needs if n.family == family and n.number > limit for s in (n.symbols or ["(none)"])]
        if above:
            out.failures.append(Failure(family.lower(), f"needs {family} newer than {dotted(limit)}",
                                        [f"{s}@{n.version}" for n, s in above]))
    if rules.link and mode != rules.link:
        out.failures.append(Failure("link", f"is {mode}, not {rules.link}",
                                    [img.interpreter] if img.interpreter else []))
    if rules.needed_allow is not None:
        extra = [lib for lib in facts["needed"] if lib not in rules.needed_allow]
        if extra:
            out.failures.append(Failure("needed", "needs libraries outside the allowed set", extra))
    _bind_now_rule(out, rules, bool(sources), sources)
    _go_rules(out, rules, facts["go"])
    return out


def _dyn_flags(path: str, data: bytes) -> dict:
    from .elf import PT_DYNAMIC, _dynamic, _Header, _segments

    hdr = _Header(path, data)
    where = next(((s.fileoff, s.filesize) for t, s in _segments(path, data, hdr) if t == PT_DYNAMIC), None)
    dyn = _dynamic(path, data, where, hdr)
    return {"dynamic": where is not None, "flags": dyn.get("DT_FLAGS", [0])[0],
            "flags_1": dyn.get("DT_FLAGS_1", [0])[0], "bind_now_tag": "DT_BIND_NOW" in dyn}


def _bind_now_rule(out: FileCheck, rules: Rules, now: bool, sources: list[str]) -> None:
    if rules.bind_now == "require" and not now:
        out.failures.append(Failure("bind-now", "binds lazily (no DF_BIND_NOW, DF_1_NOW or DT_BIND_NOW)"))
    elif rules.bind_now == "forbid" and now:
        out.failures.append(Failure("bind-now", "binds every symbol at load", sources))


def _go(info: dict | None) -> dict | None:
    if not info:
        return None
    return {"version": info.get("version"), "path": info.get("path"), "settings": info.get("settings") or {}}


def _go_rules(out: FileCheck, rules: Rules, go: dict | None) -> None:
    for key, want in rules.go_settings.items():
        if go is None:
            out.failures.append(Failure("go", f"has no Go build info, so no {key}"))
            continue
        have = go["settings"].get(key)
        if key == "-tags":
            tags = set((have or "").split(","))
            missing = [t for t in want.split(",") if t and t not in tags]
            if missing:
                out.failures.append(Failure("go", f"was built without -tags {','.join(missing)}",
                                            [f"-tags={have or ''}"]))
        elif have != want:
            out.failures.append(Failure("go", f"was built with {key}={have if have is not None else '(unset)'}, "
                                        f"not {want}", [f"{key}={have}"]))


def _macho(path: str, rules: Rules) -> FileCheck:
    from .macho_slices import slices
    from .open import open_image

    found = slices(path)
    if not found:
        raise GotraceError(f"{path}: a Mach-O file gotrace cannot read its slices from")
    try:
        go = _go(open_image(path).go)
    except (BadBinary, GotraceError):
        go = None
    facts = {"slices": [{"arch": s.arch, "uuid": s.uuid, "platform": s.platform,
                         "minos": dotted(s.minos) if s.minos else None} for s in found], "go": go}
    out = FileCheck(path, "Mach-O", facts)
    no_uuid = [s.arch or "?" for s in found if not s.uuid]
    if no_uuid:
        out.failures.append(Failure("uuid", "has no LC_UUID: macOS 26's dyld refuses to run it", no_uuid))
    if rules.macos:
        newer = [f"{s.arch}: {dotted(s.minos)}" for s in found if s.minos and s.minos[:len(rules.macos)] > rules.macos]
        if newer:
            out.failures.append(Failure("macos", f"needs a macOS newer than {dotted(rules.macos)}", newer))
    if rules.archs:
        have = {s.arch for s in found}
        missing = [a for a in rules.archs if a not in have]
        if missing:
            out.failures.append(Failure("arch", f"holds {', '.join(sorted(a for a in have if a))}, "
                                        f"not {', '.join(missing)}", missing))
    _go_rules(out, rules, go)
    return out
