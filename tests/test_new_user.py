"""What a new user hits first, each as it was reported (issue 16), against an outside oracle:
the shell's own exit codes and /proc's signal masks for the command run without gotrace,
the files on disk, a pseudo-terminal of a given width."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from conftest import VENV_BIN, gotrace_cli, require, require_bpftrace, require_lldb, tmpfs
from tracer import load_session

GOTRACE = str(VENV_BIN / "gotrace")
BACKENDS = ["ld-debug", "bpftrace", "lldb"]


def _need(backend: str) -> None:
    if backend == "bpftrace":
        require_bpftrace()
    elif backend == "lldb":
        require_lldb()


def test_the_first_command_in_a_fresh_directory_and_two_in_the_same_second(tmp_path):
    """No gotrace-sessions/ yet: it is created; two runs in one second get two sessions."""
    runs = [subprocess.run([GOTRACE, "bind", "-q", "-b", "ld-debug", "--", "true"], cwd=tmp_path,
                           capture_output=True, text=True) for _ in range(3)]
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    sessions = sorted(p for p in (tmp_path / "gotrace-sessions").iterdir())
    assert len(sessions) == 3 and all((p / "meta.json").exists() for p in sessions)
    assert len({p.name for p in sessions}) == 3 and all(p.name.endswith(("-true", "-true-2", "-true-3"))
                                                        for p in sessions)


@pytest.mark.parametrize("path", ["plain", "typer"])
def test_json_out_keeps_the_programs_stdout_apart(path, tmp_path):
    """The program prints; the JSON goes to the file, and is the session's report."""
    output = ["-o", str(tmp_path / "s")] if path == "plain" else [f"-o{tmp_path / 's'}"]  # -oDIR is Typer's to parse
    out = subprocess.run([GOTRACE, "bind", "-q", "-b", "ld-debug", *output, "--json-out",
                          str(tmp_path / "r.json"), "--", "sh", "-c", "echo hello; echo world"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello\nworld\n"
    report = json.loads((tmp_path / "r.json").read_text())
    saved = json.loads(gotrace_cli("report", "--json", str(tmp_path / "s")).stdout)
    assert report == saved and report["bindings"]["total"] > 100
    bad = gotrace_cli("bind", "-q", "-o", str(tmp_path / "t"), "--json-out", str(tmp_path / "no" / "r.json"),
                      "--", "true")
    assert bad.returncode == 2 and "does not exist" in bad.stderr and not (tmp_path / "t").exists()


def test_aslr_run_json_out(tmp_path):
    out = subprocess.run([GOTRACE, "aslr", "--run", "--json-out", str(tmp_path / "a.json"), "--", "/bin/echo", "hi"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "hi\n", out.stderr
    assert any(r["path"].endswith("libc.so.6") for r in json.loads((tmp_path / "a.json").read_text())["images"])


def _plain_status(script: str) -> str:
    """The command's own account without gotrace (subprocess restores Python's ignored signals)."""
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout


SIGNALS = "grep -E '^Sig(Ign|Blk)' /proc/self/status"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_command_gets_the_signal_dispositions_it_would_have_without_gotrace(backend, tmp_path):
    """Python ignores SIGPIPE; the command must not: `yes | head -1` ends with 141."""
    _need(backend)
    out = subprocess.run([GOTRACE, "bind", "-q", "-b", backend, "-o", str(tmp_path / "s"), "--", "bash", "-c", SIGNALS],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == _plain_status(SIGNALS)
    piped = subprocess.run(["bash", "-c", f"{GOTRACE} bind -q -b {backend} -o {tmp_path / 'y'} -- yes | head -1 "
                            ">/dev/null; echo ${PIPESTATUS[0]}"], capture_output=True, text=True)
    assert piped.stdout.strip() == _plain_status("yes | head -1 >/dev/null; echo ${PIPESTATUS[0]}").strip() == "141"


def test_aslr_run_gives_the_program_its_own_dispositions():
    out = subprocess.run([GOTRACE, "aslr", "--run", "--json-out", "/dev/null", "--", "bash", "-c", SIGNALS],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == _plain_status(SIGNALS), out.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_command_that_kills_itself_is_not_an_interrupted_session(backend, tmp_path):
    _need(backend)
    out = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / "s"), "--", "sh", "-c", "kill -TERM $$")
    assert out.returncode == 128 + signal.SIGTERM, out.stderr
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["complete"] is True and meta.get("interrupted_by") is None and meta["exit_code"] == 143


def _in_pty(argv: list[str], columns: int, cwd=None, send: bytes | None = None, after: float = 0,
            timeout: float = 120) -> tuple[int, str]:
    """Run argv on a pseudo-terminal ``columns`` wide (its controlling terminal);
    optionally type ``send`` once ``after`` seconds have passed."""
    pid, fd = pty.fork()
    if pid == 0:
        if cwd:
            os.chdir(cwd)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        os.execvpe(argv[0], argv, dict(env, TERM="xterm"))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    chunks, sent, start = [], send is None, time.monotonic()
    while True:
        if not sent and time.monotonic() - start >= after:
            os.write(fd, send)
            sent = True
        if time.monotonic() - start > timeout:
            os.kill(pid, signal.SIGKILL)
            break
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return os.waitstatus_to_exitcode(status), text


def test_ctrl_c_on_the_terminal_interrupts_the_run(tmp_path):
    """The terminal's Ctrl-C reaches the command (the foreground job), not gotrace:
    the run is interrupted all the same, the session saved incomplete, exit 130."""
    code, text = _in_pty([GOTRACE, "bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", "sleep", "30"],
                         100, send=b"\x03", after=2)
    assert code == 130, text
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["complete"] is False and meta["interrupted_by"] == signal.SIGINT


def test_arch_refuses_a_program_built_for_another(tmp_path):
    out = gotrace_cli("bind", "-q", "--arch", "arm64", "-o", str(tmp_path / "s"), "--", "/bin/true")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "built for x86_64, not arm64" in out.stderr and not (tmp_path / "s").exists()


def test_aslr_names_what_a_file_is_instead_of_command_not_found(tmp_path, binaries):
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "text").write_text("not a program\n")
    (tmp_path / "trunc").write_bytes(Path("/bin/true").read_bytes()[:400])
    for name in ("empty", "text", "trunc"):
        os.chmod(tmp_path / name, 0o755)
    cases = {str(tmp_path): "is a directory", "/lib/x86_64-linux-gnu/libm.so.6": "a shared library",
             str(binaries("macho-arm64-chained")): "Mach-O", str(tmp_path / "empty"): "empty file",
             str(tmp_path / "text"): "not an ELF or Mach-O", str(tmp_path / "trunc"): "truncated"}
    for path, what in cases.items():
        out = gotrace_cli("aslr", path)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and what in lines[0] and "Traceback" not in out.stderr, (
            path, out.returncode, out.stderr)
    out = gotrace_cli("aslr", "no-such-program-xyz")
    assert out.returncode == 127 and "command not found" in out.stderr


def test_output_directories_a_user_may_give(tmp_path):
    (tmp_path / "afile").write_text("x")
    cases = [(["-o", str(tmp_path / "afile")], "exists and is not a directory"),
             (["-o", str(tmp_path / "afile" / "sub")], "is not a directory")]
    for args, message in cases:
        out = gotrace_cli("bind", "-q", "-b", "ld-debug", *args, "--", "true")
        assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    (tmp_path / "empty").mkdir()
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "empty"), "--", "true")
    assert out.returncode == 0, out.stderr
    assert load_session(tmp_path / "empty").meta["complete"]


def test_a_read_only_file_system_is_one_line(tmp_path):
    with tmpfs(tmp_path / "ro", "8m") as mnt:
        assert gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(mnt / "s"), "--", "true").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        for extra in ([], ["--force"]):
            for target in (mnt / "s", mnt / "t"):
                out = gotrace_cli("bind", "-q", "-b", "ld-debug", *extra, "-o", str(target), "--", "true")
                lines = out.stderr.strip().splitlines()
                if target.name == "s" and not extra:
                    assert out.returncode == 2 and "already exists" in lines[0]
                    continue
                assert out.returncode == 2 and lines == [f"gotrace: cannot write to {mnt}: read-only file system; "
                                                         "choose another -o"], (extra, target, out.stderr)


def test_dash_is_stdout_for_export_and_plot(tmp_path):
    sess = tmp_path / "s"
    assert gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(sess), "--", "true").returncode == 0
    n = len(load_session(sess).events)
    csv = subprocess.run([GOTRACE, "export", str(sess), "-f", "csv", "-o", "-"], capture_output=True, text=True)
    assert csv.returncode == 0 and len(csv.stdout.splitlines()) == n + 1 and not list(tmp_path.glob("-"))
    chrome = subprocess.run([GOTRACE, "export", str(sess), "-f", "chrome", "-o", "-"], capture_output=True, text=True)
    assert len([e for e in json.loads(chrome.stdout)["traceEvents"] if e["ph"] in ("X", "i")]) == n
    png = subprocess.run([GOTRACE, "plot", str(sess), "-o", "-"], capture_output=True)
    assert png.returncode == 0 and png.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    svg = subprocess.run([GOTRACE, "plot", str(sess), "-f", "svg", "-o", "-"], capture_output=True)
    assert svg.returncode == 0 and b"<svg" in svg.stdout[:400]
    big = tmp_path / "big"  # more CSV than a pipe holds: the write after head exits must meet a closed pipe
    assert gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(big), "--", "python3", "-c",
                       "import json, decimal, email.parser").returncode == 0
    csv_size = len(subprocess.run([GOTRACE, "export", str(big), "-f", "csv", "-o", "-"], capture_output=True).stdout)
    assert csv_size > 4 * 65536, csv_size
    head = subprocess.run(["bash", "-c", f"{GOTRACE} export {big} -f csv -o - | head -1; echo ${{PIPESTATUS[0]}}"],
                          capture_output=True, text=True)
    assert head.stdout.splitlines()[-1] == "1" and head.stderr == ""  # a closed pipe: quiet, exit 1


def test_the_plot_encodes_latency_honestly(tmp_path):
    """Points and p10-p90 ranges on a log axis (no bars: their length is meaningless
    there), plain tick labels, the legend outside the axes, and a session without
    latency said to be so."""
    require_bpftrace()
    from tracer.analysis.plot import figure
    from matplotlib.patches import Rectangle

    for backend in ("bpftrace", "ld-debug"):
        assert gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / backend), "--", "sh", "-c",
                           "ls / >/dev/null").returncode == 0
    timed, untimed = load_session(tmp_path / "bpftrace"), load_session(tmp_path / "ld-debug")
    fig = figure([timed, untimed])
    ax1, ax2, _ax_sym, ax3 = fig.axes
    assert ax2.get_xscale() == "log" and not [p for p in ax2.patches if isinstance(p, Rectangle)]
    assert "(top 0)" not in ax2.get_title() and "with most timed bindings" in ax2.get_title()
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax2.get_xticklabels() if t.get_text()]
    assert ticks and all("^" not in t and "×" not in t for t in ticks), ticks
    assert fig.legends and not any(ax.get_legend() for ax in (ax1, ax2, ax3))
    assert any("no latency measured" in t.get_text() for t in fig.legends[0].get_texts())
    only = figure([untimed])
    assert any("no resolver latency" in t.get_text() for t in only.axes[1].texts)


def test_tables_never_break_a_symbol_or_an_address(tmp_path, binaries):
    """At 80 columns on a terminal and through a pipe, every symbol and slot
    address of the import table appears whole on one line."""
    prog = str(binaries("go-linux-amd64-external"))
    doc = json.loads(gotrace_cli("inspect", "--json", prog).stdout)
    want = [(i["symbol"] + (f"@{i['version']}" if i["version"] else ""), f"{i['address']:#x}") for i in doc["imports"]]
    assert want
    piped = subprocess.run([GOTRACE, "inspect", "--all", prog], capture_output=True, text=True).stdout
    code, tty = _in_pty([GOTRACE, "inspect", "--all", prog], 80)
    assert code == 0
    for text in (piped, tty):
        lines = text.splitlines()
        for sym, addr in want:
            assert any(sym in line and addr in line for line in lines), (sym, addr)
    assert subprocess.run(f"{GOTRACE} inspect --all {prog} | grep -c malloc", shell=True, capture_output=True,
                          text=True).stdout.strip() != "0"


def test_summary_wording(tmp_path):
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", "true")
    assert "in 1 process (" in out.stderr and "1 processes" not in out.stderr, out.stderr
    static = tmp_path / "static"
    require(subprocess.run(["gcc", "-static", "-o", str(static), "-x", "c", "-"], input="int main(){return 0;}",
                           text=True, capture_output=True).returncode == 0, "gcc -static (libc6-dev) is missing")
    text = gotrace_cli("inspect", str(static)).stdout
    assert "static: no dynamic linker" in text and "lazy PLT (0" not in text


def test_json_out_on_a_descriptor_and_on_dev_null(tmp_path):
    """JSON on a descriptor of the script's choice; a device is written to, never replaced."""
    out = subprocess.run(["bash", "-c", f"{GOTRACE} bind -q -b ld-debug -o {tmp_path / 's'} --json-out /dev/fd/3 "
                          f"-- sh -c 'echo hello' 3>{tmp_path / 'r.json'}"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "hello\n", out.stderr
    assert json.loads((tmp_path / "r.json").read_text())["bindings"]["total"] > 100
    before = os.stat("/dev/null")
    assert gotrace_cli("aslr", "--run", "--json-out", "/dev/null", "--", "/bin/true").returncode == 0
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_rdev, after.st_ino) == (before.st_mode, before.st_rdev, before.st_ino)


def test_a_vdso_lookup_at_run_time_is_not_a_new_program(tmp_path):
    """time() is an IFUNC: binding it lazily makes its resolver look up __vdso_time
    at run time. ld-debug took that line for the start of a new exec (a second,
    nameless program image in the pid); the program exec'd once."""
    prog = tmp_path / "t"
    subprocess.run(["gcc", "-O0", "-Wl,-z,lazy", "-o", str(prog), "-x", "c", "-"], check=True,
                   input="#include <time.h>\nint main(void) { return time(0) == 0; }\n", text=True)
    logs = tmp_path / "logs"
    res = subprocess.run([GOTRACE, "bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", str(prog)],
                         capture_output=True, text=True, env=dict(os.environ, GOTRACE_LD_DEBUG_DIR=str(logs)))
    assert res.returncode == 0, res.stderr
    log = "".join(p.read_text() for p in logs.iterdir())
    assert "symbol `__vdso_time'" in log.split("transferring control", 1)[1]  # the run-time lookup happened
    s = load_session(tmp_path / "s")
    assert len(s.processes) == 1 and str(s.processes["exe"].iloc[0]) == str(prog)
    assert set(s.events["exe"].astype(str)) == {str(prog)}
