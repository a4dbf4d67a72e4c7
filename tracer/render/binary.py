"""`gotrace inspect` and `gotrace stubs` for a terminal: an Image or a StubReport as rich text."""
from __future__ import annotations

from rich.console import Console

from ..binary.model import Image
from ..binary.stubs import StubReport
from .format import hex_or_dash as _hex, table


def _table(title: str, cols: list[str]):
    return table(title, cols, numeric=False)


def describe(img: Image) -> str:
    kind = img.file_type + (", PIE" if img.pie else "")
    return f"{img.format} {img.bits}-bit {img.endian}-endian {img.arch} {kind}"


def render_image(img: Image, console: Console, limit: int | None) -> None:
    console.print(f"[bold]{img.path}[/]: {describe(img)}")
    if len(img.slices) > 1:
        console.print(f"  slices         {', '.join(img.slices)} (showing {img.arch}; --arch picks another)")
    for note in img.notes:
        console.print(f"  [yellow]note[/]           {note}")
    console.print(f"  {'dylinker' if img.format == 'Mach-O' else 'interpreter':14} {img.interpreter or '- (static)'}")
    console.print(f"  {'LC_UUID' if img.format == 'Mach-O' else 'build-id':14} {img.uuid or '[yellow]none[/]'}")
    if img.format == "Mach-O":
        console.print(f"  code signature {'yes' if img.code_signature else 'no'}")
    else:
        lazy = sum(1 for i in img.imports if i.mode == "lazy")
        console.print(f"  binding        {'eager (BIND_NOW)' if img.bind_now else f'lazy PLT ({lazy} lazy slots)'}")
    console.print(f"  entry          {_hex(img.entry)}   link-time base {_hex(img.link_base)}   "
                  f"symbols {img.symbols:,}" + (f" (+{img.dynamic_symbols:,} dynamic)" if img.dynamic_symbols else ""))
    libs = ", ".join(l.name + ("" if l.kind == "needed" else f" ({l.kind})") for l in img.libraries)
    console.print(f"  libraries      {libs or '-'}")
    if img.go:
        g = img.go
        settings = g.get("settings") or {}
        keys = [k for k in ("-buildmode", "CGO_ENABLED", "GOOS", "GOARCH", "-ldflags") if k in settings]
        main = (g.get("main") or {}).get("path") or g.get("path") or ""
        console.print(f"  Go             {g.get('version') or g.get('note')} {main} "
                      f"({', '.join(f'{k}={settings[k]}' for k in keys)})")
    seg = _table("segments", ["name", "vmaddr", "vmsize", "fileoff", "filesize", "prot"])
    for s in img.segments:
        seg.add_row(s.name, _hex(s.vmaddr), f"{s.vmsize:#x}", f"{s.fileoff:#x}", f"{s.filesize:#x}", s.prot)
    console.print(seg)
    imp = _table(f"imports ({len(img.imports):,} bound slots)", ["symbol", "library", "slot", "section", "mode", "type"])
    shown = img.imports if limit is None else img.imports[:limit]
    for i in shown:
        imp.add_row(i.symbol + (f"@{i.version}" if i.version else ""), i.library or "-", _hex(i.address),
                    i.section or "-", i.mode + (" weak" if i.weak else ""), i.reloc)
    console.print(imp)
    if len(shown) < len(img.imports):
        console.print(f"  … {len(img.imports) - len(shown):,} more (--all or --json shows every slot)")


def render_stubs(rep: StubReport, console: Console, limit: int | None) -> None:
    console.print(f"[bold]{rep.path}[/]: {rep.format} {rep.arch}")
    if not rep.sections:
        console.print("  no stub or pointer sections (a static binary?)")
    for sec in rep.sections:
        if not sec.slots:
            console.print(f"[bold]{sec.name}[/] ({sec.kind}, {_hex(sec.address)}, {sec.size:#x} bytes)")
            continue
        t = _table(f"{sec.name} ({sec.kind}, {_hex(sec.address)}, {sec.size:#x} bytes, {len(sec.slots)} slots)",
                   ["slot", "symbol", "file holds", "loader"])
        rows = sec.slots if limit is None else sec.slots[:limit]
        for s in rows:
            t.add_row(_hex(s.address), s.symbol or "-", s.value, s.action)
        console.print(t)
        if len(rows) < len(sec.slots):
            console.print(f"  … {len(sec.slots) - len(rows):,} more slots (--all or --json shows every one)")
    if rep.anomalies:
        console.print(f"[bold red]{len(rep.anomalies)} anomal{'y' if len(rep.anomalies) == 1 else 'ies'}[/]")
        for a in rep.anomalies:
            console.print(f"  [red]{a.kind}[/] {a.where}: {a.reason}")
    else:
        console.print("[green]no anomalies[/]")
