"""Re-records tests/golden/bpftrace/modes-fork-exec.tsv (root, bpftrace, libc6-dbg).

The recipe README.md describes, run the way gotrace runs the script except that
nobody empties the binding map, so bpftrace prints it at exit
(tests/bindsnoop_run.py). Usage, from the checkout:

    sudo .venv/bin/python tests/golden/record_bpftrace.py
    .venv/bin/pytest tests/test_golden_parsers.py --update-golden   # then review the diff
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE.parent))

from bindsnoop_run import run_by_hand  # noqa: E402


def main() -> None:
    exe = Path(tempfile.gettempdir()) / "modes-lazy"
    subprocess.run(["gcc", "-O0", "-o", str(exe), str(HERE.parent / "csrc" / "modes.c"), "-lm", "-ldl",
                    "-Wl,-z,lazy"], check=True)
    out, code, _ = run_by_hand(["bash", "-c", f"{exe} 0.25 >/dev/null; exec {exe} 1 >/dev/null"])
    if code != 0:
        raise SystemExit("the recorded command failed")
    dest = HERE / "bpftrace" / "modes-fork-exec.tsv"
    dest.write_bytes(out)
    print(f"wrote {dest} ({len(out.splitlines())} lines)")


if __name__ == "__main__":
    main()
