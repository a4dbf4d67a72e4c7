"""A session keeps what ld.so read of every object its processes loaded (OBJECTS, SYMBOLS, LOADED).

`go test` deletes its test binaries as soon as they ran, builds replace their outputs, a session is
read on another machine: `why` and the report must give the same answers then. Oracles: glibc's
own LD_DEBUG=symbols,bindings account of the same program (where each lookup bound, what it searched),
readelf (COPY relocations, the symbols defined at a copy's address, each file's machine), and
the programs' own exit status.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import VENV_BIN, gotrace_cli, require, require_backend
from linkbins import SRC as WHY_SRC, _cc, _lib
from oracles import ld_debug_bindings, readelf_header

KEPT_SRC = Path(__file__).resolve().parent / "csrc" / "kept"


def ld_debug(argv: list[str], what: str, env: dict | None = None) -> str:
    run_env = {**os.environ, **(env or {}), "LD_DEBUG": what}
    return subprocess.run(argv, env=run_env, capture_output=True, text=True).stderr


def bind(backend: str, argv: list[str], session: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    require_backend(backend)
    return gotrace_cli("bind", "-q", "-b", backend, "-o", str(session), "--", *argv, env=env)


def why(*args) -> dict:
    out = gotrace_cli("why", "--json", *map(str, args))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def report(session: Path) -> dict:
    out = gotrace_cli("report", "--json", str(session))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _napper(out: Path) -> Path:
    run = out / "run"
    _lib(run / "liba.so", "pick.c", "-DWHO='a'", "-DCALLS_ITSELF")
    _lib(run / "libb.so", "pick.c", "-DWHO='b'")
    _cc("-o", out / "napper", KEPT_SRC / "napper.c", f"-L{run}", "-lb", "-la", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/run")
    return out / "napper"


@pytest.mark.parametrize("backend", ["bpf", "bpftrace", "ld-debug"])
def test_a_program_deleted_as_soon_as_it_ran_is_still_explained(backend, tmp_path):
    """The traced command deletes the program and its libraries the moment it exits (as `go test`
    does): `why` replays every lookup of pick from what the session kept, and agrees with glibc's
    account taken of the same program before (provider and the objects searched up to it)."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    built = _napper(tmp_path / "src")
    truth = [b for b in ld_debug_bindings(ld_debug([str(built), "0"], "symbols,bindings")) if b["symbol"] == "pick"]
    assert truth and {os.path.basename(b["provider"]) for b in truth} == {"libb.so"}
    gone = tmp_path / "gone"
    shutil.copytree(built.parent, gone)
    flag = tmp_path / "go-on"
    script = f'"{gone}/napper" "{flag}"; status=$?; rm -rf "{gone}"; exit $status'
    require_backend(backend)
    tracer = subprocess.Popen([str(VENV_BIN / "gotrace"), "bind", "-q", "-b", backend, "-o", str(tmp_path / "s"), "--",
                               "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # napper waits until the tracer holds the program and libb.so open (/proc/PID/fd of gotrace: the
        # kernel's account), then runs on and is deleted — on a busy machine as on an idle one. ld.so
        # relocates libb.so and the program last (liba.so, libc before them), so their events being
        # handled means the start-up's events all were
        wanted = {str(gone / "napper"), str(gone / "run" / "libb.so")}
        deadline = time.monotonic() + 300
        while not wanted <= _open_files(tracer.pid):
            assert tracer.poll() is None and time.monotonic() < deadline, "gotrace never pinned napper's files"
            time.sleep(0.05)
        flag.touch()
        _out, err = tracer.communicate(timeout=600)
    finally:
        tracer.kill()
    assert tracer.returncode == 0, err
    assert not gone.exists()
    res = why(tmp_path / "s", "pick")
    assert res["lookups"]
    for lk in res["lookups"]:
        assert lk["agrees"] is True, lk["reason"]
        assert os.path.basename(lk["replayed"]) == "libb.so"
        want = next(b for b in truth if os.path.basename(b["requester"]) == os.path.basename(lk["requester"]))
        assert [os.path.basename(x) for x in lk["searched"]] == [os.path.basename(x) for x in want["searched"]]
    ip = report(tmp_path / "s")["interposed"]
    assert ip["not_replayed"] == 0 and ip["disagreed"] == 0


def _open_files(pid: int) -> set[str]:
    """The files a process holds open, as /proc/PID/fd links name them."""
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def _copies_and_aliases(path: str) -> tuple[set[str], set[str]]:
    """readelf's account of an executable: the symbols its R_X86_64_COPY relocations copy, and the
    other symbols it defines at those addresses (a copied variable's aliases)."""
    rel = subprocess.run(["readelf", "-W", "-r", path], capture_output=True, text=True, check=True).stdout
    copies = {}
    for line in rel.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[2] == "R_X86_64_COPY":
            copies[int(parts[0], 16)] = parts[4].split("@")[0]
    syms = subprocess.run(["readelf", "-W", "--dyn-syms", path], capture_output=True, text=True, check=True).stdout
    aliases = set()
    for line in syms.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].rstrip(":").isdigit() and parts[6] != "UND":
            value, name = int(parts[1], 16), parts[7].split("@")[0]
            if value in copies and name != copies[value]:
                aliases.add(name)
    return set(copies.values()), aliases


@pytest.mark.parametrize("backend", ["ld-debug", "bpf"])
@pytest.mark.parametrize("program", [["ls", "-d", "/"], ["cat", "/dev/null"], ["sleep", "0"], ["env", "true"]])
def test_a_copied_variable_reached_through_an_alias_is_no_interposition(program, backend, tmp_path):
    """coreutils copy libc's __progname and __progname_full into themselves (R_X86_64_COPY); ld defines
    program_invocation_short_name and program_invocation_name, libc's aliases of them, at the
    copies' addresses. libc's references to the aliases then bind to the program — the same
    variable, not an interposer. Oracles: readelf (the copies and the symbols at their addresses),
    LD_DEBUG=bindings (libc's lookups of the aliases bound to the program)."""
    exe = shutil.which(program[0])
    copies, aliases = _copies_and_aliases(exe)
    assert {"__progname", "__progname_full"} <= copies
    assert {"program_invocation_name", "program_invocation_short_name"} <= aliases
    truth = [b for b in ld_debug_bindings(ld_debug([exe, *program[1:]], "bindings"))
             if b["symbol"] in aliases]
    # bound to the program (env's to env, then to the true it execs), never to libc's own definition
    assert truth and not [b for b in truth if os.path.basename(b["provider"]).startswith("libc.so")]
    assert all(os.path.basename(b["requester"]).startswith("libc.so") for b in truth)
    out = bind(backend, [exe, *program[1:]], tmp_path / "s")
    assert out.returncode == 0, out.stderr
    ip = report(tmp_path / "s")["interposed"]
    claimed = {r["symbol"] for r in ip["top"]}
    assert not claimed & (aliases | copies), claimed
    for sym in ("program_invocation_name", "program_invocation_short_name"):
        res = why(tmp_path / "s", sym)
        assert res["lookups"] and all(lk["interposed"] is False and lk["agrees"] for lk in res["lookups"])
        assert any("alias of the variable __progname" in lk["reason"] for lk in res["lookups"])


def test_new_version_budget_names_the_library_not_the_copying_program(tmp_path):
    """`--fail-on new-version` compares which library's versions are bound: an executable's copy of
    libc's stdout or its canonical PLT entry binds there, but GLIBC_2.2.5 stays libc.so.6's.
    Oracle: readelf -V — a culprit's version must be one its library defines (Version definition
    section), and ls defines none."""
    require_backend("bpf")
    assert bind("bpf", ["true"], tmp_path / "a").returncode == 0
    assert bind("bpf", [shutil.which("ls"), "-d", "/"], tmp_path / "b").returncode == 0
    out = gotrace_cli("compare", "--json", "--fail-on", "new-version", str(tmp_path / "a"), str(tmp_path / "b"))
    assert out.returncode == 1, out.stderr  # ls binds libselinux's versions, which true never did
    (budget,) = json.loads(out.stdout)["budgets"]
    assert budget["culprits"]
    for culprit in budget["culprits"]:
        version, lib = re.match(r"(\S+) of (\S+) \(", culprit).groups()
        assert lib != "ls"
        path = "/lib64/ld-linux-x86-64.so.2" if lib == "ld.so" else f"/lib/x86_64-linux-gnu/{lib}"
        defs = subprocess.run(["readelf", "-W", "-V", path], capture_output=True, text=True, check=True).stdout
        section = defs.split("Version definition section", 1)[1].split("Version needs section", 1)[0]
        assert re.search(rf"Name: {re.escape(version)}\b", section), (culprit, path)


def test_a_translated_program_is_replayed_against_its_own_architecture(tmp_path):
    """qemu-user runs an arm64 program in its own pid, beside its x86_64 libraries: the replay must
    take only the program's machine's objects (ld.so's open_verify skips the others), so the arm64
    libc is not "interposed over" the host's. Oracles: readelf -h (each provider's machine) and the
    guest ld.so's own LD_DEBUG=bindings account (qemu passes the guest its environment)."""
    require(os.geteuid() == 0, "--register-binfmt needs root")
    cc = shutil.which("aarch64-linux-gnu-gcc")
    require(cc is not None, "aarch64-linux-gnu-gcc is not installed")
    src = tmp_path / "p.c"
    src.write_text('#include <stdio.h>\n#include <math.h>\nint main(int c, char **v)'
                   '{ printf("%f\\n", cos(c)); return 0; }\n')
    prog = tmp_path / "p"
    subprocess.run([cc, "-o", str(prog), str(src), "-lm"], check=True)
    assert readelf_header(prog)["Machine"] == "AArch64"
    qemu = shutil.which("qemu-aarch64")
    require(qemu is not None, "qemu-user is not installed")
    guest = ld_debug([qemu, "-L", "/usr/aarch64-linux-gnu", str(prog)], "bindings")
    truth = {b["symbol"]: b["provider"] for b in ld_debug_bindings(guest)}
    assert "__libc_start_main" in truth
    out = gotrace_cli("bind", "-q", "--arch", "arm64", "--register-binfmt", "-o", str(tmp_path / "s"), "--",
                      str(prog))
    assert out.returncode == 0, out.stderr
    ip = report(tmp_path / "s")["interposed"]
    assert not [r for r in ip["top"] if r["provider"] == r["instead_of"]], ip["top"]
    res = why(tmp_path / "s", "__libc_start_main")
    guest_lookups = [lk for lk in res["lookups"] if os.path.basename(str(lk["exe"])) == "p"]
    assert guest_lookups
    for lk in guest_lookups:
        assert lk["agrees"] is True and lk["interposed"] is False, lk["reason"]
        assert os.path.basename(lk["replayed"]) == os.path.basename(truth["__libc_start_main"])
        assert readelf_header(lk["replayed"])["Machine"] == "AArch64"
