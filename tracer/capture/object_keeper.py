"""Keeps every object the traced processes loaded, as they loaded it, for the session.

`why`, the report's interposition and compare's version budget replay ld.so's
rules on what each object needs and defines. Reading that from the files after
the run gives wrong answers when they are gone or changed: `go test` deletes its
test binaries, a build replaces its outputs, a session is read on another
machine. So while a process runs, each object its events name is pinned: the
executable through /proc/PID/exe, a library through /proc/PID/map_files (or by
path, checked against the mapping's device and inode), an open descriptor that
keeps the file readable even once it is deleted. After the command ends the
pinned files are read (nothing is parsed while the command runs) into the
session's OBJECTS, SYMBOLS and LOADED tables (session/schema.py). What could not
be pinned from its process — one gone before its first event was decoded (records
reach gotrace ~0.1 s late) — is opened by its path as soon as it is seen, else after
the run, and marked so (``kept``).
"""
from __future__ import annotations

import os
import queue
import resource
import threading
from typing import Iterable

from ..binary import dynrecord, facts
from ..heavy import pa
from ..session import schema

NAME_COLUMNS = ("exe", "requester", "provider")
VDSO = ("linux-vdso.so.1", "linux-gate.so.1", "linux-vdso64.so.1")


def _fd_budget() -> int:
    """How many files may stay open: well under the soft limit, the rest read at once instead."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(0, min(4096, soft - 256))


class ObjectKeeper:
    """Pins the objects named by event tables as they arrive; ``finish`` reads them into table rows."""

    def __init__(self, cwd: str | None = None):
        self.cwd = cwd or os.getcwd()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._names: dict[tuple[int, str], tuple | None] = {}  # (pid, name) -> file key, None: not pinned
        self._real: dict[tuple[int, str], str] = {}  # (pid, name) -> the real path the process had
        self._fds: dict[tuple, int] = {}  # file key (dev, ino) -> an open descriptor on it
        self._read: dict[tuple, tuple] = {}  # file key -> (DynObject | None, size, mtime) read at once
        self._how: dict[tuple, str] = {}  # file key -> how it was pinned (OBJECTS' ``kept``)
        self._maps: dict[int, list[tuple[int, int, int, str, str]]] = {}  # pid -> (dev, ino, start-end, path)
        self._budget = _fd_budget()
        self._lock = threading.Lock()  # the decoder's thread (exec) and the keeper's (tables) both pin
        self._thread = threading.Thread(target=self._loop, name="gotrace-objects", daemon=True)
        self._thread.start()

    # -- while the command runs ------------------------------------------------------------------
    def see(self, table: pa.Table) -> None:
        """An events chunk as the backend decoded it (from the capture thread: only queued here)."""
        self._queue.put(table)

    def _loop(self) -> None:
        while True:
            table = self._queue.get()
            if table is None:
                return
            try:
                self._take(table)
            except Exception:  # noqa: BLE001 - keeping objects must never disturb a capture
                continue

    def exec(self, pid: int, exe: str) -> None:
        """A program exec'd (a decoder, as soon as it reads the exec): keep its file now — a test
        binary `go test` deletes may be gone ~ms after it ends."""
        try:
            if (pid, exe) not in self._names:
                self._pin(int(pid), str(exe), True)
        except Exception:  # noqa: BLE001 - keeping objects must never disturb a capture
            pass

    def keep(self, pid: int, name: str, fd: int | None, inode: tuple[int, int]) -> None:
        """An object the tracer opened the moment its record was read (bpf's loader: microseconds
        after the exec or the load): ``fd`` is the very file (None: one sent before, by ``inode``)."""
        try:
            with self._lock:
                # a None there: the decoders' path found nothing first; the tracer's file is the very one
                if self._names.get((pid, name)) is None and (fd is not None or inode in self._fds
                                                               or inode in self._read):
                    if fd is not None:
                        self._hold(fd, os.fstat(fd))
                        fd = None
                    self._names[(pid, name)] = inode
        except Exception:  # noqa: BLE001 - keeping objects must never disturb a capture
            pass
        finally:
            if fd is not None:
                os.close(fd)

    def _take(self, table: pa.Table) -> None:
        if "pid" not in table.column_names or table.num_rows == 0:
            return
        for col in NAME_COLUMNS:
            if col not in table.column_names:
                continue
            pairs = table.select(["pid", col]).group_by(["pid", col]).aggregate([])
            for pid, name in zip(pairs["pid"].to_pylist(), pairs[col].to_pylist()):
                if pid is not None and name and (pid, name) not in self._names:
                    self._pin(int(pid), str(name), col == "exe")

    def _pin(self, pid: int, name: str, exe: bool) -> None:
        with self._lock:
            if (pid, name) not in self._names:
                self._pin_locked(pid, name, exe)

    def _pin_locked(self, pid: int, name: str, exe: bool) -> None:
        if os.path.basename(name) in VDSO:
            self._names[(pid, name)] = None
            return
        key = real = None
        if exe:
            key, real = self._pin_exe(pid, name)
        if key is None:
            key, real = self._pin_mapped(pid, name)
        if key is None:  # the process is gone already (records reach gotrace ~0.1 s late): by its path
            key, real = self._pin_path(pid, name)
        self._names[(pid, name)] = key
        if real:
            self._real[(pid, name)] = real

    def _abs(self, pid: int, name: str) -> str:
        if os.path.isabs(name):
            return name
        try:
            return os.path.join(os.readlink(f"/proc/{pid}/cwd"), name)
        except OSError:
            return os.path.join(self.cwd, name)

    def _pin_exe(self, pid: int, name: str) -> tuple[tuple | None, str | None]:
        """The running program through /proc/PID/exe, if it is still the program ``name`` names
        (the pid may have exec'd another since)."""
        try:
            link = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return None, None
        real = link.removesuffix(" (deleted)")
        try:
            named = os.stat(self._abs(pid, name))
            same = None
        except OSError:
            named, same = None, os.path.realpath(self._abs(pid, name)) == real  # deleted since: by its name
        try:
            fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY)
        except OSError:
            return None, None
        st = os.fstat(fd)
        if (named is not None and (named.st_dev, named.st_ino) != (st.st_dev, st.st_ino)) or same is False:
            os.close(fd)
            return None, None
        return self._hold(fd, st), real

    def _pin_mapped(self, pid: int, name: str) -> tuple[tuple | None, str | None]:
        """A library through the process's own mapping of it (found by inode, else by real path)."""
        path = self._abs(pid, name)
        try:
            st = os.stat(path)
            want = (st.st_dev, st.st_ino)
        except OSError:
            want = None
        real = os.path.realpath(path)
        for fresh in (False, True):
            if fresh or pid not in self._maps:
                self._maps[pid] = _mappings(pid)
            for dev, ino, span, mpath, deleted in self._maps[pid]:
                if (want is not None and (dev, ino) == want) or (want is None and mpath == real and deleted):
                    return self._open_mapping(pid, span, mpath, (dev, ino)), mpath
            if not self._maps[pid]:
                break
        return None, None

    def _pin_path(self, pid: int, name: str) -> tuple[tuple | None, str | None]:
        path = self._abs(pid, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None, None
        key = self._hold(fd, os.fstat(fd), "by path during the run")
        return key, os.path.realpath(path)

    def _open_mapping(self, pid: int, span: str, path: str, inode: tuple) -> tuple | None:
        if inode in self._fds or inode in self._read:
            return inode
        for source in (f"/proc/{pid}/map_files/{span}", path):
            try:
                fd = os.open(source, os.O_RDONLY)
            except OSError:
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == inode:
                return self._hold(fd, st)
            os.close(fd)
        return None

    def _hold(self, fd: int, st: os.stat_result, how: str = "from the running process") -> tuple:
        key = (st.st_dev, st.st_ino)
        if key in self._fds or key in self._read:
            os.close(fd)
        elif len(self._fds) < self._budget:
            self._fds[key] = fd
            self._how[key] = how
        else:  # too many files to keep open: read this one now
            try:
                self._read[key] = (_read_fd(fd), st.st_size, st.st_mtime_ns)
                self._how[key] = how
            finally:
                os.close(fd)
        return key

    # -- after the command ------------------------------------------------------------------------
    def finish(self, processes: Iterable[dict], images: Iterable[dict]) -> dict[str, pa.Table]:
        """The OBJECTS, SYMBOLS and LOADED tables: every object of every process, pinned or by path now."""
        self._queue.put(None)
        self._thread.join()
        wanted = set(self._names)
        wanted.update((int(r["pid"]), str(r["exe"])) for r in processes if r.get("exe") and r.get("pid") is not None)
        wanted.update((int(r["pid"]), str(r["path"])) for r in images if r.get("path") and r.get("pid") is not None)
        try:
            objects: dict[tuple, tuple] = {}  # file key -> (DynObject | None, size, mtime, kept)
            for key, fd in self._fds.items():
                st = os.fstat(fd)
                objects[key] = (_read_fd(fd), st.st_size, st.st_mtime_ns, self._how[key])
            for key, (obj, size, mtime) in self._read.items():
                objects[key] = (obj, size, mtime, self._how[key])
            loaded: dict[tuple[int, str], tuple] = {}
            pending = sorted(wanted)
            while pending:
                more = []
                for pid, name in pending:
                    key = self._names.get((pid, name))
                    if key is None and os.path.basename(name) not in VDSO:
                        key = self._by_path(pid, name, objects)
                    if key is None or objects.get(key, (None,))[0] is None:
                        continue
                    loaded[(pid, name)] = key
                    interp = objects[key][0].interpreter  # PT_INTERP: ld.so, which backends may not list
                    if interp and (pid, interp) not in wanted:
                        wanted.add((pid, interp))
                        more.append((pid, interp))
                pending = more
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
        return _tables(objects, loaded, self._real, self._abs)

    def _by_path(self, pid: int, name: str, objects: dict) -> tuple | None:
        path = self._abs(pid, name) if not os.path.isabs(name) else name
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
            if key not in objects:
                objects[key] = (_read_fd(fd), st.st_size, st.st_mtime_ns, "by path after the run")
            self._real.setdefault((pid, name), os.path.realpath(path))
            return key
        finally:
            os.close(fd)


def _mappings(pid: int) -> list[tuple[int, int, str, str, bool]]:
    """(dev, inode, start-end, path, deleted) of the process's file mappings at offset 0."""
    out = []
    try:
        with open(f"/proc/{pid}/maps") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/") or int(parts[2], 16) != 0:
            continue
        major, _, minor = parts[3].partition(":")
        dev = os.makedev(int(major, 16), int(minor, 16))
        path = parts[5]
        out.append((dev, int(parts[4]), parts[0], path.removesuffix(" (deleted)"), path.endswith(" (deleted)")))
    return out


def _read_fd(fd: int):
    """What ld.so reads of the object open on ``fd`` (None: not ELF or unreadable). Read whole
    (a file may be rewritten in place while it is parsed: a mapping would then kill gotrace with
    SIGBUS), in one system call into one buffer: chunks joined cost a warm `go build` ~40 ms more."""
    try:
        size = os.fstat(fd).st_size
        buf = bytearray(size)
        view, got = memoryview(buf), 0
        while got < size:  # one call but for files over 2 GiB (the kernel's limit per call)
            n = os.preadv(fd, [view[got:]], got)
            if n <= 0:
                break
            got += n
        view.release()
    except (OSError, MemoryError):
        return None
    if got < size:
        del buf[got:]
    return facts.dyn_object_from_bytes(f"/proc/self/fd/{fd}", buf)


def _tables(objects: dict, loaded: dict, real: dict, absolute) -> dict[str, pa.Table]:
    ids: dict[tuple, str] = {}
    rows, symbols = [], {}
    for key, (obj, size, mtime, kept) in objects.items():
        if obj is None:
            continue
        oid = f"build-id:{obj.build_id}" if obj.build_id else f"file:{key[0]}:{key[1]}:{size}:{mtime}"
        names = sorted(n for (p, n), k in loaded.items() if k == key)
        if oid in ids.values():  # the same build under two inodes (a copy): kept once
            ids[key] = oid
            continue
        ids[key] = oid
        obj.path = names[0] if names else obj.path
        rows.append({**dynrecord.object_row(obj, oid, size), "kept": kept})
        for col, values in dynrecord.symbol_columns(obj, oid).items():
            symbols.setdefault(col, []).extend(values)
    loaded_rows = [{"pid": pid, "path": name, "object_id": ids[key],
                    "real_path": real.get((pid, name)) or os.path.realpath(absolute(pid, name))}
                   for (pid, name), key in sorted(loaded.items()) if key in ids]
    return {"objects": schema.from_rows("objects", rows),
            "symbols": schema.from_columns("symbols", symbols) if symbols else schema.from_rows("symbols", []),
            "loaded": schema.from_rows("loaded", loaded_rows)}
