"""A command traced through gotrace's agent (capture/bpf/agent.py) instead of a loader of its own.

The command's gated child is forked here, as always (it is this process's child:
its terminal, its signals and its exit status are the user's). The agent is
handed its pid with three descriptors — a pipe for the records, a pipe for the
end ("LOST n", "END") and a socket for the files it keeps — the very ones a
loader started for the command would have as stdout, stderr and
GOTRACE_KEEP_FD, so the backend reads them with the same code. Closing the
connection ends the session; the agent then drains its records to the pipe and
closes it.

:class:`AgentRun` stands in for the loader's Popen: the backend closes its stdin
to end the run, checks its pid (the agent's) to tell whether the tracer died.
"""
from __future__ import annotations

import fcntl
import os
import socket

from ... import procfs
from ..child import GatedChild
from .agent import Unreachable, socket_path, stale, status

PIPE_BYTES = 1 << 20  # F_SETPIPE_SZ: room for a burst while gotrace's reader waits for the CPU (any user)
F_SETPIPE_SZ = 1031


class _End:
    """The run's end, as closing a loader's stdin: the connection goes, the agent drains and closes."""

    def __init__(self, ctl: socket.socket):
        self.ctl = ctl

    def close(self) -> None:
        try:
            self.ctl.close()
        except OSError:
            pass


class AgentRun:
    """What bpf/backend.py's capture uses of its loader's Popen, for a session of the agent."""

    def __init__(self, agent_pid: int, ctl: socket.socket, out_r: int, err_r: int, kept: socket.socket,
                 session: int, agent_socket: str):
        self.pid = agent_pid
        self.stdin = _End(ctl)
        self.stdout = os.fdopen(out_r, "rb", buffering=0)
        self.stderr = os.fdopen(err_r, "rb")
        self.kept_files = kept
        self.session = session
        self.socket = agent_socket

    def kill(self) -> None:
        self.stdin.close()

    def send_signal(self, _sig: int) -> None:
        self.stdin.close()

    def poll(self) -> int | None:
        return None if procfs.ending(self.pid) is None else 0

    def wait(self, timeout: float | None = None) -> int:
        return 0  # the agent stays: nothing to wait for


class AgentRefused(Exception):
    """The agent is there and would not take this command (the reason is its answer)."""


def agent_for_bind() -> tuple[object | None, str | None]:
    """(the running agent's Status, None) when a bind should go through it; (None, why not) when
    an agent socket is there but no usable agent answers (one line for the user); (None, None)
    when there is no agent at all (bind runs as it always did)."""
    path = socket_path()
    if path is None:
        return None, None
    try:
        st = status(path)
    except Unreachable as exc:
        return None, f"{exc}: tracing without it (`sudo gotrace agent start` starts one)"
    if st is None:
        return None, None
    why = stale(st)
    if why:
        return None, f"{why}: tracing without the agent (restart it: sudo gotrace agent stop; sudo gotrace agent start)"
    return st, None


def start_gated(argv: list[str], env: dict[str, str], st) -> tuple[GatedChild, AgentRun]:
    """``argv``'s gated child, followed by the agent from its exec. AgentRefused (the child
    aborted at its gate, never run) when the agent will not take it."""
    child = GatedChild(argv, env)
    child.start()
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        try:
            fcntl.fcntl(out_w, F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass
        try:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        except OSError:
            pass
        ctl.settimeout(10)
        ctl.connect(st.socket)
        socket.send_fds(ctl, [f"TRACE\t{child.pid}".encode()], [out_w, err_w, theirs.fileno()])
        answer = ctl.recv(4096).decode("utf-8", "replace")
        kind, _, rest = answer.partition("\t")
        refused = None if kind == "OK" and rest.isdigit() else f"the agent refused: {rest or answer or 'no answer'}"
    except OSError as exc:
        refused = f"the agent at {st.socket} did not answer ({exc.strerror or exc})"
    finally:
        os.close(out_w)
        os.close(err_w)
        theirs.close()
    if refused is not None:
        for fd in (out_r, err_r):
            os.close(fd)
        ours.close()
        ctl.close()
        child.abort()
        raise AgentRefused(refused)
    ctl.settimeout(None)
    return child, AgentRun(st.pid, ctl, out_r, err_r, ours, int(rest), st.socket)
