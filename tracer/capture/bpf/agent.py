"""gotrace's agent: the BPF program kept attached, so a traced command pays neither its load nor its detach.

One loader (csrc/bindload.c in ``--agent`` mode) runs for the machine, started by
root (``gotrace agent start``, or a systemd unit running ``gotrace agent start
--foreground``), and listens on a Unix socket any user may connect to. Each
``gotrace bind`` hands it the pid of its gated child and three descriptors; the
agent follows that child's tree and writes its records there, as a loader
started for the one command would (capture/bpf/via_agent.py). Who asks is the
kernel's word (SO_PEERCRED): a user other than root may trace only a child of
their own, and is shown only processes that run as them.

Without an agent nothing changes: ``bind`` starts its own loader (root) or
another backend. This module only finds, asks, starts and stops the agent; it
imports nothing heavy (the console script's fast path asks it first).
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ... import procfs
from ...errors import GotraceError

DEFAULT_SOCKET = "/run/gotrace/agent.sock"
SOCKET_ENV = "GOTRACE_AGENT"  # another socket, or "off": never use an agent
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def socket_path() -> str | None:
    """Where the agent listens; None when GOTRACE_AGENT=off."""
    value = os.environ.get(SOCKET_ENV, "")
    if value.lower() in ("off", "0", "no", "none"):
        return None
    return value or DEFAULT_SOCKET


def bind_socket(agent_socket: str) -> str:
    """Where the agent's bind server (commands/bind_server.py) listens, beside the agent's socket."""
    p = Path(agent_socket)
    return str(p.with_name(f"{p.stem}-bind.sock"))


@dataclass
class Status:
    """What a running agent says of itself (its STATUS answer)."""

    socket: str
    pid: int
    sessions: int
    served: int
    up_s: float
    ldso: str
    ldso_id: str  # "dev:ino" of the ld.so its uprobes are on
    program: str  # the BPF object it loaded

    def to_dict(self) -> dict:
        return {"running": True, "socket": self.socket, "pid": self.pid, "sessions": self.sessions,
                "served": self.served, "up_s": round(self.up_s, 3), "ldso": self.ldso, "ldso_id": self.ldso_id,
                "program": self.program}


class Unreachable(Exception):
    """The socket is there but nothing answers on it (an agent killed, a stale file)."""


def ask(message: str, path: str | None = None, timeout: float = 5.0) -> str | None:
    """The agent's one-line answer to ``message``; None when no agent socket exists;
    Unreachable when the socket exists and nothing answers."""
    path = path or socket_path()
    if path is None or not os.path.exists(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.send(message.encode())
        answer = sock.recv(4096)
    except (ConnectionRefusedError, FileNotFoundError) as exc:
        raise Unreachable(f"no agent answers at {path} ({exc.strerror.lower()})") from None
    except OSError as exc:
        raise Unreachable(f"the agent at {path} did not answer ({exc.strerror or exc})") from None
    finally:
        sock.close()
    if not answer:
        raise Unreachable(f"the agent at {path} hung up without answering")
    return answer.decode("utf-8", "replace")


def status(path: str | None = None) -> Status | None:
    """The running agent's status, None when there is none (Unreachable: a socket nobody answers)."""
    path = path or socket_path()
    answer = ask("STATUS", path)
    if answer is None:
        return None
    kind, _, rest = answer.partition("\t")
    if kind != "OK":
        raise Unreachable(f"the agent at {path} answered {answer!r}")
    fields = dict(part.partition("=")[::2] for part in rest.split("\t"))
    try:
        return Status(socket=path, pid=int(fields["pid"]), sessions=int(fields["sessions"]),
                      served=int(fields["served"]), up_s=int(fields["up_ms"]) / 1000, ldso=fields["ldso"],
                      ldso_id=fields["ldso_id"], program=fields["program"])
    except (KeyError, ValueError):
        raise Unreachable(f"the agent at {path} answered {answer!r}") from None


def stale(st: Status) -> str | None:
    """Why the agent's probes would miss this machine's lookups (its ld.so was replaced, e.g. by
    an upgrade of libc6), or None."""
    from ..ldso import ldso_path

    ldso = ldso_path()
    try:
        here = os.stat(ldso)
    except (OSError, TypeError):
        return None
    if st.ldso != ldso and os.path.realpath(st.ldso) != os.path.realpath(ldso):
        return f"the agent traces {st.ldso}, this machine's dynamic linker is {ldso}"
    if st.ldso_id != f"{here.st_dev}:{here.st_ino}":
        return f"{ldso} was replaced since the agent started (an upgrade of libc6?)"
    return None


def start(path: str | None = None, bind_server: bool = True) -> Status:
    """Start the agent (root), or return the one already running; with ``bind_server``, the bind
    server beside it (commands/bind_server.py), else the caller serves binds itself (``gotrace
    agent start --foreground``, what a service manager runs)."""
    from . import launch

    path = path or socket_path() or DEFAULT_SOCKET
    try:
        running = status(path)
    except Unreachable:
        running = None  # a socket left by an agent that died: the new one replaces it
    if running is not None:
        return running
    if os.geteuid() != 0:
        raise GotraceError("starting gotrace's agent needs root (it loads a BPF program): sudo gotrace agent start")
    problem = launch.host_problem()
    if problem is not None:
        raise GotraceError(f"gotrace's agent cannot run here: {problem.explain()}")
    obj, loader = launch.artifacts(build=True)
    args = launch.loader_args(0)
    Path(path).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    argv = [str(loader), "--agent", path, str(obj), *args]
    log = Path(path).with_suffix(".log")
    with open(log, "ab") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                start_new_session=True, cwd="/", close_fds=True)
    ready = _read_ready(proc, START_TIMEOUT_S)
    proc.stdout.close()
    if not ready:
        proc.kill()
        proc.wait()
        said = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise GotraceError(f"gotrace's agent did not start: {said[0] if said else 'no READY'} (log: {log})")
    st = status(path)
    if st is None:
        raise GotraceError(f"gotrace's agent started but does not answer at {path}")
    if bind_server:
        _start_bind_server(path, log)
    return st


def _start_bind_server(path: str, log: Path) -> None:
    """The bind server beside the agent (commands/bind_server.py), which finishes plain binds with
    everything loaded; without it binds still go through the agent, paying gotrace's own start."""
    import sys

    with open(log, "ab") as err:
        package = __name__.partition(".")[0]  # gotrace's console: `python -m tracer agent serve`
        proc = subprocess.Popen([sys.executable, "-m", package, "agent", "serve", "--socket", path],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                start_new_session=True, cwd="/", close_fds=True,
                                env={**os.environ, SOCKET_ENV: path})
    ready = _read_ready(proc, START_TIMEOUT_S)
    proc.stdout.close()
    if not ready:
        proc.kill()
        proc.wait()


def _read_ready(proc: subprocess.Popen, timeout: float) -> bool:
    import select

    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            return False
        buf += chunk
        if buf.startswith(b"READY"):
            return True
    return False


def stop(path: str | None = None) -> Status | None:
    """Stop the running agent (root); the status it had, None when none was running. Returns
    once its pid is gone (its uprobes detached)."""
    path = path or socket_path() or DEFAULT_SOCKET
    try:
        st = status(path)
    except Unreachable:
        if os.geteuid() == 0:
            os.unlink(path)  # an agent that died: its socket is all that is left
        return None
    if st is None:
        return None
    answer = ask("STOP", path) or ""
    if not answer.startswith("OK"):
        raise GotraceError(f"the agent refused to stop: {answer.partition(chr(9))[2] or answer}")
    deadline = time.monotonic() + STOP_TIMEOUT_S
    # until it has ended: a zombie counts (an agent whose parent is gone waits for init to reap it,
    # and not every container's init does)
    while time.monotonic() < deadline and procfs.ending(st.pid) is None:
        _reap(st.pid)
        time.sleep(0.02)
    if procfs.ending(st.pid) is None:
        raise GotraceError(f"the agent (pid {st.pid}) did not stop within {STOP_TIMEOUT_S:.0f} s")
    while time.monotonic() < deadline and os.path.exists(bind_socket(path)):  # it ends with the agent
        time.sleep(0.02)
    return st


def _reap(pid: int) -> None:
    """Collect the agent's exit status when this process started it (tests do), else nothing."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
