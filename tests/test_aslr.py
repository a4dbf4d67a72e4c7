"""gotrace aslr: bases and slides against the live process's /proc/PID/maps."""
from __future__ import annotations

import json
import subprocess

import oracles
from conftest import gotrace_cli, require
from tracer.binary import aslr


def maps_bases(pid: int) -> dict[str, int]:
    """The oracle: lowest offset-0 mapping of each file, parsed here, not by tracer."""
    out: dict[str, int] = {}
    for line in open(f"/proc/{pid}/maps"):
        f = line.split()
        if len(f) >= 6 and f[5].startswith("/") and int(f[2], 16) == 0:
            start = int(f[0].split("-")[0], 16)
            out[f[5]] = min(start, out.get(f[5], start))
    return out


def launch_and_compare(path) -> list[aslr.ImageBase]:
    seen: dict[str, int] = {}
    rows, code = aslr.launch_bases([str(path)], on_stop=lambda pid, aux: seen.update(maps_bases(pid)))
    assert code is None  # killed, as by default
    assert rows and {r.path for r in rows} == set(seen)
    for r in rows:
        assert r.load_base == seen[r.path], r
        assert r.slide == r.load_base - r.link_base
        assert r.load_base % 4096 == 0
    main = rows[0]
    assert main.source == "AT_PHDR"
    assert main.link_base == min(v for v, _, _ in oracles.readelf_loads(main.path)) & ~0xFFF
    return rows


def test_pie_c_program(binaries):
    rows = launch_and_compare(binaries("c-lazy"))
    names = {r.path.rsplit("/", 1)[-1] for r in rows}
    assert {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"} <= names  # mapped before the entry point
    assert rows[0].position_independent and rows[0].slide != 0
    assert next(r for r in rows if "ld-linux" in r.path).source == "AT_BASE"


def test_non_pie_go_binary(binaries):
    rows = launch_and_compare(binaries("go-linux-amd64-internal"))
    assert rows[0].link_base == 0x400000 and rows[0].slide == 0 and rows[0].position_independent is False
    static = launch_and_compare(binaries("go-linux-amd64-static"))
    assert len(static) == 1 and static[0].slide == 0


def test_go_pie_slides_differ_between_runs(binaries):
    path = binaries("go-linux-amd64-pie")
    with open("/proc/sys/kernel/randomize_va_space") as fh:  # the kernel's setting, read here
        setting = fh.read().strip()
    require(setting == "2", f"ASLR is off here (kernel.randomize_va_space = {setting}): slides cannot differ")
    a, b = launch_and_compare(path), launch_and_compare(path)
    assert a[0].slide and a[0].slide % 4096 == 0
    assert a[0].slide != b[0].slide  # 28 bits of mmap randomness: equal once in 2^28 runs


def test_cli_run_passes_exit_code_and_json():
    out = gotrace_cli("aslr", "--run", "--json", "--", "/bin/sh", "-c", "exit 3")
    assert out.returncode == 3, out.stderr
    doc = json.loads(out.stdout)
    with open("/proc/sys/kernel/randomize_va_space") as fh:
        assert doc["randomize_va_space"] == int(fh.read())  # the kernel's own setting
    assert any(r["path"].endswith("/dash") or r["path"].endswith("/sh") for r in doc["images"])


def test_running_process_by_pid():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        import time

        deadline = time.monotonic() + 5
        while "libc.so.6" not in "".join(maps_bases(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        out = gotrace_cli("aslr", "--json", "--pid", str(proc.pid))
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)["images"]
        oracle = maps_bases(proc.pid)
        assert {r["path"]: r["load_base"] for r in rows} == oracle
    finally:
        proc.kill()
        proc.wait()


def test_session_fill(binaries, tmp_path):
    from tracer import bind, load_session

    res = bind([str(binaries("c-lazy"))], out=tmp_path / "s", backend="ld-debug")
    assert res.exit_code == 0
    out = gotrace_cli("aslr", "--json", "--session", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["images"]
    assert rows
    images = load_session(tmp_path / "s").images
    saved = {(int(p), str(f)): img for p, f, img in zip(images["pid"], images["path"], images.to_dict("records"),
                                                      strict=True)}
    assert sorted((r["pid"], r["path"]) for r in rows) == sorted(saved)  # one row per saved image, none lost
    for r in rows:
        img = saved[(r["pid"], r["path"])]
        assert r["load_base"] == int(img["load_base"])
        assert r["slide"] == int(img["slide"]) == r["load_base"] - r["link_base"]
        assert r["link_base"] == min(v for v, _, _ in oracles.readelf_loads(r["path"])) & ~0xFFF
        # position-independent: an ET_DYN file (readelf -h: "DYN (…)"), not ET_EXEC
        assert r["position_independent"] is oracles.readelf_header(r["path"])["Type"].startswith("DYN")


def test_bad_input(tmp_path):
    out = gotrace_cli("aslr", "--pid", "999999999")
    assert out.returncode == 2 and out.stderr.strip() == "gotrace: no process with pid 999999999"
    out = gotrace_cli("aslr", "no-such-program-xyz")
    assert out.returncode == 127 and out.stderr.strip().count("\n") == 0 and "not found" in out.stderr
    out = gotrace_cli("aslr")
    assert out.returncode == 2 and "give exactly one of" in out.stderr
    out = gotrace_cli("aslr", "--session", str(tmp_path))
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0


def test_a_program_without_exec_permission_exits_as_the_shell_does(tmp_path):
    """A real program (/bin/true) copied without its x bits: sh -c refuses it with 126 (POSIX: found
    but not executable); aslr exits with the shell's status, in one line."""
    import shutil as _shutil
    import subprocess

    prog = tmp_path / "true"
    _shutil.copyfile("/bin/true", prog)
    prog.chmod(0o644)
    shell = subprocess.run(["sh", "-c", str(prog)], capture_output=True).returncode
    assert shell == 126
    out = gotrace_cli("aslr", str(prog))
    assert out.returncode == shell and out.stderr.strip().count("\n") == 0 and "not executable" in out.stderr


def test_a_bare_name_not_on_path_is_not_found_even_in_the_working_directory(tmp_path):
    """A name without a slash is looked up on PATH only: a directory and a text file of that name
    in the working directory, PATH without it, are "not found" to sh -c (exit 127, the oracle), and
    so to aslr, which must not look at (and describe) what the working directory holds."""
    import os

    (tmp_path / "gotrace-bare-dir").mkdir()
    (tmp_path / "gotrace-bare-text").write_text("not a program\n")
    env = dict(os.environ, PATH="/usr/bin:/bin")
    for name in ("gotrace-bare-dir", "gotrace-bare-text"):
        shell = subprocess.run(["sh", "-c", name], cwd=tmp_path, env=env, capture_output=True).returncode
        assert shell == 127
        out = gotrace_cli("aslr", "--run", "--", name, cwd=tmp_path, env=env)
        assert out.returncode == shell and out.stderr.strip().count("\n") == 0 and "not found" in out.stderr, name


def _auxv_base(pid: int) -> int:
    """AT_BASE (7) from /proc/PID/auxv, unpacked here (native word pairs), not by tracer."""
    import struct

    data = open(f"/proc/{pid}/auxv", "rb").read()
    pairs = dict(struct.iter_unpack("=QQ", data[:len(data) - len(data) % 16]))
    return pairs[7]


def test_only_the_dynamic_linker_is_labelled_at_base():
    """/bin/true stopped at its entry: the one image whose load base is the kernel's AT_BASE
    (/proc/PID/auxv, read here) is the dynamic linker, labelled AT_BASE; the main program's base
    comes from AT_PHDR; every other image (libc) from /proc/PID/maps."""
    seen: dict[str, int] = {}

    def stopped(pid, aux):
        seen["base"] = _auxv_base(pid)
        seen.update(maps_bases(pid))

    rows, _code = aslr.launch_bases(["/bin/true"], on_stop=stopped)
    by_source = {}
    for r in rows:
        by_source.setdefault(r.source, []).append(r)
    at_base = [r.path for r in rows if r.load_base == seen["base"]]
    assert len(at_base) == 1 and [r.path for r in by_source["AT_BASE"]] == at_base
    assert [r.path for r in by_source["AT_PHDR"]] == [rows[0].path]
    assert {r.path for r in by_source["maps"]} == set(seen) - {"base", rows[0].path, at_base[0]}
    assert any("libc.so" in r.path for r in by_source["maps"])


def test_a_script_whose_interpreter_is_missing_exits_as_the_shell_does(tmp_path):
    """An executable script whose #! names no file: the kernel's exec fails (ENOENT), sh -c exits
    127 for it (the oracle), and so does aslr, in one line."""
    script = tmp_path / "noint"
    script.write_text("#!/nonexistent/gotrace-interp\necho hi\n")
    script.chmod(0o755)
    shell = subprocess.run(["sh", "-c", str(script)], capture_output=True).returncode
    assert shell == 127
    out = gotrace_cli("aslr", "--run", "--", str(script))
    assert out.returncode == shell and out.stderr.strip().count("\n") == 0, out.stderr


def test_a_launched_program_is_reaped_before_launch_bases_returns():
    """/bin/true stopped at its entry, read, and killed: by the time launch_bases returns, the
    kernel has no process with its pid (/proc/PID is gone: reaped, not left a zombie)."""
    import os

    seen = []
    rows, code = aslr.launch_bases(["/bin/true"], on_stop=lambda pid, aux: seen.append(pid))
    assert code is None and rows and len(seen) == 1
    assert not os.path.exists(f"/proc/{seen[0]}")


def test_a_program_whose_first_segment_starts_at_an_odd_page(tmp_path):
    """A non-PIE program linked with its text segment at 0x401000 (ld -Ttext-segment): its first
    PT_LOAD (readelf -l) starts there, so its link-time base is 0x401000, and its load base is
    the kernel's mapping of it (/proc/PID/maps): no slide."""
    import shutil as _shutil

    require(_shutil.which("gcc") is not None, "gcc is not installed")
    src = tmp_path / "p.c"
    src.write_text("int main(void) { return 0; }\n")
    prog = tmp_path / "at401000"
    subprocess.run(["gcc", "-no-pie", "-Wl,-Ttext-segment=0x401000", "-o", str(prog), str(src)], check=True)
    first = min(v for v, _, _ in oracles.readelf_loads(str(prog)))
    assert first == 0x401000  # the premise: a page boundary with bit 12 set
    main = launch_and_compare(prog)[0]
    assert main.link_base == main.load_base == first and main.slide == 0


def test_a_program_whose_first_segment_starts_at_an_odd_address(tmp_path):
    """A non-PIE program's first PT_LOAD moved one byte on (p_offset, p_vaddr, p_paddr + 1, sizes - 1:
    linkers start it page aligned, so it is patched here): readelf -l shows it at 0x400001, the
    program still runs (exit 7), and the kernel maps its page from 0x400000 (/proc/PID/maps) —
    the link-time base is that page, with no slide."""
    import shutil as _shutil
    import struct

    require(_shutil.which("gcc") is not None, "gcc is not installed")
    src = tmp_path / "p.c"
    src.write_text("int main(void) { return 7; }\n")
    prog = tmp_path / "plain"
    subprocess.run(["gcc", "-no-pie", "-o", str(prog), str(src)], check=True)
    data = bytearray(prog.read_bytes())
    phoff, (phentsize, phnum) = struct.unpack_from("<Q", data, 0x20)[0], struct.unpack_from("<HH", data, 0x36)
    at = next(phoff + i * phentsize for i in range(phnum)
              if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 1)  # the first PT_LOAD
    kind, flags, off, vaddr, paddr, filesz, memsz, align = struct.unpack_from("<IIQQQQQQ", data, at)
    struct.pack_into("<IIQQQQQQ", data, at, kind, flags, off + 1, vaddr + 1, paddr + 1, filesz - 1, memsz - 1, align)
    odd = tmp_path / "odd"
    odd.write_bytes(bytes(data))
    odd.chmod(0o755)
    first = min(v for v, _, _ in oracles.readelf_loads(str(odd)))
    assert first == 0x400001 and subprocess.run([str(odd)]).returncode == 7  # the premise
    main = launch_and_compare(odd)[0]
    assert main.link_base == main.load_base == 0x400000 and main.slide == 0


def test_a_program_traced_already_is_refused_for_that_reason():
    """Under strace -f every child is traced from its fork, so the launched child's PTRACE_TRACEME
    fails (ptrace(2): EPERM, "already being traced"). Premises from the kernel: a child's TracerPid
    in /proc/self/status is not 0 under strace -f, and /bin/true is found and runs (sh -c: 0). aslr
    says it cannot trace it, in one line — not "command not found" (exit 127, what it said)."""
    import shutil as _shutil
    import sys

    require(_shutil.which("strace") is not None, "strace is not installed")
    status = subprocess.run(["strace", "-f", "-o", "/dev/null", "grep", "TracerPid", "/proc/self/status"],
                            capture_output=True, text=True, check=True).stdout
    assert int(status.split()[1]) != 0
    assert subprocess.run(["sh", "-c", "/bin/true"]).returncode == 0
    out = subprocess.run(["strace", "-f", "-o", "/dev/null", sys.executable, "-m", "tracer", "aslr", "--run", "--",
                          "/bin/true"], capture_output=True, text=True)
    assert out.returncode not in (0, 127) and "not found" not in out.stderr, out.stderr
    assert "traced already" in out.stderr and out.stderr.strip().count("\n") == 0
