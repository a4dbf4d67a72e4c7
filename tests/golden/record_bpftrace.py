"""Re-records tests/golden/bpftrace/modes-fork-exec.tsv (root, bpftrace, libc6-dbg).

The recipe README.md describes, run the way gotrace runs the script: the bash
is held before exec, bindsnoop.bt attaches with it as ROOT_PID and this process
as MARK_PID, the bash runs, then getpgid() flushes the batched bindings and a
getppid() on every CPU marks the end. Usage, from the checkout:

    sudo .venv/bin/python tests/golden/record_bpftrace.py
    .venv/bin/pytest tests/test_golden_parsers.py --update-golden   # then review the diff
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tracer.backends.bpftrace import _mark_every_cpu, acknowledge_batches, script_args, script_path  # noqa: E402
from tracer.launch import GatedChild  # noqa: E402


def main() -> None:
    exe = Path(tempfile.gettempdir()) / "modes-lazy"
    subprocess.run(["gcc", "-O0", "-o", str(exe), str(HERE.parent / "csrc" / "modes.c"), "-lm", "-ldl",
                    "-Wl,-z,lazy"], check=True)
    child = GatedChild(["bash", "-c", f"{exe} 0.25 >/dev/null; exec {exe} 1 >/dev/null"], dict(os.environ))
    child.start()
    args = script_args(child.pid, os.getpid())
    bpf = subprocess.Popen(["bpftrace", script_path(), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, BPFTRACE_STRLEN="128", BPFTRACE_MAP_KEYS_MAX="65536"))
    lines: list[bytes] = []
    ready = threading.Event()
    marks: set[bytes] = set()
    done = threading.Event()

    def read() -> None:
        for line in bpf.stdout:
            lines.append(line)
            if line.startswith(b"C\t"):
                acknowledge_batches([int(line.split(b"\t")[1])])
            if line.startswith(b"READY"):
                ready.set()
            if line.startswith(b"MARK"):
                marks.add(line)
                if len(marks) == os.cpu_count() and any(l.startswith(b"FLUSHED") for l in lines):
                    done.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(90):
        raise SystemExit("bpftrace did not attach")
    child.release()
    if child.wait() != 0:
        raise SystemExit("the recorded command failed")
    os.getpgid(0)
    _mark_every_cpu()
    if not done.wait(10):
        raise SystemExit("no FLUSHED and marks from every CPU")
    bpf.send_signal(2)
    bpf.wait()
    out = HERE / "bpftrace" / "modes-fork-exec.tsv"
    out.write_bytes(b"".join(l for l in lines if not l.startswith(b"MARK")))
    print(f"wrote {out} ({len(lines)} lines, root pid {child.pid})")


if __name__ == "__main__":
    main()
