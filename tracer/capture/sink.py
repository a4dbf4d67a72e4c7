"""Where a backend's event tables go while the command runs: bounded chunks, written off-thread.

The chunks become the session's event parts (session/writer.py), are counted
into the report's tally (analysis/tally.py) as they are written, and go to an
optional ``on_chunk`` callback as pandas frames; ``Progress`` is what the live
line reads.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ..analysis.tally import EventTally
from ..heavy import pa, pd
from ..session.writer import SessionWriter
from .background import background_priority
from .ifunc_kinds import IfuncKinds

CHUNK_ROWS = 65536
CHUNK_SECONDS = 2.0


@dataclass
class Progress:
    """Counters a live display reads; updated from the capture threads."""

    events: int = 0
    processes: int = 0
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.events / elapsed if elapsed > 0 else 0.0


class ChunkSink:
    """Buffers decoded tables and flushes them in bounded chunks.

    A chunk is flushed when it reaches CHUNK_ROWS, or CHUNK_SECONDS after the
    last flush, so a slow trickle of events still reaches disk and
    ``on_chunk`` while the command runs. Writing happens on a thread of its
    own: the thread that reads the tracer's output must never stall on disk,
    or the tracer's buffers overflow and events are lost.
    """

    def __init__(self, writer: SessionWriter, progress: Progress,
                 on_chunk: Callable[[pd.DataFrame], None] | None = None, translators: Callable | None = None,
                 on_table: Callable[[pa.Table], None] | None = None):
        self.writer = writer
        self.on_table = on_table  # sees each table as it arrives (object_keeper: pins what it names)
        # of what reached disk: the report of the saved session. ``translators`` makes the
        # translator filter (analysis/translator.py) on the writer thread: reading binfmt_misc
        # and importing the rule stay off the command's start
        self._translators = translators
        self.tally: EventTally | None = None
        self.progress = progress
        self.on_chunk = on_chunk
        self.buffer: list[pa.Table] = []
        self.rows = 0
        self.last_flush = time.monotonic()
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._ifunc = IfuncKinds()  # an IFUNC resolver's vDSO lookup: the kind of its binding, not dlsym
        self._writer = threading.Thread(target=self._write_loop, name="gotrace-writer", daemon=True)
        self._writer.start()

    def __call__(self, table: pa.Table) -> None:
        if self.on_table is not None:
            self.on_table(table)
        with self.lock:
            self.buffer.append(table)
            self.rows += table.num_rows
            self.progress.events += table.num_rows
            if self.rows >= CHUNK_ROWS:
                self._flush()

    def _flush(self) -> None:
        if self.buffer:
            self._queue.put(self.buffer)
            self.buffer, self.rows = [], 0
        self.last_flush = time.monotonic()

    def _write_loop(self) -> None:
        background_priority()
        try:
            translators = self._translators() if self._translators else None
        except Exception as exc:  # surfaced by close(); the events are still written and counted
            self.error, translators = exc, None
        self.tally = EventTally(translators)
        while True:
            try:
                item = self._queue.get(timeout=CHUNK_SECONDS / 4)
            except queue.Empty:
                with self.lock:
                    if time.monotonic() - self.last_flush >= CHUNK_SECONDS:
                        self._flush()
                continue
            if item is None:
                return
            try:
                written = self.writer.events_written
                table = self.writer.append_events(self._ifunc(pa.concat_tables(item)))
                if self.writer.events_written > written:
                    self.tally.add(table)
                if self.on_chunk is not None:
                    self.on_chunk(table.to_pandas(strings_to_categorical=True))
            except BaseException as exc:  # surfaced by close()
                self.error = self.error or exc

    def close(self) -> None:
        with self.lock:
            self._flush()
        self._queue.put(None)
        self._writer.join()
        if self.error is not None:
            raise self.error
