"""Run by a user other than root, with Debian's python3 and a world-readable copy of tracer/ first
on sys.path (tests/test_agent.py): what `gotrace bind` does through the agent, without the rest
of gotrace (whose venv such a user may not be able to run).

  agent_user.py trace SOCKET OUT -- CMD...   one command through the agent: its raw records in OUT,
                                             then one JSON line: exit code, end lines, kept files
  agent_user.py ask SOCKET PID               TRACE PID sent as this user: the agent's answer
  agent_user.py client -- CMD...             the console's hand-over to the agent's bind server
                                             (GOTRACE_AGENT names the agent): what it returned
"""
import json
import os
import socket
import sys
import threading

from tracer.capture.bpf import agent, via_agent


def trace(sock: str, out: str, cmd: list[str]) -> None:
    st = agent.status(sock)
    child, run = via_agent.start_gated(cmd, dict(os.environ), st)
    chunks: list[bytes] = []
    kept: list[dict] = []

    def read() -> None:
        while True:
            data = os.read(run.stdout.fileno(), 1 << 16)
            if not data:
                return
            chunks.append(data)

    def keep() -> None:
        while True:
            msg, fds, _f, _a = socket.recv_fds(run.kept_files, 4096, 1)
            if not msg and not fds:
                return
            target = os.readlink(f"/proc/self/fd/{fds[0]}") if fds else None
            kept.append({"msg": msg.decode(errors="replace"), "fd_target": target})
            for fd in fds:
                os.close(fd)

    threads = [threading.Thread(target=read), threading.Thread(target=keep)]
    for t in threads:
        t.start()
    child.release()
    code = child.wait()
    run.stdin.close()
    threads[0].join(30)
    threads[1].join(30)
    end = run.stderr.read().decode(errors="replace")
    with open(out, "wb") as fh:
        fh.write(b"".join(chunks))
    print(json.dumps({"exit": code, "end": end, "kept": kept, "session": run.session}))


def ask(sock: str, pid: int) -> None:
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ctl.connect(sock)
    socket.send_fds(ctl, [f"TRACE\t{pid}".encode()], [w1, w2, b.fileno()])
    print(ctl.recv(4096).decode())


def client(cmd: list[str]) -> None:
    from tracer.commands import bind_client

    print(json.dumps({"returned": bind_client.run(["bind", "--", *cmd], cmd)}))


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(sys.argv[3:])
    elif sys.argv[1] == "trace":
        trace(sys.argv[2], sys.argv[3], sys.argv[5:])
    else:
        ask(sys.argv[2], int(sys.argv[3]))
