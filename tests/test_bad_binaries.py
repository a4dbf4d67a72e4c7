"""Bad input to inspect/stubs: one clear line, exit 2, never a traceback or a hang.

The fuzz test mutates real binaries (bytes flipped, headers truncated, counts
and offsets made huge) and requires every case to end in an Image or a
BadBinary within a second.
"""
from __future__ import annotations

import os
import random
import struct
import time
from pathlib import Path

import pytest

from conftest import gotrace_cli, require
from tracer.binary import BadBinary
from tracer.binary.open import read_image
from tracer.binary.stubs import check


def one_line_exit_2(path, expect: str, command: str = "inspect"):
    # `inspect --json` is answered without Typer (tracer/commands/console.py): both paths
    for argv in ([command], [command, "--json"]) if command == "inspect" else ([command],):
        out = gotrace_cli(*argv, str(path), timeout=20)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2, (argv, out.returncode, out.stderr)
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
        assert expect in lines[0], lines[0]


def malformed_for_llvm_objdump(tmp_path, data: bytes, also: str = "") -> Path:
    """The bytes as a file llvm-objdump-16 calls malformed (its stderr also holding ``also``)."""
    import subprocess

    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    oracle = subprocess.run(["llvm-objdump-16", "--macho", "--private-headers", str(bad)], capture_output=True,
                            text=True)
    assert "truncated or malformed object" in oracle.stderr and also in oracle.stderr, oracle.stderr
    return bad


def test_empty_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    one_line_exit_2(tmp_path / "empty", "empty file, not an ELF or Mach-O file")


def test_directory_device_fifo(tmp_path):
    one_line_exit_2(tmp_path, "is a directory")
    one_line_exit_2("/dev/null", "not a regular file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    one_line_exit_2(fifo, "not a regular file", "stubs")  # must not block opening it


def test_missing_and_unreadable(tmp_path):
    one_line_exit_2(tmp_path / "nope", "no such file")
    if os.geteuid() == 0:
        # root reads any mode bits; /proc/self/mem is a regular file whose read fails (EIO)
        one_line_exit_2("/proc/self/mem", "cannot read: Input/output error")
    else:
        secret = tmp_path / "secret"
        secret.write_bytes(b"\x7fELF" + b"\0" * 60)
        secret.chmod(0)
        one_line_exit_2(secret, "cannot read: Permission denied")


def test_not_a_binary(tmp_path):
    (tmp_path / "text").write_text("hello world\n")
    one_line_exit_2(tmp_path / "text", "not an ELF or Mach-O file")
    (tmp_path / "script").write_text("#!/bin/sh\necho hi\n")
    one_line_exit_2(tmp_path / "script", "a script (#!)")
    (tmp_path / "Main.class").write_bytes(b"\xca\xfe\xba\xbe\x00\x00\x00\x41" + b"\0" * 64)
    one_line_exit_2(tmp_path / "Main.class", "Java class")


@pytest.mark.parametrize("cut", [3, 20, 40, 64, 200, 1000])
def test_truncated_elf(cut, binaries, tmp_path):
    data = binaries("c-lazy").read_bytes()
    (tmp_path / "cut").write_bytes(data[:cut])
    one_line_exit_2(tmp_path / "cut", f"truncated at offset {cut}")


@pytest.mark.parametrize("cut", [3, 20, 100, 2000])
def test_truncated_macho(cut, binaries, tmp_path):
    data = binaries("macho-x86_64-lazy").read_bytes()
    (tmp_path / "cut").write_bytes(data[:cut])
    one_line_exit_2(tmp_path / "cut", f"truncated at offset {cut}")


def _mutations(data: bytes, rng: random.Random, n: int):
    """Flipped bytes, truncations, and header fields (counts, offsets, sizes) made huge."""
    header_words = list(range(0, min(len(data), 256), 4))
    for i in range(n):
        buf = bytearray(data)
        r = i % 4
        if r == 0:
            for _ in range(rng.randint(1, 16)):
                buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif r == 1:
            buf = buf[:rng.randrange(4, len(buf))]
        elif r == 2:
            at = rng.choice(header_words)
            struct.pack_into("<I", buf, at, rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000, len(data) * 4]))
        else:  # somewhere in the first pages: load commands, program and section headers
            at = rng.randrange(0, min(len(buf) - 8, 8192)) & ~3
            struct.pack_into("<Q", buf, at, rng.choice([2**63 - 1, 2**40, 0xFFFFFFFFFFFFFFFF]))
        yield bytes(buf)


@pytest.mark.parametrize("name,cases", [("c-lazy", 1500), ("macho-x86_64-lazy", 1000),
                                        ("macho-arm64-chained", 600), ("go-linux-amd64-internal", 150),
                                        ("go-darwin-amd64", 150)])
def test_fuzz_never_crashes_or_hangs(name, cases, binaries, tmp_path):
    data = binaries(name).read_bytes()
    rng = random.Random(f"gotrace-{name}")
    path = tmp_path / "case"
    worst, outcomes = 0.0, {"ok": 0, "refused": 0}
    for i, mutated in enumerate(_mutations(data, rng, cases)):
        path.write_bytes(mutated)
        # a hang is work that does not end: counted in this thread's CPU time, which a busy machine
        # does not stretch (wall time did: case 0 took 1.74 s beside other work); a Mach-O read by
        # LIEF runs in a child on its own CPU budget (binary/macho.py) and is refused past it
        t0 = time.thread_time()
        try:
            img, data = read_image(path)
            check(img, data, host_arch="x86_64")
            outcomes["ok"] += 1
        except BadBinary as exc:
            assert "\n" not in exc.message and str(path) in exc.message
            outcomes["refused"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            bad = tmp_path / f"crash-{i}"
            bad.write_bytes(mutated)
            pytest.fail(f"case {i}: uncaught {type(exc).__name__}: {exc} (input kept at {bad})")
        elapsed = time.thread_time() - t0
        worst = max(worst, elapsed)
        assert elapsed < 2.0, f"case {i} took {elapsed:.2f} s of CPU"
    assert outcomes["refused"] > 0 and outcomes["ok"] > 0, outcomes


@pytest.mark.parametrize("where", ["first-size-4", "last-past-sizeofcmds", "nsects-past-cmdsize"])
def test_macho_load_command_of_a_wrong_size(where, binaries, tmp_path):
    """A load command shorter than its 8-byte header, one running past sizeofcmds, a segment with one
    section more than its cmdsize holds: llvm-objdump-16 --macho --private-headers calls each file
    malformed, and gotrace refuses them in one line."""
    import subprocess

    data = bytearray(binaries("macho-x86_64-lazy").read_bytes())
    ncmds, pos = struct.unpack_from("<I", data, 16)[0], 32
    if where == "first-size-4":
        struct.pack_into("<I", data, pos + 4, 4)
    elif where == "nsects-past-cmdsize":
        while data[pos + 8:pos + 24].rstrip(b"\0") != b"__TEXT":
            pos += struct.unpack_from("<I", data, pos + 4)[0]
        struct.pack_into("<I", data, pos + 64, struct.unpack_from("<I", data, pos + 64)[0] + 1)
    else:
        for _ in range(ncmds - 1):
            pos += struct.unpack_from("<I", data, pos + 4)[0]
        struct.pack_into("<I", data, pos + 4, struct.unpack_from("<I", data, pos + 4)[0] + 8)
    bad = malformed_for_llvm_objdump(tmp_path, data)
    one_line_exit_2(bad, "corrupt Mach-O file")


def test_macho_32_bit_segment_with_a_section_past_its_cmdsize(tmp_path):
    """The same for a 32-bit LC_SEGMENT (its nsects at +48, 68-byte sections): an i386 object built by
    clang-14 with one section more than its segment command holds; llvm-objdump-16 calls it malformed."""
    import shutil
    import subprocess

    require(shutil.which("clang-14") is not None, "clang-14 is not installed (bash scripts/setup.sh)")
    obj = tmp_path / "i386.o"
    src = Path(__file__).resolve().parent / "fixtures" / "macho" / "hello.c"
    subprocess.run(["clang-14", "-target", "i386-apple-macos10.7", "-c", str(src), "-o", str(obj)], check=True)
    data = bytearray(obj.read_bytes())
    assert struct.unpack_from("<II", data, 28)[0] == 0x1  # the first command: LC_SEGMENT
    struct.pack_into("<I", data, 28 + 48, struct.unpack_from("<I", data, 28 + 48)[0] + 1)
    bad = malformed_for_llvm_objdump(tmp_path, data)
    one_line_exit_2(bad, "corrupt Mach-O file")


def test_macho_symbol_table_past_the_end_is_truncated(binaries, tmp_path):
    """LC_SYMTAB's nsyms raised until the symbols run past the end of the file, the strings still inside:
    llvm-objdump-16 calls it malformed (the symbols extend past the end), and gotrace says where it ends."""
    import subprocess

    data = bytearray(binaries("macho-x86_64-lazy").read_bytes())
    ncmds, pos = struct.unpack_from("<I", data, 16)[0], 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd == 0x2:  # LC_SYMTAB: symoff, nsyms, stroff, strsize
            symoff, _nsyms, stroff, strsize = struct.unpack_from("<IIII", data, pos + 8)
            assert stroff + strsize <= len(data)
            struct.pack_into("<I", data, pos + 12, (len(data) - symoff) // 16 + 1)
        pos += size
    bad = malformed_for_llvm_objdump(tmp_path, data, "nsyms")
    one_line_exit_2(bad, f"truncated at offset {len(data)}")


def _smallest_headers(tmp_path):
    """A 32-bit ELF header with no program or section headers (52 bytes) and a 32-bit Mach-O
    header with no load commands (28 bytes): whole files, nothing cut."""
    elf = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8) + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0, 0, 0, 0, 52, 0, 0,
                                                                    0, 0, 0)
    macho = struct.pack("<IiiIIII", 0xFEEDFACE, 7, 3, 2, 0, 0, 0)  # i386 MH_EXECUTE, ncmds 0
    (tmp_path / "elf52").write_bytes(elf)
    (tmp_path / "macho28").write_bytes(macho)
    return tmp_path / "elf52", tmp_path / "macho28"


def test_a_header_alone_is_not_truncated(tmp_path):
    """readelf -h reads the 52-byte ELF, llvm-objdump-16 --macho --private-headers the 28-byte
    Mach-O (both exit 0): inspect reads them too, the class and machine readelf / llvm-objdump give."""
    import json
    import subprocess

    elf, macho = _smallest_headers(tmp_path)
    head = subprocess.run(["readelf", "-h", str(elf)], capture_output=True, text=True, check=True).stdout
    assert "ELF32" in head and "Intel 80386" in head
    mh = subprocess.run(["llvm-objdump-16", "--macho", "--private-headers", str(macho)], capture_output=True,
                        text=True, check=True).stdout
    assert "MH_MAGIC    I386" in mh
    for path in (elf, macho):
        out = gotrace_cli("inspect", "--json", str(path), timeout=20)
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert (doc["bits"], doc["arch"]) == (32, "i386")


@pytest.mark.parametrize("data,expect", [(b"hi", "not an ELF or Mach-O file"),
                                         (b"\x7fE\x00", "not an ELF or Mach-O file"),
                                         (b"\xcf\xfa", "truncated at offset 2"),  # MH_MAGIC_64's first bytes
                                         (b"\x7fEL", "truncated at offset 3")])
def test_a_short_file_is_truncated_only_if_it_starts_a_magic(data, expect, tmp_path):
    """Fewer than 4 bytes: a cut binary when they begin ELF's or Mach-O's magic (elf.h's ELFMAG,
    mach-o/loader.h's MH_MAGIC*), else no binary at all."""
    (tmp_path / "short").write_bytes(data)
    one_line_exit_2(tmp_path / "short", expect)


@pytest.mark.parametrize("lead", [b"", b"\n", b"\n  \n"])
def test_a_tbd_stub_is_called_text(lead, tmp_path):
    """A TAPI .tbd stub (YAML: `--- !tapi-tbd`, tests/fixtures/macho/libSystem.tbd) is named as text,
    with or without blank lines before the document marker (YAML allows them)."""
    from pathlib import Path

    tbd = Path(__file__).parent / "fixtures" / "macho" / "libSystem.tbd"
    (tmp_path / "libSystem.tbd").write_bytes(lead + tbd.read_bytes())
    one_line_exit_2(tmp_path / "libSystem.tbd", "text (a .tbd stub?)")


def test_a_fat_header_of_no_slices_is_refused_as_such(tmp_path):
    """An 8-byte fat header counting 0 slices is whole but empty: llvm-objdump-16 --universal-headers
    refuses it for "zero architecture types", not for being cut."""
    import subprocess

    path = tmp_path / "empty-fat"
    path.write_bytes(b"\xca\xfe\xba\xbe" + bytes(4))
    out = subprocess.run(["llvm-objdump-16", "--macho", "--universal-headers", str(path)], capture_output=True, text=True)
    assert out.returncode != 0 and "zero architecture types" in out.stderr
    one_line_exit_2(path, "0 slices")


@pytest.mark.parametrize("major", [45, 52, 61, 64, 65])
def test_a_java_class_is_not_taken_for_a_fat_file(major, tmp_path):
    """A Java class file's CAFEBABE is followed by minor 0 and its major version (45 for Java 1.0 on):
    file(1) calls each "compiled Java class data", and so must inspect, not a cut fat Mach-O."""
    import subprocess

    path = tmp_path / "Main.class"
    path.write_bytes(b"\xca\xfe\xba\xbe" + struct.pack(">HH", 0, major) + bytes(64))
    assert subprocess.run(["file", "-b", str(path)], capture_output=True, text=True,
                          check=True).stdout.startswith("compiled Java class data")
    one_line_exit_2(path, "a Java class?")
