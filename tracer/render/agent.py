"""gotrace agent's output: one line a state, the fields a user checks."""
from __future__ import annotations

import sys


def render_status(action: str, doc: dict) -> None:
    out = sys.stdout
    if not doc.get("running"):
        if action == "stop":
            said = f"stopped (pid {doc['stopped']})" if doc.get("stopped") else "was not running"
            out.write(f"gotrace agent {said}: {doc['socket']}\n")
        else:
            out.write(f"gotrace agent: not running ({doc.get('problem') or 'no socket at ' + doc['socket']})\n")
        return
    verb = "started or running" if action == "start" else "running"
    out.write(f"gotrace agent {verb}: pid {doc['pid']}, socket {doc['socket']}\n"
              f"  sessions now {doc['sessions']}, served {doc['served']}, up {doc['up_s']:.1f} s\n"
              f"  probes on {doc['ldso']}; program {doc['program']}\n")
