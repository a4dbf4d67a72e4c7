"""A plain ``gotrace bind`` handed to the agent's bind server (commands/bind_server.py).

The console script tries this first for a plain bind (plain_bind.scan) when the
agent and its bind server answer: it forks the command's gated child, has the
agent follow it (capture/bpf/via_agent.py), and gives the server everything the
bind needs — its command line, environment, working directory, stdin, stdout,
stderr and the agent session's descriptors. It then only releases the child
when told, waits for it as gotrace always does (its terminal, its signals), says
how it ended, and exits with the code the server's bind ends with. It imports
nothing heavy: Python and this module are all a traced command waits for.

When anything is missing (no agent, no server, a refusal) it returns None before
the command ran, and the console takes its usual path.
"""
from __future__ import annotations

import json
import os
import socket
import sys

from ..capture.bpf.agent import Unreachable, bind_socket, socket_path, stale, status
from ..capture.bpf.via_agent import AgentRefused, start_gated


def run(cli_argv: list[str], command: list[str]) -> int | None:
    """The bind's exit code, through the server; None when there is no server to take it."""
    agent = socket_path()
    if agent is None or not os.path.exists(agent):
        return None
    server = bind_socket(agent)
    if not os.path.exists(server):
        return None
    try:
        st = status(agent)
    except Unreachable:
        return None  # the usual path says so, in one line, and runs without it
    if st is None or stale(st):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        conn.connect(server)
        if conn.recv(4096) != b"OK":  # REFUSED: it cannot serve this user (its reason is for the docs)
            conn.close()
            return None
    except OSError:
        conn.close()
        return None
    env = dict(os.environ)
    try:
        child, run = start_gated(command, env, st)
    except AgentRefused:
        conn.close()
        return None
    cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    request = {"argv": cli_argv, "env": env, "child": child.pid, "session": run.session}
    sent = [0, 1, 2, cwd, run.stdout.fileno(), run.stderr.fileno(), run.kept_files.fileno(), run.stdin.ctl.fileno()]
    try:
        socket.send_fds(conn, [json.dumps(request).encode()], sent)
    except OSError:
        child.abort()
        conn.close()
        return None
    finally:
        os.close(cwd)
        run.stdout.close()  # the server holds them now; the agent's session ends when it lets go
        run.stderr.close()
        run.kept_files.close()
        run.stdin.close()
    return _follow(conn, child)


def _follow(conn: socket.socket, child) -> int:
    exit_code = None
    while True:
        try:
            msg = conn.recv(4096).decode()
        except OSError:
            msg = ""
        kind, _, rest = msg.partition("\t")
        if kind in ("GO", "ABORT") and exit_code is None:
            if kind == "GO":
                try:
                    child.release()
                except Exception as exc:  # noqa: BLE001 — the exec failed: its one line is the server's to say
                    sys.stderr.write(f"gotrace: {getattr(exc, 'message', exc)}\n")
            else:
                child.abort()
            exit_code = child.wait()
            try:
                conn.send(f"EXIT\t{exit_code}\t{child.interrupted}".encode())
            except OSError:
                msg = ""  # the worker is gone: said below
            else:
                continue
        elif kind == "DONE" and rest.lstrip("-").isdigit():
            return int(rest)
        elif msg:
            continue  # nothing else is said on this connection
        # the server's worker died: the command ran (or never will) all the same
        if exit_code is None:
            child.abort()
            exit_code = child.wait()
        sys.stderr.write("gotrace: the agent's bind server stopped before saving the session: "
                         "what it captured may be lost; run the command again, or without the agent "
                         "(GOTRACE_AGENT=off)\n")
        return exit_code if exit_code else 1
