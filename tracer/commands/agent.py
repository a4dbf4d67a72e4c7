"""gotrace agent: keep gotrace's BPF program attached for every bind on the machine."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import GotraceError
from .options import JsonOpt

ACTIONS = ("start", "stop", "status", "serve")


def agent_command(
    action: Annotated[str, typer.Argument(help="start, stop or status (serve: the bind server, which start "
                      "starts beside the agent).", metavar="start|stop|status",
                      show_default=False)],
    socket: Annotated[Optional[str], typer.Option("--socket", help="The agent's Unix socket (also "
                      "GOTRACE_AGENT; GOTRACE_AGENT=off keeps bind from using any agent).",
                      show_default="/run/gotrace/agent.sock", metavar="PATH")] = None,
    foreground: Annotated[bool, typer.Option("--foreground", help="start: stay in the foreground as the "
                          "agent's bind server until the agent stops or this is terminated, which stops the "
                          "agent (what a systemd unit runs).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Keep the BPF program attached for every bind on this machine.

    One agent serves the machine (root starts it). Every `gotrace bind` that
    finds it has its command followed by the agent's program — no BPF load,
    no attach, no uprobe detach per command — and any user may bind through
    it: the kernel tells the agent who asks, and a user is shown only the
    processes of their own command that run as them (a setuid program in the
    tree is not followed). Without an agent, bind starts its own tracer as
    always. Examples:

      sudo gotrace agent start
      gotrace bind -- go build ./...          # as any user: through the agent
      gotrace agent status --json
      sudo gotrace agent stop

    A systemd unit (the agent stays in the foreground for it):

      [Service]
      ExecStart=/path/to/gotrace agent start --foreground
      [Install]
      WantedBy=multi-user.target

    Exit status: status is 0 when an agent runs, 1 when none does.
    """
    from ..capture.bpf import agent
    from ..render.agent import render_status
    from .output import emit_json

    if action not in ACTIONS:
        raise GotraceError(f"unknown action {action!r}: use gotrace agent start, stop or status", 2)
    path = socket or agent.socket_path() or agent.DEFAULT_SOCKET
    if action == "serve":
        from .bind_server import serve

        serve(agent.bind_socket(path), path)
        return
    if action == "start" and foreground:
        from .bind_server import serve

        try:
            running = agent.status(path)
        except agent.Unreachable:
            running = None
        if running is not None:
            raise GotraceError(f"an agent already runs at {path} (pid {running.pid}): stop it first "
                               "(sudo gotrace agent stop)")
        agent.start(path, bind_server=False)
        try:
            serve(agent.bind_socket(path), path)
        finally:
            agent.stop(path)
        return
    if action == "start":
        st = agent.start(path)
        doc = st.to_dict()
    elif action == "stop":
        st = agent.stop(path)
        doc = {"running": False, "socket": path, "stopped": st.pid if st else None}
    else:
        try:
            st = agent.status(path)
        except agent.Unreachable as exc:
            st, doc = None, {"running": False, "socket": path, "problem": str(exc)}
        else:
            doc = st.to_dict() if st else {"running": False, "socket": path}
    if as_json:
        emit_json(doc, True)
    else:
        render_status(action, doc)
    if action == "status" and not doc.get("running"):
        raise typer.Exit(1)
