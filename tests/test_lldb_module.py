"""gotrace's commands inside a real lldb, loaded the way users load them.

Each test runs `lldb --batch` with the exact line `gotrace lldb-init` prints,
and checks the commands' output against oracles taken in the same lldb
session: lldb's own `image list -o -f`, the process's /proc/PID/maps, and
readelf on the files. Recording (`gotrace bind start/save`) is checked
against the bpftrace session of the same program.
"""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

import oracles
from conftest import VENV_BIN, require_bpftrace, require_lldb
from tracer import bind, load_session

GOTRACE = str(VENV_BIN / "gotrace")
MAPS = ["script print('MAPS-BEGIN'); print(open('/proc/%d/maps' % lldb.process.GetProcessID()).read()); "
        "print('MAPS-END')"]
QUIET_GO = ["process handle SIGURG -s false -n false -p true", "process handle SIGPIPE -s false -n false -p true"]


def _import_line() -> str:
    out = subprocess.run([GOTRACE, "lldb-init"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("command script import /")
    return lines[0]


def _lldb(cmds: list[str], prog, *args: str) -> str:
    from tracer.capture.lldb.loader import lldb_binary

    argv = [lldb_binary(), "--batch", "-o", _import_line()]
    for c in cmds:
        argv += ["-o", c]
    out = subprocess.run(argv + ["--", str(prog), *args], capture_output=True, text=True, timeout=300)
    return out.stdout + out.stderr


def _after(out: str, cmd: str) -> str:
    """The output of one command in an lldb --batch transcript."""
    start = out.index(f"(lldb) {cmd}\n") + len(f"(lldb) {cmd}\n")
    end = out.find("\n(lldb) ", start)
    return out[start:end if end >= 0 else None]


def _maps(out: str) -> dict[str, int]:
    start = out.index("\nMAPS-BEGIN\n") + 12  # the printed marker, not the echoed command
    return oracles.maps_bases(out[start:out.index("\nMAPS-END", start)])


def test_lldb_init_line_loads_and_helps():
    require_lldb()
    out = _lldb(["help gotrace", "help gotrace bind"], "/bin/true")
    assert "cannot load" not in out and "error" not in out.lower(), out
    help_text = _after(out, "help gotrace")
    for sub in ("aslr", "stubs", "bind"):
        assert re.search(rf"^\s+{sub}\s+--", help_text, re.M), help_text
    assert "save DIR" in _after(out, "help gotrace bind")


@pytest.mark.parametrize("name,pie", [("go-linux-amd64-internal", False), ("go-linux-amd64-pie", True)])
def test_aslr_inside_lldb_agrees_with_image_list_and_maps(name, pie, binaries):
    require_lldb()
    prog = binaries(name)
    out = _lldb(QUIET_GO + ["b main.main", "run", "gotrace aslr --json", "image list -o -f", *MAPS], prog)
    rows = json.loads(_after(out, "gotrace aslr --json"))
    offsets = {}
    for line in _after(out, "image list -o -f").splitlines():
        m = re.match(r"\[\s*\d+\]\s+(0x[0-9a-f]+)\s+(\S+)", line.strip())
        if m:
            offsets[m.group(2)] = int(m.group(1), 16)
    kernel = _maps(out)
    checked = 0
    for r in rows:
        if not r["path"].startswith("/"):
            continue
        assert r["slide"] == offsets[r["path"]], r  # lldb's own account of the slide
        assert r["load_base"] == kernel[os.path.realpath(r["path"])], r  # the kernel's
        checked += 1
    assert checked >= 3
    main = next(r for r in rows if os.path.realpath(r["path"]) == os.path.realpath(prog))
    first_load = min(v for v, _, _ in oracles.readelf_loads(prog)) & ~0xFFF
    assert main["link_base"] == first_load and main["position_independent"] is pie
    assert (main["slide"] != 0) is pie


def _readelf_symbol(path: str, name: str) -> int:
    out = subprocess.run(["readelf", "-Ws", "--dyn-syms", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[7].split("@")[0] == name and parts[3] == "FUNC" and int(parts[1], 16):
            return int(parts[1], 16)
    raise AssertionError(f"{name} not in {path}")


def test_stubs_inside_lldb_unbound_then_bound(tmp_path):
    require_lldb()
    prog = tmp_path / "selfmaps"
    subprocess.run(["gcc", "-O0", "-Wl,-z,lazy", "-o", str(prog), os.path.join(os.path.dirname(__file__),
                    "csrc", "selfmaps.c"), "-lm"], check=True)
    out = _lldb(["b main", "run", "gotrace stubs --json", "b atoi", "continue", "gotrace stubs --json", *MAPS],
                prog, str(tmp_path / "m"), "5")
    first, second = (json.loads(t) for t in re.findall(r"\(lldb\) gotrace stubs --json\n(\{.*?\n\})", out, re.S))
    lazy_at_main = [s for s in first["slots"] if s["mode"] == "lazy"]
    assert lazy_at_main and all(s["state"] == "unbound" for s in lazy_at_main), lazy_at_main
    by_symbol = {s["symbol"].split("@")[0]: s for s in second["slots"]}
    libc = os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6")
    want = _maps(out)[libc] + _readelf_symbol(libc, "fopen")
    assert by_symbol["fopen"]["state"] == "bound" and by_symbol["fopen"]["value"] == want
    assert by_symbol["fopen"]["target"].endswith("libc.so.6")
    assert not first["anomalies"] and not second["anomalies"]


def test_bind_start_save_inside_lldb_matches_bpftrace(modes_bins, tmp_path):
    require_lldb()
    require_bpftrace()
    prog = str(modes_bins["lazy"])
    sess = tmp_path / "in-lldb"
    out = _lldb(["process launch --stop-at-entry", "gotrace bind start", "continue", f"gotrace bind save {sess}"],
                prog, "0.25")
    assert "bindings saved" in out, out
    s = load_session(sess)
    assert s.meta["backend"] == "lldb" and s.meta["complete"] and int(s.processes["exit_code"].iloc[0]) == 0
    assert s.meta["latency_method"]["calibration"]["rounds"] > 0
    ev = s.events
    assert set(ev.loc[ev["symbol"] == "cos", "kind"].astype(str)) == {"lazy"}
    assert set(ev.loc[ev["symbol"] == "sin", "kind"].astype(str)) == {"dlsym"}
    ref = load_session(bind([prog, "0.25"], out=tmp_path / "bpf", backend="bpftrace", env=dict(os.environ)).session)

    def keys(e):
        return set(zip(e["requester"].astype(str), e["symbol"].astype(str), e["kind"].astype(str),
                       e["provider"].astype(str), e["resolved"]))
    assert keys(ev) == keys(ref.events)
    rep = subprocess.run([GOTRACE, "report", "--json", str(sess)], capture_output=True, text=True)
    assert rep.returncode == 0 and json.loads(rep.stdout)["session"]["descendants_traced"] is False


def test_commands_inside_lldb_bad_input(binaries, tmp_path):
    require_lldb()
    # lldb --batch stops at the first failing command: one lldb each
    for cmd, message in (("gotrace aslr", "no live process"), ("gotrace bind save /nonexistent/x", "nothing recorded"),
                         ("gotrace bind frobnicate", "gotrace bind: argument action: invalid choice"),
                         ("gotrace stubs", "no stopped process")):
        out = _lldb([cmd], "/bin/true")
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], out
    static = binaries("go-linux-amd64-static")
    out = _lldb(["process launch --stop-at-entry", "gotrace bind start"], static)
    assert re.search(r"error: this process has no dynamic linker", out), out
    assert "Traceback" not in out


def _venv_first_on_path() -> dict[str, str]:
    """An activated venv (the quickstart's PATH): lldb's Python then takes the
    venv's base Python for its standard library, not its own."""
    return dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def test_save_works_with_the_venv_on_path_and_check_proves_it(tmp_path):
    """lldb-init --check records and saves a session; with gotrace's venv first on
    PATH (its Python a different build than the one lldb embeds) saving must
    still work: the module puts lldb's own standard library back on its path."""
    require_lldb()
    env = _venv_first_on_path()
    out = subprocess.run([GOTRACE, "lldb-init", "--check"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "saved a session that reads back" in out.stderr
    from tracer.capture.lldb.loader import lldb_binary

    dest = tmp_path / "s"
    steps = [_import_line(), "process launch --stop-at-entry", "gotrace bind start --no-calibrate", "continue",
             f"gotrace bind save {dest}", "script import ssl; print('SSL', ssl.OPENSSL_VERSION)"]
    run = subprocess.run([lldb_binary(), "--batch", *[a for s in steps for a in ("-o", s)], "--", "/bin/true"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert "bindings saved" in run.stdout + run.stderr, run.stdout + run.stderr
    assert load_session(dest).meta["complete"] and "SSL OpenSSL" in run.stdout


def test_save_replaces_its_own_unfinished_session(tmp_path):
    """A save that died mid-way left meta.json with complete: false: a retry
    without --force replaces it (any other existing directory is still refused)."""
    require_lldb()
    dest = tmp_path / "s"
    dest.mkdir()
    (dest / "meta.json").write_text(json.dumps({"format": "gotrace-session", "schema_version": 3, "complete": False,
                                                "backend_choice": "lldb command module (gotrace bind start)"}))
    (dest / "events").mkdir()
    out = _lldb(["process launch --stop-at-entry", "gotrace bind start --no-calibrate", "continue",
                 f"gotrace bind save {dest}"], "/bin/true")
    assert "bindings saved" in out, out
    assert load_session(dest).meta["complete"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep").write_text("x")
    out = _lldb(["process launch --stop-at-entry", "gotrace bind start --no-calibrate", "continue",
                 f"gotrace bind save {other}"], "/bin/true")
    assert "already exists" in out and (other / "keep").exists()


def test_a_session_recorded_without_calibration_is_timed_by_lldb_raw(tmp_path):
    """`gotrace bind start --no-calibrate` skips the stop/resume calibration: latency_ns is null, but
    every lookup's stop-to-stop time is still recorded (latency_raw_ns, README's lldb latency). So the
    session's method is lldb's, uncalibrated, never "measures no latency". Oracle: the session's own
    events read by pyarrow (latency_raw_ns set on every row, latency_ns on none) and its meta's
    calibration (no median)."""
    import pyarrow.parquet as pq

    require_lldb()
    dest = tmp_path / "s"
    out = _lldb(["process launch --stop-at-entry", "gotrace bind start --no-calibrate", "continue",
                 f"gotrace bind save {dest}"], "/bin/true")
    assert "bindings saved" in out, out
    ev = pq.read_table(dest / "events").to_pydict()
    assert ev["latency_raw_ns"] and None not in ev["latency_raw_ns"] and set(ev["latency_ns"]) == {None}
    assert json.loads((dest / "meta.json").read_text())["latency_method"]["calibration"]["median_ns"] is None
    cmp = json.loads(subprocess.run([GOTRACE, "compare", "--json", str(dest), str(dest)], capture_output=True,
                                    text=True).stdout)
    method = cmp["a"]["latency_method"]
    assert method["instrument"] == "lldb" and method["calibration_ns"] is None
    assert "not calibrated" in method["text"] and "no latency" not in method["text"]


def test_stubs_inside_lldb_takes_data_slots_for_data(tmp_path):
    """A GOT slot of a data symbol (stdout, a pointer into libc's .bss) is bound
    data, not a call slot "inside no image": no anomaly, and its value is inside
    a mapping the kernel lists for the process."""
    require_lldb()
    prog = tmp_path / "data"
    subprocess.run(["gcc", "-O0", "-pie", "-fPIC", "-o", str(prog), "-x", "c", "-"], check=True, text=True,
                   input="#include <stdio.h>\nint main(void) { fputs(\"x\\n\", stdout); return 0; }\n")
    slots = {s for _o, t, s in oracles.readelf_symbol_relocs(prog) if t.endswith("GLOB_DAT")}
    assert any(s.startswith("stdout") for s in slots), slots  # the oracle: readelf sees a data slot
    out = _lldb(["b main", "run", "gotrace stubs --json", *MAPS], prog)
    doc = json.loads(re.search(r"\(lldb\) gotrace stubs --json\n(\{.*?\n\})", out, re.S).group(1))
    stdout_slot = next(s for s in doc["slots"] if s["symbol"].startswith("stdout"))
    assert stdout_slot["state"] == "bound" and not doc["anomalies"], doc["anomalies"]
    maps_text = out[out.index("\nMAPS-BEGIN\n") + 12:out.index("\nMAPS-END")]
    ranges = [tuple(int(x, 16) for x in line.split()[0].split("-")) for line in maps_text.splitlines() if line]
    assert any(lo <= stdout_slot["value"] < hi for lo, hi in ranges)
