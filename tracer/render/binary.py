"""`gotrace inspect` and `gotrace stubs` for a terminal: an Image or a StubReport as rich text.

Tables go through format.print_table: symbols, addresses and relocation types
are never broken, and a pipe gets plain rows (``inspect prog --all | grep SYM``).
"""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..binary.model import Image
from ..binary.stubs import StubReport
from .format import ID, NUM, TEXT, hex_or_dash as _hex, plural, print_table


def describe(img: Image) -> str:
    kind = img.file_type + (", PIE" if img.pie else "")
    return f"{img.format} {img.bits}-bit {img.endian}-endian {img.arch} {kind}"


# files no loader loads: saying "static" of them would give a wrong reason for their empty tables
NOT_LOADED = {"relocatable": "a relocatable object: the linker combines it into a program, no loader binds in it",
              "core": "a core dump: a process's memory, not a program to load"}


def _static(img: Image) -> bool:
    return not img.interpreter and not img.libraries and not img.imports and img.file_type not in NOT_LOADED


def render_image(img: Image, console: Console, limit: int | None) -> None:
    console.print(f"[bold]{escape(img.path)}[/]: {describe(img)}")
    if len(img.slices) > 1:
        console.print(f"  slices         {escape(', '.join(img.slices))} (showing {escape(img.arch)}; "
                      "--arch picks another)")
    for note in img.notes:
        console.print(f"  [yellow]note[/]           {escape(note)}")
    console.print(f"  {'dylinker' if img.format == 'Mach-O' else 'interpreter':14} "
                  f"{escape(img.interpreter or ('- (static)' if _static(img) else '-'))}")
    console.print(f"  {'LC_UUID' if img.format == 'Mach-O' else 'build-id':14} {img.uuid or '[yellow]none[/]'}")
    if img.format == "Mach-O":
        console.print(f"  code signature {'yes' if img.code_signature else 'no'}")
    elif img.file_type in NOT_LOADED:
        console.print(f"  binding        none: {NOT_LOADED[img.file_type]}")
    elif _static(img):
        console.print("  binding        static: no dynamic linker, nothing is bound at load or run time")
    else:
        lazy = sum(1 for i in img.imports if i.mode == "lazy")
        console.print("  binding        " + ("eager (BIND_NOW)" if img.bind_now else f"lazy PLT ({plural(lazy, 'lazy slot')})"))
    console.print(f"  entry          {_hex(img.entry)}   link-time base {_hex(img.link_base)}   "
                  f"symbols {img.symbols:,}" + (f" (+{img.dynamic_symbols:,} dynamic)" if img.dynamic_symbols else ""))
    libs = ", ".join(l.name + ("" if l.kind == "needed" else f" ({l.kind})") for l in img.libraries)
    console.print(f"  libraries      {escape(libs or '-')}")
    if img.go:
        g = img.go
        settings = g.get("settings") or {}
        keys = [k for k in ("-buildmode", "CGO_ENABLED", "GOOS", "GOARCH", "-ldflags") if k in settings]
        main = (g.get("main") or {}).get("path") or g.get("path") or ""
        console.print("  Go             " + escape(f"{g.get('version') or g.get('note')} {main} "
                                                 f"({', '.join(f'{k}={settings[k]}' for k in keys)})"))
    print_table(console, "segments", [("name", ID), ("vmaddr", ID), ("vmsize", NUM), ("fileoff", NUM),
                                      ("filesize", NUM), ("prot", ID)],
                [[g.name, _hex(g.vmaddr), f"{g.vmsize:#x}", f"{g.fileoff:#x}", f"{g.filesize:#x}", g.prot]
                 for g in img.segments])
    if not img.imports:
        console.print("imports: none" + (" (statically linked)" if _static(img) else ""))
        return
    shown = img.imports if limit is None else img.imports[:limit]
    print_table(console, f"imports ({plural(len(img.imports), 'bound slot')})",
                [("symbol", ID), ("library", TEXT), ("slot", ID), ("section", ID), ("mode", ID), ("type", ID)],
                [[i.symbol + (f"@{i.version}" if i.version else ""), i.library or "-", _hex(i.address),
                  i.section or "-", i.mode + (" weak" if i.weak else ""), i.reloc] for i in shown])
    if len(shown) < len(img.imports):
        console.print(f"  … {len(img.imports) - len(shown):,} more (--all or --json shows every slot)")


def render_stubs(rep: StubReport, console: Console, limit: int | None) -> None:
    console.print(f"[bold]{escape(rep.path)}[/]: {rep.format} {rep.arch}")
    if not rep.sections:
        why = NOT_LOADED.get(rep.file_type)
        console.print(f"  no stub or pointer sections ({why or 'a static binary?'})")
    for sec in rep.sections:
        if not sec.slots:
            console.print(f"[bold]{escape(sec.name)}[/] ({sec.kind}, {_hex(sec.address)}, {sec.size:#x} bytes)")
            if sec.note:
                console.print(f"  [yellow]note[/] {escape(sec.note)}")
            continue
        rows = sec.slots if limit is None else sec.slots[:limit]
        print_table(console, f"{sec.name} ({sec.kind}, {_hex(sec.address)}, {sec.size:#x} bytes, "
                             f"{plural(len(sec.slots), 'slot')})",
                    [("slot", ID), ("symbol", ID), ("file holds", TEXT), ("loader", TEXT)],
                    [[_hex(x.address), x.symbol or "-", x.value, x.action] for x in rows])
        if len(rows) < len(sec.slots):
            console.print(f"  … {len(sec.slots) - len(rows):,} more slots (--all or --json shows every one)")
        if sec.note:
            console.print(f"  [yellow]note[/] {escape(sec.note)}")
    if rep.anomalies:
        console.print(f"[bold red]{len(rep.anomalies)} anomal{'y' if len(rep.anomalies) == 1 else 'ies'}[/]")
        for a in rep.anomalies:
            console.print(f"  [red]{a.kind}[/] {escape(a.where)}: {escape(a.reason)}")
    else:
        console.print("[green]no anomalies[/]")
