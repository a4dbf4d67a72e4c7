"""GNU readelf's and objdump's account of ELF files of any architecture, and the pinned corpus.

Nothing from tracer is imported: each function parses the tools' text, so a test that
compares gotrace with it compares two separate readings of the file. readelf and objdump
are binutils-multiarch's (setup.sh installs it: Debian's plain binutils disassembles x86
only); llvm-objdump-16 disassembles what GNU objdump gives no ``sym@plt`` labels for
(lld's ARM PLT, LoongArch).
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "tests" / "fixtures" / "elf-corpus.txt"
CORPUS = Path(os.environ.get("GOTRACE_FIXTURES", Path.home() / ".cache" / "gotrace" / "fixtures")) / "elf"


def manifest() -> list[tuple[str, str, str, str]]:
    """(kind, sha256, where, what) per line of tests/fixtures/elf-corpus.txt."""
    rows = []
    for line in MANIFEST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            kind, sha, where, what = line.split()
            rows.append((kind, sha, where, what))
    return rows


def unpacked_dir(kind: str, where: str, what: str) -> Path:
    """Where fetch-elf-corpus.sh unpacks a manifest entry."""
    if kind in ("deb", "tool"):
        return (CORPUS / ("debian" if kind == "deb" else "tools") / where.split("/", 1)[1]
                / Path(what).name.split("_", 1)[0])
    return CORPUS / where.split("==", 1)[0]


def missing() -> list[str]:
    """Manifest entries not unpacked (or unpacked from another sha256)."""
    out = []
    for kind, sha, where, what in manifest():
        stamp = unpacked_dir(kind, where, what) / ".sha256"
        if not stamp.is_file() or stamp.read_text().strip() != sha:
            out.append(what)
    return out


def corpus_files() -> list[Path]:
    """Every ELF file of the unpacked corpus (symlinks left out: each file once; the tools not)."""
    out = []
    for kind, _sha, where, what in manifest():
        base = unpacked_dir(kind, where, what)
        if kind == "tool" or not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.is_symlink():
                with open(p, "rb") as fh:
                    if fh.read(4) == b"\x7fELF":
                        out.append(p)
    return out


def run(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True)


@dataclass
class Reloc:
    offset: int
    type: str  # readelf's Type, with MIPS64's Type2/Type3 joined by "/" (trailing R_MIPS_NONEs left out)
    symbol: str | None  # the name without its version
    version: str | None  # after a single "@" (hidden or needed), None for "@@" (a default definition)
    table: str  # the section name, or readelf -D's 'PLT' / 'RELA' / 'REL'


@dataclass
class Readelf:
    """What ``readelf -W -h -S -l -d -r --dyn-syms -V -A`` says of one file."""

    path: Path
    header: dict = field(default_factory=dict)
    sections: list = field(default_factory=list)  # dicts: name type addr off size es flags
    dynamic: dict = field(default_factory=dict)  # tag -> [value text]
    relocs: list = field(default_factory=list)
    needed_versions: dict = field(default_factory=dict)  # version index -> (library file, version) (DT_VERNEED)
    has_dynamic: bool = False  # a PT_DYNAMIC program header: something for ld.so to do
    dynsyms: list = field(default_factory=list)  # dicts: num value type ndx name version other
    mips_global_got: list = field(default_factory=list)  # dicts: address initial symval type ndx name
    errors: list = field(default_factory=list)  # readelf's Error: lines and "possibly corrupt" warnings

    @property
    def machine(self) -> str:
        return self.header.get("Machine", "")

    @property
    def bind_now(self) -> bool:
        flags = " ".join(self.dynamic.get("FLAGS", []))
        flags_1 = " ".join(self.dynamic.get("FLAGS_1", []))
        return "BIND_NOW" in self.dynamic or "BIND_NOW" in flags.split() or "NOW" in flags_1.replace(":", " ").split()

    def section(self, name: str) -> dict | None:
        return next((s for s in self.sections if s["name"] == name), None)

    def jmprel_table(self) -> str | None:
        """The name readelf lists DT_JMPREL's relocations under."""
        if "JMPREL" not in self.dynamic:
            return None
        if not self.sections:
            return "PLT"
        at = int(self.dynamic["JMPREL"][0], 16)
        return next((s["name"] for s in self.sections if s["addr"] == at and s["type"] in ("REL", "RELA")), None)


def _hex(text: str) -> int:
    return int(text, 16)


def readelf(path) -> Readelf:
    out = Readelf(Path(path))
    res = run("readelf", "-W", "-h", "-S", "-l", "-d", "--dyn-syms", "-V", "-A", path)
    out.errors = [line for line in res.stderr.splitlines() if "Error" in line or "corrupt" in line]
    text = res.stdout
    head = text.split("ELF Header:", 1)[-1].split("\n\n", 1)[0]
    for line in head.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            out.header[key.strip()] = value.strip()
    for line in text.splitlines():
        m = re.match(r"^\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+(.*)$", line)
        if m and not line.strip().startswith("[Nr]"):
            rest = m.group(4).split()
            if len(rest) in (7, 8) and all(re.fullmatch(r"[0-9a-f]+", x) for x in rest[:4]):
                flags = rest[4] if len(rest) == 8 else ""
                out.sections.append({"index": int(m.group(1)), "name": m.group(2), "type": m.group(3),
                                     "addr": _hex(rest[0]), "off": _hex(rest[1]), "size": _hex(rest[2]),
                                     "es": _hex(rest[3]), "flags": flags})
        m = re.match(r"^\s*0x[0-9a-f]+\s+\((\w+)\)\s+(.*)$", line)
        if m:
            out.dynamic.setdefault(m.group(1), []).append(m.group(2).strip())
    out.needed_versions = _needed_versions(text)
    out.has_dynamic = bool(re.search(r"^\s+DYNAMIC\s", text, re.M))
    out.dynsyms = _dynsyms(text)
    out.mips_global_got = _mips_global_got(text)
    out.relocs = _relocs(path, bool(out.sections))
    if any(s["type"] in ANDROID_PACKED for s in out.sections):
        out.relocs += llvm_android_relocs(path, out)
    return out


ANDROID_PACKED = ("LOOS+0x1", "LOOS+0x2")  # SHT_ANDROID_REL, SHT_ANDROID_RELA: GNU readelf does not unpack them


def llvm_android_relocs(path, want: "Readelf") -> list[Reloc]:
    """Android's packed relocations as llvm-readelf-16 -r unpacks them. Their section headers
    link no symbol table (sh_link 0), so llvm-readelf names no symbol: it reads a copy whose
    headers link .dynsym (the bytes ld.so reads are not touched)."""
    import struct
    import tempfile

    data = bytearray(Path(path).read_bytes())
    wide = want.header["Class"] == "ELF64"
    order = "<" if "little" in want.header["Data"] else ">"
    shoff = struct.unpack_from(order + ("Q" if wide else "I"), data, 40 if wide else 32)[0]
    shentsize = struct.unpack_from(order + "H", data, 58 if wide else 46)[0]
    dynsym = next(s["index"] for s in want.sections if s["type"] == "DYNSYM")
    packed = {s["name"] for s in want.sections if s["type"] in ANDROID_PACKED}
    for s in want.sections:
        if s["type"] in ANDROID_PACKED:
            struct.pack_into(order + "I", data, shoff + s["index"] * shentsize + (40 if wide else 24), dynsym)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "linked.so"
        copy.write_bytes(bytes(data))
        text = run("llvm-readelf-16", "-r", copy).stdout
    out = []
    table = None
    for line in text.splitlines():
        m = re.match(r"^Relocation section '([^']+)'", line)
        if m:
            table = m.group(1) if m.group(1) in packed else None
            continue
        m = RELOC_LINE.match(line)
        if table and m and m.group(3).startswith("R_"):
            name = m.group(5) or None
            sym, ver = _split_version(name) if name else (None, None)
            out.append(Reloc(_hex(m.group(1)), m.group(3), sym, ver, table))
    return out


def _needed_versions(text: str) -> dict[int, tuple[str, str]]:
    """Version index -> (library file, version name), from readelf -V's "Version needs"."""
    found: dict[int, tuple[str, str]] = {}
    block = text.split("Version needs section", 1)
    if len(block) < 2:
        return found
    lib = None
    for line in block[1].splitlines()[1:]:
        m = re.search(r"File: (\S+)", line)
        if m:
            lib = m.group(1)
            continue
        m = re.search(r"Name: (\S+)\s+Flags: .*Version: (\d+)", line)
        if m and lib:
            found[int(m.group(2))] = (lib, m.group(1))
        elif line.strip() == "" and found:
            break
    return found


def _split_version(name: str) -> tuple[str, str | None]:
    if "@@" in name:
        return name.split("@@", 1)[0], None
    if "@" in name:
        sym, ver = name.split("@", 1)
        return sym, ver
    return name, None


def _dynsyms(text: str) -> list[dict]:
    out = []
    block = text.split("Symbol table '.dynsym'", 1)
    if len(block) < 2:
        return out
    for line in block[1].splitlines()[2:]:
        m = re.match(r"^\s*(\d+):\s+([0-9a-f]+)\s+\S+\s+(\w+)\s+(\w+)\s+(\w+)(?:\s+\[([^\]]*)\])?\s+(\S+)\s*(\S*)"
                     r"(?: \((\d+)\))?", line)
        if not m:
            if out:
                break
            continue
        sym, ver = _split_version(m.group(8))
        out.append({"num": int(m.group(1)), "value": _hex(m.group(2)), "type": m.group(3), "bind": m.group(4),
                    "other": m.group(6) or "", "ndx": m.group(7), "name": sym, "version": ver,
                    "vindex": int(m.group(9)) if m.group(9) else None})
    return out


def _mips_global_got(text: str) -> list[dict]:
    out = []
    block = text.split(" Global entries:", 1)
    if len(block) < 2:
        return out
    for line in block[1].splitlines()[2:]:
        m = re.match(r"^\s+([0-9a-f]+)\s+-?\d+\(gp\)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+(\w+)\s+(\w+)\s+(\S+)", line)
        if not m:
            break
        out.append({"address": _hex(m.group(1)), "initial": _hex(m.group(2)), "symval": _hex(m.group(3)),
                    "type": m.group(4), "ndx": m.group(5), "name": _split_version(m.group(6))[0]})
    return out


RELOC_LINE = re.compile(r"^\s*([0-9a-f]+)\s+([0-9a-f]+)\s+(R_\w+|\S+)(?:\s+([0-9a-f]+)\s+(\S*)(?:\s+[-+]\s+[0-9a-f]+)?)?\s*$")


def _relocs(path, with_sections: bool) -> list[Reloc]:
    """Dynamic relocations: of the allocated REL/RELA sections, or readelf -D's tables."""
    text = run("readelf", "-W", "-r", *([] if with_sections else ["-D"]), path).stdout
    alloc = None
    if with_sections:
        alloc = {s["name"] for s in readelf_sections(path) if s["type"] in ("REL", "RELA") and "A" in s["flags"]}
    out: list[Reloc] = []
    table = None
    for line in text.splitlines():
        m = re.match(r"^Relocation section '([^']+)'", line) or re.match(r"^'(\w+)' relocation section", line)
        if m:
            table = m.group(1)
            continue
        if table is None or (alloc is not None and table not in alloc):
            continue
        m = re.match(r"^\s+Type([23]): (\S+)", line)
        if m and out:
            if m.group(2) != "R_MIPS_NONE":
                out[-1].type += "/" + m.group(2)
            continue
        m = RELOC_LINE.match(line)
        if not m or not m.group(3).startswith("R_"):
            continue
        name = m.group(5) or None
        sym, ver = _split_version(name) if name else (None, None)
        out.append(Reloc(_hex(m.group(1)), m.group(3), sym, ver, table))
    return out


def readelf_sections(path) -> list[dict]:
    return readelf_only_sections(run("readelf", "-W", "-S", path).stdout)


def readelf_only_sections(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+(.*)$", line)
        if m:
            rest = m.group(3).split()
            if len(rest) in (7, 8) and all(re.fullmatch(r"[0-9a-f]+", x) for x in rest[:4]):
                out.append({"name": m.group(1), "type": m.group(2), "addr": _hex(rest[0]), "size": _hex(rest[2]),
                            "es": _hex(rest[3]), "flags": rest[4] if len(rest) == 8 else ""})
    return out


# ---------------------------------------------------------------- PLT entries

def objdump_plt_labels(path, sections: list[str]) -> dict[str, list[tuple[int, str]]]:
    """GNU objdump's synthetic ``sym@plt`` labels (address, symbol) per section (the
    header's ``sym@plt-0x14`` and section labels left out)."""
    argv = ["objdump", "-d", "-w"]
    for s in sections:
        argv += ["-j", s]
    text = run(*argv, path).stdout
    out: dict[str, list[tuple[int, str]]] = {s: [] for s in sections}
    current = None
    for line in text.splitlines():
        m = re.match(r"^Disassembly of section (\S+):", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"^([0-9a-f]+) <(.+)>:$", line)
        if m and current in out:
            label = m.group(2)
            sym = re.fullmatch(r"(.+?)(?:@[^@]+)?@plt", label)
            if sym:
                out[current].append((_hex(m.group(1)), sym.group(1)))
    return out


def _llvm_lines(path, section: str) -> list[tuple[int, str, str]]:
    """(address, mnemonic, operands) of each instruction llvm-objdump-16 disassembles in ``section``."""
    text = run("llvm-objdump-16", "-d", "--no-show-raw-insn", "-j", section, path).stdout
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+([a-z][\w.]*)\s*(.*)$", line)
        if m:
            out.append((_hex(m.group(1)), m.group(2), m.group(3).split("//")[0].split("@")[0].strip()))
    return out


def _imm(text: str) -> int:
    return int(text.strip().lstrip("#"), 0)


def llvm_arm_plt(path) -> list[tuple[int, int]]:
    """(entry address, GOT slot) of ARM PLT entries from llvm-objdump-16's decoding: an entry
    starts at ``add r12, pc, #imm[, #rot]`` and loads ``ldr pc, [r12, #off]!``."""
    out = []
    ip = start = None
    for addr, mnem, ops in _llvm_lines(path, ".plt"):
        args = [a.strip() for a in ops.replace("[", "").replace("]", "").replace("!", "").split(",")]
        if mnem == "add" and args[:2] == ["r12", "pc"]:
            start, ip = addr, addr + 8 + _rotated(args[2:])
        elif mnem == "add" and args[:2] == ["r12", "r12"] and ip is not None:
            ip += _rotated(args[2:])
        elif mnem == "ldr" and args[:2] == ["pc", "r12"] and ip is not None:
            out.append((start, (ip + (_imm(args[2]) if len(args) > 2 else 0)) & 0xFFFFFFFF))
            ip = None
    return out


def _rotated(args: list[str]) -> int:
    value = _imm(args[0])
    if len(args) > 1:  # "#imm, #rot": imm rotated right by rot
        rot = _imm(args[1])
        value = ((value >> rot) | (value << (32 - rot))) & 0xFFFFFFFF if rot else value
    return value


def llvm_loongarch_plt(path) -> list[tuple[int, int]]:
    """(entry address, GOT slot): ``pcaddu12i $t3, hi`` then ``ld.d $t3, $t3, lo``."""
    out = []
    pending = None
    for addr, mnem, ops in _llvm_lines(path, ".plt"):
        args = [a.strip() for a in ops.split(",")]
        if mnem == "pcaddu12i" and args[0] == "$t3":
            pending = (addr, addr + (_imm(args[1]) << 12))
        elif mnem == "ld.d" and args[:2] == ["$t3", "$t3"] and pending:
            out.append((pending[0], (pending[1] + _imm(args[2])) & 0xFFFFFFFFFFFFFFFF))
            pending = None
    return out


def objdump_mips_stubs(path) -> list[tuple[int, int]]:
    """(stub address, dynamic symbol index) of .MIPS.stubs: each stub starts at its load of
    GOT[0] (``lw``/``ld t9,-32752(gp)``) and passes the index in t8 (``li t8,N`` /
    ``daddiu t8,zero,N``, or ``lui t8,H`` + ``ori t8,t8,L``)."""
    text = run("objdump", "-d", "-w", "-j", ".MIPS.stubs", path).stdout
    out = []
    start = hi = None
    for line in text.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+[0-9a-f]+\s+(\S+)\s+(.*)$", line)
        if not m:
            continue
        addr, mnem, ops = _hex(m.group(1)), m.group(2), m.group(3).replace(" ", "")
        if mnem in ("lw", "ld") and ops == "t9,-32752(gp)":
            start, hi = addr, None
        elif start is not None and mnem == "lui" and ops.startswith("t8,"):
            hi = _imm(ops.split(",")[1])
        elif start is not None and mnem == "ori" and ops.startswith("t8,t8,") and hi is not None:
            out.append((start, hi << 16 | _imm(ops.split(",")[2])))
            start = None
        elif start is not None and (mnem == "li" and ops.startswith("t8,")
                                    or mnem in ("daddiu", "addiu", "ori") and ops.startswith("t8,zero,")):
            out.append((start, _imm(ops.split(",")[-1])))
            start = None
    return out


def objdump_ibt_lazy(path) -> list[tuple[int, int]]:
    """(entry address, pushed value) of .plt's IBT lazy entries (``endbr64``/``endbr32``, then
    ``push $N``, then a jump to PLT0), which objdump labels not (their ``sym@plt`` is in .plt.sec)."""
    text = run("objdump", "-d", "-w", "-j", ".plt", path).stdout
    out = []
    start = None
    for line in text.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(\S+)\s*(.*)$", line)
        if not m:
            continue
        if m.group(2) in ("endbr64", "endbr32"):
            start = _hex(m.group(1))
        elif m.group(2) in ("push", "pushq", "pushl") and start is not None and m.group(3).startswith("$"):
            out.append((start, int(m.group(3)[1:], 16)))
            start = None
        else:
            start = None
    return out


def mips_reserved_got(path) -> dict[int, str]:
    """address -> readelf -A's Purpose of each reserved entry (the primary GOT's and the PLT GOT's)."""
    out = {}
    for block in run("readelf", "-W", "-A", path).stdout.split(" Reserved entries:")[1:]:
        for line in block.splitlines()[2:]:
            m = re.match(r"^\s+([0-9a-f]+)\s+(?:-?\d+\(gp\)\s+)?[0-9a-f]+\s+(\S.*)$", line)
            if not m:
                break
            out[_hex(m.group(1))] = m.group(2).strip()
    return out
