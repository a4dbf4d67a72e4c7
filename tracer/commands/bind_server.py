"""The agent's bind server: a plain ``gotrace bind`` finished by a process that has everything loaded.

With the agent's BPF program attached, what is left of a bind's fixed cost is
gotrace's own start — Python, pandas, pyarrow, rich: ~0.3 s before a command of
0.01 s may even run. This server (started by ``gotrace agent start``, beside the
agent's socket: ``agent-bind.sock``) has them imported once. For each client
(commands/bind_client.py) it forks a worker that becomes the client's user —
groups, gid, uid, as the kernel names them (SO_PEERCRED/SO_PEERGROUPS), before
it reads a byte the client sent — takes the client's working directory,
environment, stdin/stdout/stderr and its agent session's descriptors, and runs
the same plain-bind path the console would (plain_bind.run), its summary on the
client's stderr and its session written as that user.

The command itself stays the client's child (its terminal, its signals, its
exit status are what they would be without gotrace): the worker asks the client
to release it ("GO") and is told how it ended ("EXIT code signal"); it answers
"DONE code" when the session is saved. Not run on macOS (no agent there).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time

from .. import procfs

SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)
MAX_REQUEST = 1 << 20


class RemoteChild:
    """The client's gated child, as the bpf backend uses a GatedChild: released and waited
    for through the client, which owns it."""

    def __init__(self, pid: int, conn: socket.socket, argv: list[str]):
        self.pid = pid
        self.conn = conn
        self.argv = argv
        self.interrupted = 0
        self.start_ns = self.end_ns = 0
        self._exit_code: int | None = None

    def release(self) -> None:
        self.start_ns = time.monotonic_ns()
        self.conn.send(b"GO")

    def abort(self) -> None:
        try:
            self.conn.send(b"ABORT")
        except OSError:
            pass
        self.wait()

    def wait(self) -> int:
        if self._exit_code is not None:
            return self._exit_code
        try:
            answer = self.conn.recv(4096).decode()
        except OSError:
            answer = ""
        fields = answer.split("\t")
        if fields[0] == "EXIT" and len(fields) == 3 and fields[1].lstrip("-").isdigit() and fields[2].isdigit():
            self._exit_code, self.interrupted = int(fields[1]), int(fields[2])
        else:  # the client is gone (killed): so is the command's terminal
            self._exit_code, self.interrupted = 128 + signal.SIGHUP, signal.SIGHUP
        self.end_ns = time.monotonic_ns()
        return self._exit_code

    def restore_signals(self) -> None:
        pass


def serve(path: str, agent_socket: str) -> None:
    """Listen on ``path`` until the agent is gone; a worker per client."""
    from ..capture.bpf import agent

    _preload()
    st = agent.status(agent_socket)
    if st is None:
        raise SystemExit(f"no agent at {agent_socket}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    old = os.umask(0)
    try:
        srv.bind(path)
    finally:
        os.umask(old)
    srv.listen(64)
    srv.settimeout(1.0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    try:
        while procfs.ending(st.pid) is None:  # until the agent has ended (a zombie counts)
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                continue
            if os.fork() == 0:
                try:
                    srv.close()
                    _worker(conn, st)
                finally:
                    os._exit(0)
            conn.close()
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def _preload() -> None:
    """What a bind needs, imported before any client comes (what each one saves)."""
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from ..analysis import interposed, report  # noqa: F401
    from ..capture import run, sink  # noqa: F401
    from ..capture.bpf import backend  # noqa: F401
    from ..render import live, report as render_report  # noqa: F401
    from . import bind_run, plain_bind  # noqa: F401


def _become(conn: socket.socket) -> None:
    """Take the client's user, groups and all, before anything it sent is read."""
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    if uid == 0:
        return
    raw = conn.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * 256)
    groups = list(struct.unpack(f"{len(raw) // 4}I", raw))
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)


def _unreadable_code() -> str | None:
    """What of this process's Python the user it became cannot read (a venv on a Python under
    /root, mode 0700): a module it imports later would fail half-way through a bind."""
    import pyarrow

    for where in (os.path.dirname(os.__file__), os.path.dirname(pyarrow.__file__),
                  os.path.dirname(os.path.dirname(os.path.abspath(__file__)))):
        if not os.access(where, os.R_OK | os.X_OK):
            return where
    return None


def _worker(conn: socket.socket, st) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _become(conn)
    unreadable = _unreadable_code()
    if unreadable is not None:
        conn.send(f"REFUSED\tthe bind server's Python ({unreadable}) is not readable by this user".encode())
        return
    conn.send(b"OK")
    msg, fds, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, 8)
    if len(fds) != 8:
        for fd in fds:
            os.close(fd)
        conn.send(b"REFUSED\tthe request lacks its descriptors")
        return
    stdin, stdout, stderr, cwd, out_r, err_r, kept, ctl = fds
    req = json.loads(msg)
    os.fchdir(cwd)
    os.close(cwd)
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(req["env"])
    code = _bind(req, conn, st, out_r, err_r, kept, ctl)
    sys.stdout.flush()
    sys.stderr.flush()
    conn.send(f"DONE\t{code}".encode())


def _bind(req: dict, conn: socket.socket, st, out_r: int, err_r: int, kept: int, ctl: int) -> int:
    """The plain bind the client scanned, with its command and agent session already made."""
    from ..capture import prelaunch
    from ..capture.bpf.via_agent import AgentRun
    from . import plain_bind
    from .output import report_failure

    argv = req["argv"]
    plain = plain_bind.scan(argv)
    if plain is None:
        return 2
    child = RemoteChild(req["child"], conn, plain.command)
    run = AgentRun(st.pid, socket.socket(fileno=ctl), out_r, err_r, socket.socket(fileno=kept), req["session"],
                   st.socket)
    prelaunch.adopt(prelaunch.Launch("bpf", list(plain.command), dict(os.environ), os.getcwd(), child, run))
    try:
        code = plain_bind.run(plain)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 — one line, as the console's main
        code = report_failure(exc)
    if child._exit_code is None:  # the command never ran (a refused option, a full disk): not left at its gate
        child.abort()
    return 0 if code is None else int(code)
