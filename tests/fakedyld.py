"""A stand-in for dyld, which cannot run here: a process that writes its own launch account
to $DYLD_PRINT_TO_FILE the way dyld does, and starts children that do the same at once.

Each line goes out as dyld's writes do (a ``dyld[pid]: `` prefix, then the body in 32-byte
writes on an O_APPEND descriptor, tests/dyldlog.writes), with a pause now and then so
that processes running together really interleave in the file. Only a process that
has the DYLD_PRINT_* variables writes, as dyld only logs when they are set.

    python fakedyld.py SPEC_JSON

SPEC: {"exe": path, "binds": n, "exit": code, "children": [SPEC…], "drop_dyld": bool,
"sleep": seconds, "seed": n}. A child with "drop_dyld" runs without the DYLD_* variables
(what a SIP-protected program leaves its descendants) and so writes nothing.

With $FAKEDYLD_SEEN (a directory), each process, instead of sleeping, stays alive until a
file named by its pid is there: the test's tree watch creates it once a `ps` listing has
shown the process. A sleep is no such promise: on 2 busy cores a listing can come
seconds apart, and a child that had come and gone between two had no parent.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from dyldlog import program, writes  # noqa: E402


def main() -> int:
    spec = json.loads(sys.argv[1])
    rnd = random.Random(spec.get("seed", 0) + os.getpid())
    children = []
    for child in spec.get("children", []):
        env = dict(os.environ)
        if child.get("drop_dyld"):
            env = {k: v for k, v in env.items() if not k.startswith("DYLD_")}
        children.append(subprocess.Popen([sys.executable, __file__, json.dumps(child)], env=env))
    path = os.environ.get("DYLD_PRINT_TO_FILE")
    if path and os.environ.get("DYLD_PRINT_BINDINGS"):
        p = program(os.getpid(), spec["exe"], binds=spec.get("binds", 10), dylibs=tuple(spec.get("dylibs", ())),
                    dlsyms=tuple(map(tuple, spec.get("dlsyms", []))), seed=spec.get("seed", 0))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for line in writes(os.getpid(), p.lines):
            for w in line:
                os.write(fd, w)
            if rnd.random() < 0.05:
                time.sleep(0.0005)
        os.close(fd)
        with open(os.environ["FAKEDYLD_TRUTH"], "a") as fh:  # the oracle: what this process wrote
            own = [f"{k}={v}" for k, v in os.environ.items() if k.startswith(("LD_", "DYLD_")) or k == "GLIBC_TUNABLES"]
            fh.write(json.dumps({"pid": os.getpid(), "exe": spec["exe"], "bindings": p.bindings,
                                 "loader_env": own}) + "\n")
    seen = os.environ.get("FAKEDYLD_SEEN")
    if seen:
        mine = os.path.join(seen, str(os.getpid()))
        deadline = time.monotonic() + 300  # a watch that never lists it: exit, and let the test fail
        while not os.path.exists(mine) and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        time.sleep(spec.get("sleep", 0))
    for c in children:
        c.wait()
    return spec.get("exit", 0)


if __name__ == "__main__":
    sys.exit(main())
