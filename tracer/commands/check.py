"""gotrace check: a binary against the rules a CI holds it to (version floors, link mode, Mach-O)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import JsonOpt


def check_command(
    files: Annotated[list[Path], typer.Argument(help="The binaries to check (ELF, Mach-O, fat).",
                                                show_default=False, metavar="FILE…")],
    glibc: Annotated[Optional[str], typer.Option("--glibc", help="The oldest glibc it must run with: "
                     "fail on any symbol@GLIBC_x.y newer.", metavar="X.Y", show_default=False)] = None,
    glibcxx: Annotated[Optional[str], typer.Option("--glibcxx", help="The same for libstdc++'s GLIBCXX_ "
                       "versions.", metavar="X.Y.Z", show_default=False)] = None,
    cxxabi: Annotated[Optional[str], typer.Option("--cxxabi", help="The same for CXXABI_ versions.",
                      metavar="X.Y.Z", show_default=False)] = None,
    gcc: Annotated[Optional[str], typer.Option("--gcc", help="The same for libgcc_s's GCC_ versions.",
                   metavar="X.Y.Z", show_default=False)] = None,
    link: Annotated[Optional[str], typer.Option("--link", help="The link mode it must have.",
                    metavar="static|static-pie|dynamic", show_default=False)] = None,
    needed_allow: Annotated[Optional[str], typer.Option("--needed-allow", help="The only libraries it may "
                            "need (DT_NEEDED), comma-separated.", metavar="LIB,…", show_default=False)] = None,
    bind_now: Annotated[Optional[str], typer.Option("--bind-now", help="require or forbid binding every symbol "
                        "at load.", metavar="require|forbid", show_default=False)] = None,
    go_setting: Annotated[Optional[list[str]], typer.Option("--go-setting", help="A Go build setting it must "
                          "have, repeatable: CGO_ENABLED=0, -tags=netgo (tags: must include).",
                          metavar="KEY=VALUE", show_default=False)] = None,
    macos: Annotated[Optional[str], typer.Option("--macos", help="The oldest macOS it must run on "
                     "(LC_BUILD_VERSION minos).", metavar="X.Y", show_default=False)] = None,
    arch: Annotated[Optional[str], typer.Option("--arch", help="Architectures a Mach-O (fat) file must "
                    "hold, comma-separated.", metavar="A,…", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Gate binaries in CI: version floors, link mode, Mach-O floors.

    Static: the files are read, never run. Without rules it reports what each
    file demands: every versioned library's floor (the highest version it
    needs, and the symbols that need it), the link mode, DT_NEEDED,
    bind-now and where it comes from, a Go binary's build settings; for
    Mach-O each slice's LC_UUID and minimum macOS. Examples:

      gotrace check ./server --glibc 2.28
      gotrace check ./server --link static --go-setting CGO_ENABLED=0
      gotrace check ./app --needed-allow libc.so.6,libm.so.6 --bind-now forbid
      gotrace check ./tool-darwin --macos 12.0 --arch arm64,x86_64
      gotrace check --json ./server | jq '.files[].floors'

    Exits 1 when a rule fails, each failure on one line: the rule, the file,
    the culprits (every symbol@VERSION above the target, not just the first).
    A Mach-O without LC_UUID always fails: macOS 26's dyld refuses it.
    """
    from ..binary.gates import FAMILIES, LINK_MODES, Rules, check_file, version_tuple
    from ..errors import GotraceError
    from ..render.gates import render_checks
    from .options import stdout_console

    rules = Rules()
    for flag, value in (("glibc", glibc), ("glibcxx", glibcxx), ("cxxabi", cxxabi), ("gcc", gcc)):
        if value is not None:
            rules.max_versions[FAMILIES[flag]] = version_tuple(value, f"--{flag}")
    if link is not None and link not in LINK_MODES:
        raise GotraceError(f"--link takes one of {', '.join(LINK_MODES)}, not {link!r}")
    rules.link = link
    if needed_allow is not None:
        rules.needed_allow = [x.strip() for x in needed_allow.split(",") if x.strip()]
    if bind_now is not None and bind_now not in ("require", "forbid"):
        raise GotraceError(f"--bind-now takes require or forbid, not {bind_now!r}")
    rules.bind_now = bind_now
    for item in go_setting or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GotraceError(f"--go-setting takes KEY=VALUE (CGO_ENABLED=0, -tags=netgo), not {item!r}")
        rules.go_settings[key] = value
    if macos is not None:
        rules.macos = version_tuple(macos, "--macos")
    if arch is not None:
        from ..arch import canonical

        rules.archs = [canonical(a) or a for a in arch.split(",") if a.strip()]
    results = [check_file(str(f), rules) for f in files]
    if as_json:
        sys.stdout.write(json.dumps({"files": [r.as_dict() for r in results],
                                     "ok": not any(r.failures for r in results)}, indent=2) + "\n")
    else:
        render_checks(results, stdout_console())
    if any(r.failures for r in results):
        raise typer.Exit(1)
