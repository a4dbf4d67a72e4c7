"""gotrace's agent (capture/bpf/agent.py, csrc/bindload.c --agent): the BPF program kept attached.

Started and stopped here, on a socket of the test's own. Checked against what is not the agent:
the same commands under a loader of their own (lookup by lookup), the processes' own account of
their pids and users (os.getpid/os.getuid, as /proc has them), the commands' real exit codes and
output. A user other than root binds through it with Debian's python3 and a world-readable copy of
tracer/ (tests/agent_user.py): such a user sees only their own command's tree, never a second
user's processes running at the same time nor a setuid program's; cannot have another user's
process, nor a process of theirs they did not start, traced; cannot stop the agent; and receives
no file they could not open themselves.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, gotrace_cli, require, require_bpf
from linkbins import build
from tracer import bind, load_session, procfs
from tracer.capture.bpf import agent

USERS = ("gotrace-agent-u1", "gotrace-agent-u2")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's: any user may run it (the venv's may be under /root)


@pytest.fixture(scope="module")
def shared_dir():
    """A directory every user may enter: the agent's socket, tracer/'s copy, the helpers' output."""
    d = Path(tempfile.mkdtemp(prefix="gotrace-agent-test-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def running(shared_dir):
    """An agent on the test's socket, stopped (and checked gone) at the end."""
    require_bpf()
    path = str(shared_dir / "agent.sock")
    st = agent.start(path)
    yield st
    agent.stop(path)
    assert not os.path.exists(f"/proc/{st.pid}") or _zombie(st.pid)


def _zombie(pid: int) -> bool:
    """Ended (a zombie, or gone): procfs.ending's answer."""
    return procfs.ending(pid) is not None


def _env(sock: str | None) -> dict[str, str]:
    return dict(os.environ, GOTRACE_AGENT=sock or "off")


def _lookups(session) -> Counter:
    ev = session.events
    cols = [ev[c].astype(str) for c in ("exe", "requester", "symbol", "version", "provider", "kind")]
    return Counter(zip(*cols, ev["resolved"].astype(bool)))


@pytest.fixture(scope="module")
def bins(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    return build(tmp_path_factory.mktemp("agentbins"))


def _work(bins) -> list[str]:
    """Eager, lazy, dlopen/dlsym and fatal lookups, forks and execs: a tree whose lookups do not vary."""
    return ["sh", "-c", f"{bins['picker']}; {bins['opener']} {bins['libplug']} plug; {bins['fatal']}; "
            "python3 -c 'import ssl'; exit 0"]


def test_bind_through_the_agent_records_what_its_own_loader_does(running, bins, tmp_path, monkeypatch):
    """Lookup by lookup, the same as a loader started for the command; nothing lost; the session
    says the agent followed it."""
    sessions = {}
    for mode, sock in (("own", None), ("agent", running.socket)):
        monkeypatch.setenv("GOTRACE_AGENT", sock or "off")
        res = bind(_work(bins), out=tmp_path / mode, backend="bpf")
        assert res.exit_code == 0
        sessions[mode] = load_session(res.session)
    own, via = sessions["own"], sessions["agent"]
    assert via.complete and via.meta["lost_events"] == 0
    assert "agent" in via.meta["bpf_started"] and "agent" not in own.meta["bpf_started"]
    assert _lookups(via) == _lookups(own)
    assert len(via.events) > 4000 and set(via.events["kind"].astype(str)) >= {"eager", "lazy", "dlsym"}
    assert (~via.events["resolved"].astype(bool)).any()  # fatal's lookup that failed
    assert sorted(via.processes["exe"].astype(str).map(os.path.basename)) == \
        sorted(own.processes["exe"].astype(str).map(os.path.basename))


def test_two_concurrent_binds_get_disjoint_sessions_equal_to_each_alone(running, bins, tmp_path):
    cmds = {"a": _work(bins), "b": ["sh", "-c", "for i in 1 2 3; do python3 -c 'import ctypes'; done; ls / >/dev/null"]}
    alone = {}
    for k, cmd in cmds.items():
        r = gotrace_cli("bind", "-q", "-o", str(tmp_path / f"alone-{k}"), "--", *cmd, env=_env(running.socket))
        assert r.returncode == 0, r.stderr
        alone[k] = load_session(tmp_path / f"alone-{k}")
    procs = {k: subprocess.Popen([sys.executable, "-m", "tracer", "bind", "-q", "-o", str(tmp_path / f"both-{k}"),
                                  "--", *cmd], env=_env(running.socket), stderr=subprocess.PIPE, text=True)
             for k, cmd in cmds.items()}
    for k, p in procs.items():
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    both = {k: load_session(tmp_path / f"both-{k}") for k in cmds}
    for k in cmds:
        assert "agent" in both[k].meta["bpf_started"]
        assert both[k].meta["lost_events"] == 0
        assert _lookups(both[k]) == _lookups(alone[k]), k
    pids = {k: set(both[k].processes["pid"].astype(int)) for k in cmds}
    assert pids["a"] and pids["b"] and not pids["a"] & pids["b"]
    assert set(both["a"].events["pid"].astype(int)) <= pids["a"]
    assert set(both["b"].events["pid"].astype(int)) <= pids["b"]


def test_a_killed_agent_leaves_bind_falling_back_in_one_line(shared_dir, tmp_path):
    """The socket is left behind, nothing answers: bind says so once and runs the command under its
    own loader, unharmed (its output, its exit code)."""
    require_bpf()
    path = str(shared_dir / "doomed.sock")
    st = agent.start(path)
    os.kill(st.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _zombie(st.pid):
        time.sleep(0.02)
    agent._reap(st.pid)
    assert os.path.exists(path)
    r = gotrace_cli("bind", "-o", str(tmp_path / "s"), "--", "sh", "-c", "echo out; echo err >&2; exit 7",
                    env=_env(path))
    assert r.returncode == 7 and r.stdout == "out\n"
    said = [line for line in r.stderr.splitlines() if "agent" in line.split("session saved")[0] and "doomed" in line]
    assert len(said) == 1 and "no agent answers" in said[0] and "tracing without it" in said[0], r.stderr
    assert "Traceback" not in r.stderr and "err\n" in r.stderr
    s = load_session(tmp_path / "s")
    assert s.complete and "agent" not in s.meta["bpf_started"] and len(s.events) > 0
    r = gotrace_cli("agent", "status", "--socket", path)
    assert r.returncode == 1 and "not running" in r.stdout and "no agent answers" in r.stdout
    r = gotrace_cli("agent", "stop", "--socket", path)
    assert r.returncode == 0 and not os.path.exists(path)


def test_an_agent_killed_during_a_run_leaves_the_command_unharmed(shared_dir, tmp_path):
    require_bpf()
    path = str(shared_dir / "dies.sock")
    st = agent.start(path)
    threading.Timer(1.0, os.kill, (st.pid, signal.SIGKILL)).start()
    r = gotrace_cli("bind", "-o", str(tmp_path / "s"), "--", "sh", "-c",
                    "python3 -c 'import ssl'; sleep 2; python3 -c 'import ssl'; echo done; exit 5", env=_env(path))
    agent._reap(st.pid)
    assert r.returncode == 5 and r.stdout == "done\n", r.stderr
    assert "Traceback" not in r.stderr
    s = load_session(tmp_path / "s")
    assert not s.complete and "ended during the run" in (s.meta.get("incomplete_reason") or "")
    assert len(s.events) > 0  # what was recorded before it died is kept
    os.unlink(path)


def test_agent_cli_start_status_stop(shared_dir):
    require_bpf()
    path = str(shared_dir / "cli.sock")
    r = gotrace_cli("agent", "start", "--socket", path, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["running"] and doc["socket"] == path and Path(f"/proc/{doc['pid']}").exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666  # any user connects; the kernel says who they are
    assert Path(f"/proc/{doc['pid']}/exe").resolve().name.startswith("bindload-")
    again = json.loads(gotrace_cli("agent", "start", "--socket", path, "--json").stdout)
    assert again["pid"] == doc["pid"]  # one agent per socket
    r = gotrace_cli("agent", "status", "--socket", path)
    assert r.returncode == 0 and f"pid {doc['pid']}" in r.stdout
    r = gotrace_cli("agent", "stop", "--socket", path)
    assert r.returncode == 0 and "stopped" in r.stdout
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _zombie(doc["pid"]):
        time.sleep(0.02)
    assert _zombie(doc["pid"]) and not os.path.exists(path)
    assert not os.path.exists(path.replace("cli.sock", "cli-bind.sock"))  # the bind server ended with it
    r = gotrace_cli("agent", "status", "--socket", path, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["running"] is False
    r = gotrace_cli("agent", "restart", "--socket", path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "start, stop or status" in r.stderr


# ---- the bind server: a plain bind finished by a process with everything loaded ----

def test_the_bind_server_finishes_a_plain_bind_as_gotrace_would(running, bins, tmp_path):
    """The same lookups as a loader of the command's own; the command is the client's child (its
    parent's argv is the client's), reads the client's stdin, writes its stdout; the exit code and
    a signal's interruption are the command's, as without the agent."""
    assert os.path.exists(running.socket.replace("agent.sock", "agent-bind.sock"))
    r = gotrace_cli("bind", "-q", "-o", str(tmp_path / "via"), "--", *_work(bins), env=_env(running.socket))
    assert r.returncode == 0, r.stderr
    gotrace_cli("bind", "-q", "-o", str(tmp_path / "own"), "--", *_work(bins), env=_env(None))
    via, own = load_session(tmp_path / "via"), load_session(tmp_path / "own")
    assert "bind server" in via.meta["bpf_started"] and via.meta["lost_events"] == 0 and via.complete
    assert _lookups(via) == _lookups(own)
    cmd = ["sh", "-c", "read x; echo got $x; tr '\\0' ' ' < /proc/$PPID/cmdline; echo; exit 3"]
    r = gotrace_cli("bind", "-o", str(tmp_path / "io"), "--", *cmd, env=_env(running.socket), input="hello\n")
    assert r.returncode == 3 and r.stdout.startswith("got hello\n"), r.stderr
    assert "-m tracer bind -o" in r.stdout  # the command's parent is the client itself
    assert "session saved" in r.stderr and "Traceback" not in r.stderr
    assert f"backend bpf (auto: gotrace's agent (pid {running.pid}) runs its BPF program" in r.stderr
    ended = {}
    for mode, sock in (("agent", running.socket), ("own", None)):
        p = subprocess.Popen([sys.executable, "-m", "tracer", "bind", "-q", "-o", str(tmp_path / f"term-{mode}"),
                              "--", "sleep", "30"], env=_env(sock), stderr=subprocess.PIPE)
        time.sleep(1.5)
        p.send_signal(signal.SIGTERM)  # forwarded to the command, which dies of it
        p.communicate(timeout=60)
        s = load_session(tmp_path / f"term-{mode}")
        ended[mode] = (p.returncode, s.meta["exit_code"], s.meta["interrupted_by"], s.complete)
    assert ended["agent"] == ended["own"] == (143, 143, signal.SIGTERM, False)


def test_the_bind_server_serves_a_user_only_where_its_python_is_theirs_to_read(running, users):
    """Where the venv lies under /root (mode 0700, as here), the server's worker, become the user,
    could not import what it needs half-way through a bind: it says so before anything runs, and
    the console takes its usual path (the hand-over returns None; the command was not started by
    it). Where the user can read it, the server serves them: the command runs as them."""
    u1 = users[USERS[0]]
    marker = users["out"] / "ran"
    r = _as(u1, "env", f"GOTRACE_AGENT={running.socket}", SYSTEM_PYTHON, "-B",
            str(users["code"] / "agent_user.py"), "client", "--", "touch", str(marker), cwd=users["out"])
    returned = json.loads(r.stdout.splitlines()[-1])["returned"]
    if _readable_by(u1, os.path.dirname(os.__file__)) and _readable_by(u1, str(ROOT / "tracer")):
        assert returned == 0 and marker.exists() and marker.stat().st_uid == u1.pw_uid, r.stdout + r.stderr
    else:
        assert returned is None and not marker.exists(), r.stdout + r.stderr


def _readable_by(user, path: str) -> bool:
    r = _as(user, "test", "-r", path, "-a", "-x", path)
    return r.returncode == 0


def test_json_through_the_bind_server_is_on_stdout_alone(running, tmp_path):
    r = gotrace_cli("bind", "--json", "-o", str(tmp_path / "j"), "--", "sh", "-c", "echo to-stderr >&2",
                    env=_env(running.socket))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["session"]["path"] == str(tmp_path / "j") and "to-stderr" in r.stderr and "{" not in r.stderr
    assert "bind server" in load_session(tmp_path / "j").meta["bpf_started"]


def test_a_bind_server_worker_killed_mid_run_leaves_the_command_unharmed(running, tmp_path):
    """The worker doing a client's bind dies (SIGKILL) while the command runs: the command runs to
    its end, the client says in one line that the session may be lost and exits with its code."""
    server = _server_pid(running.socket)
    p = subprocess.Popen([sys.executable, "-m", "tracer", "bind", "-o", str(tmp_path / "k"), "--", "sh", "-c",
                          "sleep 2; echo finished; exit 6"], env=_env(running.socket), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    workers: list[int] = []
    while time.monotonic() < deadline and not workers:
        workers = [int(w) for w in Path(f"/proc/{server}/task/{server}/children").read_text().split()]
        time.sleep(0.05)
    assert workers, "no worker started"
    time.sleep(0.3)
    for w in workers:
        os.kill(w, signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 6 and out == "finished\n", err
    said = [line for line in err.splitlines() if "bind server" in line]
    assert len(said) == 1 and "stopped before saving the session" in said[0] and "Traceback" not in err


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _server_pid(agent_socket: str) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            argv = _cmdline(int(entry))
            if argv[1:5] == ["-m", "tracer", "agent", "serve"] and agent_socket in argv:
                return int(entry)
    raise AssertionError("no bind server runs beside the agent")


def test_no_agent_socket_and_a_stale_agent(running, tmp_path, monkeypatch):
    """No socket where GOTRACE_AGENT points: bind runs as without an agent, silently. An agent whose
    ld.so is not this machine's any more (libc6 upgraded under it): not used, in one line."""
    from tracer.capture.bpf import via_agent

    monkeypatch.setenv("GOTRACE_AGENT", str(tmp_path / "none.sock"))
    said: list[str] = []
    res = bind(["true"], out=tmp_path / "none", backend="bpf", on_warning=said.append)
    s = load_session(res.session)
    assert res.exit_code == 0 and said == [] and "agent" not in s.meta["bpf_started"] and len(s.events) > 0
    monkeypatch.setenv("GOTRACE_AGENT", running.socket)
    real = agent.status

    def replaced(path=None):
        st = real(path)
        st.ldso_id = "0:1"
        return st
    monkeypatch.setattr(via_agent, "status", replaced)
    res = bind(["true"], out=tmp_path / "stale", backend="bpf", on_warning=said.append)
    s = load_session(res.session)
    assert res.exit_code == 0 and "agent" not in s.meta["bpf_started"] and len(s.events) > 0
    assert len(said) == 1 and "was replaced since the agent started" in said[0] and "restart it" in said[0]


# ---- users other than root ----

@pytest.fixture(scope="module")
def users(shared_dir):
    """Two unprivileged users, and tracer/ where they can import it."""
    require(os.geteuid() == 0, "creating users needs root")
    require(os.access(SYSTEM_PYTHON, os.X_OK), f"{SYSTEM_PYTHON} is not installed")
    require(shutil.which("useradd") is not None and shutil.which("setpriv") is not None, "no useradd or setpriv")
    for name in USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                           check=True, capture_output=True)
    code = shared_dir / "code"
    shutil.copytree(ROOT / "tracer", code / "tracer", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tests" / "agent_user.py", code)
    out = shared_dir / "out"
    out.mkdir()
    out.chmod(0o777)
    subprocess.run(["chmod", "-R", "a+rX", str(code)], check=True)
    return {"code": code, "out": out, **{n: pwd.getpwnam(n) for n in USERS}}


def _as(user, *args: str, wait: bool = True, **kw):
    cmd = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *args]
    if not wait:
        return subprocess.Popen(cmd, **kw)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def _trace_as(users, user, sock: str, name: str, cmd: list[str], wait: bool = True):
    out = users["out"] / f"{name}.txt"
    args = [SYSTEM_PYTHON, "-B", str(users["code"] / "agent_user.py"), "trace", sock, str(out), "--", *cmd]
    if wait:
        return out, _as(user, *args, cwd=users["out"])
    return out, _as(user, *args, wait=False, cwd=users["out"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True)


def _record_pids(text: str) -> dict[str, set[int]]:
    """pids by record kind in a loader's output: E/X (exec, exit), F's parent and child, bindings'."""
    pids: dict[str, set[int]] = {"E": set(), "X": set(), "F": set(), "b": set(), "N": set()}
    for line in text.splitlines():
        f = line.split("\t")
        if f[0] in ("E", "X") and len(f) > 2:
            pids[f[0]].add(int(f[2]))
        elif f[0] == "F" and len(f) > 3:
            pids["F"] |= {int(f[2]), int(f[3])}
        elif f[0] == "N" and len(f) > 1:
            pids["N"].add(int(f[1]))
        elif line.startswith("@b["):
            pids["b"].add(int(line.split("(", 1)[1].split(",", 1)[0]))
    return pids


PIDS_SCRIPT = "import os, ssl; print('PID', os.getpid(), os.getuid(), open('/proc/self/status').read().split('Uid:')[1].split()[0])"


def test_a_user_sees_only_their_own_tree(running, users, tmp_path):
    """User 1 binds through the agent while user 2 runs the same programs, traced and untraced:
    user 1's records hold user 1's processes only (each pid's owner as the process itself read it
    from /proc), and a setuid program in user 1's tree is not followed past its exec."""
    u1, u2 = users[USERS[0]], users[USERS[1]]
    capped = users["out"] / "capped-python"  # a program with file capabilities runs in secure mode
    if not capped.exists():
        shutil.copy(os.path.realpath(SYSTEM_PYTHON), capped)
        capped.chmod(0o755)
        subprocess.run(["setcap", "cap_net_raw+ep", str(capped)], check=True, capture_output=True)
    loop = f"for i in 1 2 3 4 5 6; do {SYSTEM_PYTHON} -c \"{PIDS_SCRIPT}\"; done"
    # user 2: an untraced loop, and a traced one, both running while user 1's bind runs
    untraced = _as(u2, "sh", "-c", loop, wait=False, stdout=subprocess.PIPE, text=True)
    out2, traced2 = _trace_as(users, u2, running.socket, "u2", ["sh", "-c", loop], wait=False)
    out1, res1 = _trace_as(users, u1, running.socket, "u1",
                           ["sh", "-c", f"{loop}; su --help >/dev/null; {capped} -c 'import ctypes'; "
                            f"{SYSTEM_PYTHON} -c 'import ctypes'; exit 4"])
    u2_untraced = untraced.communicate(timeout=300)[0]
    traced2_out, traced2_err = traced2.communicate(timeout=300)
    assert res1.returncode == 0, res1.stderr
    lines1 = res1.stdout.splitlines()
    done1 = json.loads(lines1[-1])
    assert done1["exit"] == 4 and done1["end"].startswith("LOST\t0\n")
    own = {int(f[1]): (int(f[2]), int(f[3])) for f in (line.split() for line in lines1) if f[:1] == ["PID"]}
    assert len(own) == 6 and all(uid == u1.pw_uid == proc_uid for uid, proc_uid in own.values())
    theirs = {int(f[1]) for f in (line.split() for line in u2_untraced.splitlines() + traced2_out.splitlines())
              if f[:1] == ["PID"]}
    assert len(theirs) == 12
    rec1 = _record_pids(out1.read_text())
    seen1 = set().union(*rec1.values())
    assert set(own) <= rec1["E"] & rec1["X"] & rec1["b"]  # each of user 1's processes, whole
    assert not seen1 & theirs  # none of user 2's, traced or not
    rec2 = _record_pids(out2.read_text())
    assert not set().union(*rec2.values()) & set(own)
    traced_theirs = {int(f[1]) for f in (line.split() for line in traced2_out.splitlines()) if f[:1] == ["PID"]}
    assert len(traced_theirs) == 6 and traced_theirs <= rec2["E"] & rec2["b"]  # user 2's own session has them
    # su is setuid root: forked (F) but never followed into its exec
    execs = [line.split("\t")[3] for line in out1.read_text().splitlines() if line.startswith("E\t")]
    assert not any(e.endswith(("/su", "capped-python")) for e in execs) and any(e.endswith("python3") for e in execs)
    forked = rec1["F"] - rec1["E"] - {min(rec1["E"])}
    assert len(forked) == 2 and not forked & rec1["b"]  # su's and capped-python's pids: nothing of them


def test_a_user_cannot_have_what_is_not_theirs_traced(running, users):
    u1, u2 = users[USERS[0]], users[USERS[1]]
    helper = [SYSTEM_PYTHON, "-B", str(users["code"] / "agent_user.py"), "ask", running.socket]
    theirs = _as(u2, "sleep", "30", wait=False)
    mine = _as(u1, "sleep", "30", wait=False)  # user 1's own, but not a child of the asking process
    try:
        time.sleep(0.2)
        r = _as(u1, *helper, str(theirs.pid), cwd="/")
        assert r.stdout.startswith("ERR\t") and "not yours" in r.stdout, r.stdout + r.stderr
        r = _as(u1, *helper, "1", cwd="/")
        assert r.stdout.startswith("ERR\t") and "not yours" in r.stdout
        r = _as(u1, *helper, str(mine.pid), cwd="/")
        assert r.stdout.startswith("ERR\t") and "not a child" in r.stdout
        r = _as(u1, SYSTEM_PYTHON, "-c", "import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); "
                f"s.connect({running.socket!r}); s.send(b'STOP'); print(s.recv(999).decode())", cwd="/")
        assert r.stdout.startswith("ERR\tonly root may stop")
        assert agent.status(running.socket).pid == running.pid  # still running
    finally:
        for p in (theirs, mine):
            p.kill()
            p.wait()


def test_a_user_receives_no_file_they_could_not_open(running, users, tmp_path):
    """An execute-only program (mode 0711, root's): the user may run it, not read it. Through the
    agent the user's session gets no descriptor of it (the libraries it maps, which the user may
    read, it gets); root's bind of the same program goes through the agent as well."""
    d = users["out"] / "xonly"
    d.mkdir()
    d.chmod(0o755)
    prog = d / "xonly-true"
    shutil.copy("/usr/bin/true", prog)
    prog.chmod(0o711)
    u1 = users[USERS[0]]
    out, res = _trace_as(users, u1, running.socket, "xonly", [str(prog)])
    assert res.returncode == 0, res.stderr
    kept = json.loads(res.stdout.splitlines()[-1])["kept"]
    assert not [k for k in kept if str(prog) in k["msg"] and k["fd_target"]]
    assert [k for k in kept if "libc.so" in k["msg"] and k["fd_target"]]  # what the user may read, they get
    r = gotrace_cli("bind", "-q", "-o", str(tmp_path / "root"), "--", str(prog), env=_env(running.socket))
    assert r.returncode == 0
    s = load_session(tmp_path / "root")
    assert "agent" in s.meta["bpf_started"]
