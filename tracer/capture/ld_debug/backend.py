"""The no-root backend: glibc's own LD_DEBUG account of every binding.

Every dynamically linked descendant inherits ``LD_DEBUG`` through its
environment and writes ``<dir>/ld.<pid>``; a reader thread tails those files
while the command runs. What this cannot give, and says so in the session:
latency (glibc prints no times: ``latency_ns`` is null), thread ids, parent
pids, failed lookups (glibc prints successful bindings only), processes that
clear their environment or run setuid (glibc ignores LD_DEBUG_OUTPUT there),
and event times finer than the reader's poll (``ts_ns`` is when gotrace read
the line). Set GOTRACE_LD_DEBUG_DIR to keep glibc's raw logs.

The logs go to tmpfs (/dev/shm) when there is room: glibc writes one line per
binding, each its own writev(), and appending to ext4 doubled what LD_DEBUG
costs the traced processes (30 `gcc -c` runs: +0.24 s CPU on ext4, +0.12 s on
tmpfs, over 0.49 s untraced). So that memory stays flat however long the
build, a log is deleted once its process is gone and every line is read.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

from ... import procfs
from ...binary import facts
from ...session.schema import events_table, loader_env
from ..backend import Availability, CaptureRequest, CaptureResult
from ..background import Poller, preload
from ..child import GatedChild
from ..ldso import ldso_path
from .envwatch import EnvWatch, match_images
from .parse import LdDebugFileParser

POLL_S = 0.2  # each sweep stats every live process's log file
TMPFS = "/dev/shm"
TMPFS_MIN_FREE = 512 << 20  # else the logs go to the default temporary directory
LD_DEBUG_VALUE = "files,bindings,reloc"
KEEP_ENV = "GOTRACE_LD_DEBUG_DIR"  # keep glibc's raw logs there (debugging, tests)


class LdDebugBackend:
    name = "ld-debug"

    def probe(self) -> Availability:
        if ldso_path() is None:
            return Availability(False, "no glibc dynamic linker found on this host",
                                "ld-debug needs a glibc-based Linux system")
        return Availability(True, "glibc LD_DEBUG needs no privileges")

    def capture(self, request: CaptureRequest) -> CaptureResult:
        keep = os.environ.get(KEEP_ENV)
        logdir = keep or tempfile.mkdtemp(prefix="gotrace-ld-debug-", dir=tmpfs_dir())
        if keep:
            os.makedirs(keep, exist_ok=True)
        env = dict(request.env)
        env["LD_DEBUG"] = LD_DEBUG_VALUE
        env["LD_DEBUG_OUTPUT"] = os.path.join(logdir, "ld")
        reader = _Tailer(logdir, request, env.get("PATH", os.defpath), keep_logs=bool(keep))
        first = EnvWatch(logdir)  # each process's environment, read as its ld.so starts
        child = GatedChild(request.argv, env)
        try:
            first.start()
            child.start()
            reader.start()
            child.release()
            preload()  # pyarrow loads while the command runs, not before it starts
            exit_code = child.wait()
        finally:
            reader.stop()
            first.stop()
            if not keep:
                shutil.rmtree(logdir, ignore_errors=True)
        processes = processes_rows(reader.parsers, child.pid, request.argv, exit_code, child.start_ns, child.end_ns,
                                   image_reads=first.seen, root_env=loader_env(f"{k}={v}" for k, v in env.items()))
        return CaptureResult(
            exit_code=exit_code,
            interrupted=child.interrupted,
            processes=processes,
            images=reader.image_rows(),
            relocations=None,
            meta={
                "ts_source": "time gotrace read the line (LD_DEBUG prints no timestamps)",
                "latency_method": None,
                "ld_debug": LD_DEBUG_VALUE,
                "ld_debug_logs": keep,
                "ld_debug_log_dir": os.path.dirname(logdir),
                "limits": ["no latency", "no failed lookups", "no tid or ppid",
                           "processes that clear LD_DEBUG or run setuid are not seen",
                           "loader_env is read from /proc as each process's ld.so starts (csrc/envwatch.c): null "
                           "for a process gone or already running its program by then, and for a pid's later images"],
                "loader_env_unseen": sum(1 for p in processes if p.get("loader_env") is None),
                **({"loader_env_problem": first.problem} if first.problem else {}),
            },
        )


def tmpfs_dir() -> str | None:
    """/dev/shm if it is writable and has room, else None (the default)."""
    try:
        st = os.statvfs(TMPFS)
    except OSError:
        return None
    return TMPFS if os.access(TMPFS, os.W_OK) and st.f_bavail * st.f_frsize >= TMPFS_MIN_FREE else None


def _guest_aware(prefix: str | None, read=facts.jump_slot_symbols):
    """What ``read`` says of an object as its process saw it (its PLT slot names, its versioned
    references): a translated guest's /lib/libc.so.6 is $QEMU_LD_PREFIX/lib/libc.so.6 when that
    exists (qemu's rule)."""
    if not prefix:
        return read

    def of(path: str):
        guest = prefix.rstrip("/") + path if path.startswith("/") else None
        return read(guest if guest and os.path.exists(guest) else path)
    return of


class _Tailer(Poller):
    """Reads new lines from every ld.<pid> file and hands bindings to the sink."""

    interval = POLL_S

    def __init__(self, logdir: str, request: CaptureRequest, search_path: str, keep_logs: bool = False):
        super().__init__("gotrace-ld-debug")
        self.logdir = logdir
        self.request = request
        self.search_path = search_path
        self.jump_slots = _guest_aware(request.env.get("QEMU_LD_PREFIX"))
        self.versioned = _guest_aware(request.env.get("QEMU_LD_PREFIX"), facts.versioned_references)
        self.parsers: dict[int, LdDebugFileParser] = {}
        self.offsets: dict[str, int] = {}
        self.partial: dict[str, bytes] = {}
        self.keep_logs = keep_logs  # retired logs stay, as ld.<pid>.done (ld.<pid>.<k>.done for a reused pid)
        self.retired: dict[str, int] = {}  # renamed logs of gone processes -> pid, read once more, then deleted

    def finish(self) -> None:
        rows: list[tuple] = []
        for parser in self.parsers.values():
            parser.flush(rows)
        self._emit(rows)

    def poll(self) -> None:
        self._sweep()

    def _sweep(self) -> None:
        rows: list[tuple] = []
        try:
            names = os.listdir(self.logdir)
        except FileNotFoundError:
            return
        known = len(self.parsers)
        for name in names:
            pid_s = name.rsplit(".", 1)[-1]
            if not pid_s.isdigit():
                continue
            pid = int(pid_s)
            if not self._read(name, pid, rows) and not procfs.alive(pid):
                self._retire(name, pid)
        for name, pid in list(self.retired.items()):
            self._read(name, pid, rows)
            if not procfs.alive(pid):  # else a new process reusing the pid may still write to it
                if not self.keep_logs:
                    os.unlink(os.path.join(self.logdir, name))
                del self.retired[name]
                self.offsets.pop(name, None)
        self._emit(rows)
        if len(self.parsers) != known:
            self.request.on_process(len(self.parsers))

    def _read(self, name: str, pid: int, rows: list[tuple]) -> bool:
        """Parse the new lines of one log; False if there were none."""
        path = os.path.join(self.logdir, name)
        off = self.offsets.get(name, 0)
        try:
            if os.stat(path).st_size <= off:  # one syscall for a file with nothing new, not three
                return False
            with open(path, "rb") as fh:
                fh.seek(off)
                data = fh.read()
        except OSError:
            return False
        if not data:
            return False
        self.offsets[name] = off + len(data)
        data = self.partial.pop(name, b"") + data
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            self.partial[name] = data[cut:]
        parser = self.parsers.get(pid)
        if parser is None:
            parser = self.parsers[pid] = LdDebugFileParser(pid, self.search_path, jump_slots=self.jump_slots,
                                                               versioned=self.versioned)
        parser.feed(data[:cut].decode("utf-8", "replace").splitlines(), time.monotonic_ns(), rows)
        return True

    def _retire(self, name: str, pid: int) -> None:
        """Move a gone process's fully read log aside, to be read once more
        (a write may have landed since) and deleted: a process that reuses the
        pid creates a new log, or, if it opened the old one just before the
        move, keeps it from deletion until it is gone too."""
        if name in self.partial:  # glibc writes whole lines: a fragment means more is coming
            return
        done, k = f"{name}.done", 1
        while done in self.retired or os.path.exists(os.path.join(self.logdir, done)):  # a reused pid's
            k += 1
            done = f"{name}.{k}.done"  # never ends in digits: the sweep would take it for a live pid's log
        try:
            os.rename(os.path.join(self.logdir, name), os.path.join(self.logdir, done))
        except OSError:
            return
        self.offsets[done] = self.offsets.pop(name, 0)
        self.retired[done] = pid

    def _emit(self, rows: list[tuple]) -> None:
        if rows:
            self.request.sink(events_of(rows))

    def image_rows(self) -> list[tuple[int, str, int]]:
        return [row for p in self.parsers.values() for row in p.image_rows()]


def events_of(rows: list[tuple]):
    """The parser's binding tuples as the events table. LD_DEBUG prints successful
    bindings only, no tid, no latency: the table builder's defaults."""
    ts, pid, exe, req, sym, ver, prov, kind = zip(*rows)
    return events_table({"ts_ns": ts, "pid": pid, "exe": exe, "requester": req, "symbol": sym,
                         "version": ver, "provider": prov, "kind": kind}, "ld-debug")


def log_pid(name: str) -> int | None:
    """The pid of an LD_DEBUG_OUTPUT file by its name: ``ld.1234``, or kept by
    gotrace as ``ld.1234.done`` / ``ld.1234.2.done`` (a reused pid's)."""
    parts = name.split(".")
    if parts and parts[-1] == "done":
        parts.pop()
        if len(parts) > 2 and parts[-1].isdigit() and parts[-2].isdigit():
            parts.pop()
    return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else None


def processes_rows(parsers: dict, root_pid: int | None = None, argv: list[str] | None = None,
                   exit_code: int | None = None, start_ns: int | None = None,
                   end_ns: int | None = None, image_reads: dict | None = None,
                   root_env: list[str] | None = None) -> list[dict]:
    """One row per program image each pid's log shows (the root's from what gotrace
    knows of the command it ran; none for a log imported from elsewhere). ``image_reads``:
    envwatch's reads of each pid's images (their loader_env, and the exe made absolute where
    ld.so named it by a relative argv[0]: envwatch.match_images); ``root_env``: the root's loader
    variables, as gotrace exec'd it."""
    rows = []
    pids = set(parsers) | ({root_pid} if root_pid is not None else set())
    forked = {}  # children seen only in their parent's file: they ran the parent's program
    for parser in parsers.values():
        for child in parser.other_pids - pids:
            forked[child] = parser.pid
    matched = {pid: match_images(parsers[pid].exes(), reads) for pid, reads in (image_reads or {}).items()
               if pid in parsers and parsers[pid].images}
    for pid in [*sorted(pids), *sorted(set(forked) - pids)]:  # a forked child after the parent it copies
        parser = parsers.get(pid)
        parent = parsers.get(forked.get(pid))
        exes = parser.exes() if parser and parser.images else [parent.exes()[-1] if parent and parent.images else None]
        for i, exe in enumerate(exes):
            root = pid == root_pid
            exe = exe if exe or not root else shutil.which(argv[0]) or argv[0]
            env = None
            if root and i == 0:
                env = root_env
                exe = os.path.abspath(exe) if exe and os.sep in exe else exe  # run in gotrace's directory
            elif pid in matched:
                exe, env = matched[pid][i]
            elif pid in forked and not (parser and parser.images):  # the parent's last image, as it was
                parent_rows = [r for r in rows if r["pid"] == forked[pid]]
                exe, env = (parent_rows[-1]["exe"], parent_rows[-1]["loader_env"]) if parent_rows else (exe, None)
            rows.append({
                "pid": pid, "ppid": os.getpid() if root else None,
                "exe": exe,
                "argv": list(argv) if root and i == 0 else None,
                "start_ns": start_ns if root and i == 0 else None,
                "end_ns": end_ns if root and i == len(exes) - 1 else None,
                "exit_code": exit_code if root and i == len(exes) - 1 else None,
                "loader_env": env,
            })
    return rows
