"""The class log writer: one thread appends each event, flushes and fsyncs it.

Threads holding the room lock only put events on an unbounded queue (never blocks, never
drops), so a slow disk can never delay a broadcast. The writer writes one line per event
with a single write(), then flush() and os.fsync(): after that a crash, kill -9 or power
cut loses nothing already written. Callbacks given with an event (a TOKEN line to send)
and the sinks (the roster) run only once the event is on disk.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from netlab.classroom.events import Event, encode
from netlab.errors import NetlabError

Sink = Callable[[Event], None]


class EventLog:
    def __init__(self, path: Path, sinks: list[Sink] | None = None) -> None:
        self.path = path
        self.sinks: list[Sink] = list(sinks or [])
        self.written = 0
        self.failed = 0
        self._queue: queue.SimpleQueue[tuple[Event, Callable[[], None] | None] | None] = (
            queue.SimpleQueue())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - open for the whole class
        except OSError as exc:
            raise NetlabError(f"cannot write the class log {path}: {exc.strerror or exc}",
                              "give another file with --log FILE") from None
        self._thread = threading.Thread(target=self._run, name="netlab-class-log", daemon=True)
        self._thread.start()

    def emit(self, event: Event, then: Callable[[], None] | None = None) -> None:
        """Queue an event; `then` runs after it is on disk. Safe under any lock."""
        self._queue.put((event, then))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._file.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            event, then = item
            self._write(event)
            for sink in self.sinks:
                with contextlib.suppress(Exception):
                    sink(event)
            if then is not None:
                with contextlib.suppress(Exception):
                    then()

    def _write(self, event: Event) -> None:
        try:
            self._file.write(encode(event))
            self._file.flush()  # Python's buffer -> the kernel: survives kill -9
            os.fsync(self._file.fileno())  # the kernel -> the disk: survives a power cut
            self.written += 1
        except OSError as exc:
            self.failed += 1
            if self.failed == 1:
                with contextlib.suppress(Exception):
                    print(f"netlab: cannot write the class log {self.path}: {exc}",
                          file=sys.stderr, flush=True)
