"""Mutated Mach-O files through inspect and stubs: valid JSON, or one line and exit 2.

Mutants of a Go-built darwin/arm64 executable (shfmt) and of an Apple-ld dylib
(xgboost), both from pinned PyPI wheels, with fixed seeds: bits flipped, the
file cut, header and load-command words made huge, and names (segments,
sections, dylibs, symbols) given bytes that are not UTF-8 — LIEF returns such a
name as ``bytes``, which once ended ``inspect --json`` in "internal error:
TypeError: Object of type bytes is not JSON serializable". Oracle: Python's
json module parses what gotrace printed; the exit status and stderr are the
CLI's own.
"""
from __future__ import annotations

import json
import random
import struct

import pytest

import oracles
from conftest import gotrace_cli
from macho_wheels import wheel_file
from tracer.binary import BadBinary
from tracer.binary.open import read_image
from tracer.binary.stubs import check

HIGH = (0x80, 0xC3, 0xE9, 0xFE, 0xFF)  # never valid UTF-8 alone


def _names(data: bytes) -> list[int]:
    """File offsets of the names in a thin 64-bit Mach-O's load commands: each segment's
    and section's, and each dylib's (LC_LOAD_DYLIB and kin)."""
    out = []
    ncmds = struct.unpack_from("<I", data, 16)[0]
    pos = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd == 0x19:  # LC_SEGMENT_64: segname, then each section's sectname and segname
            out.append(pos + 8)
            for i in range(struct.unpack_from("<I", data, pos + 64)[0]):
                out += [pos + 72 + 80 * i, pos + 72 + 80 * i + 16]
        elif cmd in (0xC, 0xD, 0x18 | 0x80000000, 0x1F | 0x80000000, 0x20, 0x23 | 0x80000000):  # dylibs, dylinker
            out.append(pos + struct.unpack_from("<I", data, pos + 8)[0] + 1)
        pos += size
    return out


def mutants(data: bytes, seed: str, n: int):
    """``n`` mutants, the same ones on every run: names first (one of each kind), then
    bit flips, cuts, huge header words, huge words among the load commands, and
    non-UTF-8 bytes anywhere (symbol names live in the link-edit tables)."""
    rng = random.Random(seed)
    names = _names(data)
    for i in range(n):
        buf = bytearray(data)
        r = i % 6
        if r == 0:
            at = names[(i // 6) % len(names)]
            buf[at] = rng.choice(HIGH)
        elif r == 1:
            for _ in range(rng.randint(1, 16)):
                buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif r == 2:
            buf = buf[:rng.randrange(4, len(buf))]
        elif r == 3:
            struct.pack_into("<I", buf, rng.randrange(0, 64, 4), rng.choice([0xFFFFFFFF, 0x7FFFFFFF, len(data) * 4]))
        elif r == 4:
            at = rng.randrange(32, min(len(buf) - 8, 8192)) & ~3
            struct.pack_into("<Q", buf, at, rng.choice([2**63 - 1, 2**40, 0xFFFFFFFFFFFFFFFF]))
        else:
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.choice(HIGH)
        yield bytes(buf)


@pytest.mark.parametrize("name,count", [("shfmt-arm64", 150), ("xgboost-arm64", 36)])
def test_mutants_read_as_json_or_one_line(name, count, tmp_path):
    """What `inspect --json` and `stubs --json` print (Image.to_dict, StubReport.to_dict)
    survives json.dumps and json.loads, or the file is refused in one line naming it."""
    data = wheel_file(name).read_bytes()
    path = tmp_path / "case"
    outcomes = {"json": 0, "refused": 0}
    for i, mutated in enumerate(mutants(data, f"gotrace-json-{name}", count)):
        path.write_bytes(mutated)
        try:
            img, raw = read_image(path, "arm64")
            for doc in (img.to_dict(), check(img, raw, host_arch="x86_64").to_dict()):
                assert json.loads(json.dumps(doc)) == doc
            outcomes["json"] += 1
        except BadBinary as exc:
            assert "\n" not in exc.message and str(path) in exc.message
            outcomes["refused"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            kept = tmp_path / f"crash-{i}"
            kept.write_bytes(mutated)
            pytest.fail(f"mutant {i}: {type(exc).__name__}: {exc} (input kept at {kept})")
    assert outcomes["json"] and outcomes["refused"], outcomes


def test_cli_prints_json_or_one_line_exit_2(tmp_path):
    """Through the command line (inspect --json is answered without Typer, stubs --json
    through it): the first eight mutants of the Go binary, names with non-UTF-8 bytes
    among them."""
    data = wheel_file("shfmt-arm64").read_bytes()
    seen_escaped = False
    for i, mutated in enumerate(mutants(data, "gotrace-json-shfmt-arm64", 8)):
        path = tmp_path / f"case-{i}"
        path.write_bytes(mutated)
        for command in ("inspect", "stubs"):
            out = gotrace_cli(command, "--json", str(path), timeout=300)
            if out.returncode == 2:
                assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1, (i, command, out.stderr)
                assert "internal error" not in out.stderr and str(path) in out.stderr, out.stderr
                continue
            assert out.returncode in ((0,) if command == "inspect" else (0, 1)), (i, command, out.stderr)
            doc = json.loads(out.stdout)
            seen_escaped |= "\\x" in json.dumps(doc)
    assert seen_escaped, "no mutant put a non-UTF-8 name into the output"


def test_a_huge_pointer_section_size_ends(tmp_path):
    """__got's size made 2**62 in Go's file: stubs --json still ends (it once counted
    every slot that size claims: it never ended) and names the stubs as llvm-objdump's
    disassembly and binds of the original file do. The timeout only guards the run."""
    from test_macho_real import _name_of, _section_header_offset, objdump_stub_pointers

    src = wheel_file("shfmt-arm64")
    data = bytearray(src.read_bytes())
    struct.pack_into("<Q", data, _section_header_offset(src, "__DATA_CONST,__got") + 40, 2**62)
    bad = tmp_path / "huge-got"
    bad.write_bytes(bytes(data))
    out = gotrace_cli("stubs", "--json", str(bad), timeout=600)
    assert out.returncode in (0, 1), out.stderr
    stubs = next(s for s in json.loads(out.stdout)["sections"] if s["name"] == "__TEXT,__symbol_stub1")
    names = _name_of(src)
    assert [(s["address"], s["symbol"]) for s in stubs["slots"]] == \
        [(a, names[p]) for a, p in objdump_stub_pointers(src, "__symbol_stub1")]


def test_names_that_look_like_markup_are_printed_as_they_are(tmp_path):
    """libSystem's install name rewritten to hold ``[/x]`` (rich's closing-tag syntax): the
    terminal views print it as llvm-objdump --private-headers reads it; they once ended in
    "internal error: MarkupError"."""
    src = wheel_file("shfmt-arm64")
    data = bytearray(src.read_bytes())
    old = b"/usr/lib/libSystem.B.dylib"
    at = data.index(old + b"\0")
    data[at:at + len(old)] = b"/usr/lib/[/x][bold]System.B.dylib"[:len(old)]
    bad = tmp_path / "markup"
    bad.write_bytes(bytes(data))
    (name,) = [n for n in oracles.objdump_load_commands(bad)["dylibs"] if "[" in n]
    for command in ("inspect", "stubs"):
        out = gotrace_cli(command, "--all", str(bad), timeout=600)
        assert out.returncode in (0, 1) and out.stderr == "", out.stderr
        assert name in out.stdout
