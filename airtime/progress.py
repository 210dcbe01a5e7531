"""Progress of a long piece of work that people (or a pod's log) can see.

Work reports what it is doing (`phase`) and the rows it has done (`add`); a `Progress`
only counts. Two watchers show it: the command line draws a live line on a terminal
(cli/main.py), and `heartbeat` logs a line every 10 s elsewhere (CI, pods, `| tee`), so a
long step is never silent.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

HEARTBEAT_SECONDS = 10.0


@dataclass(frozen=True)
class Snapshot:
    phase: str
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        done = f", {self.rows:,} rows ({self.rate:,.0f} rows/s)" if self.rows else ""
        return f"{self.phase}{done}, {self.seconds:.0f}s elapsed"


class Progress:
    """Thread-safe: the work updates it, a watcher thread reads it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phase = "starting"
        self._rows = 0
        self._started = time.monotonic()

    def restart(self, phase: str = "starting") -> None:
        with self._lock:
            self._phase, self._rows, self._started = phase, 0, time.monotonic()

    def phase(self, text: str) -> None:
        with self._lock:
            self._phase = text

    def add(self, rows: int) -> None:
        with self._lock:
            self._rows += rows

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(self._phase, self._rows, time.monotonic() - self._started)


@contextlib.contextmanager
def watching(progress: Progress, show: Callable[[Snapshot], None], every: float) -> Iterator[None]:
    """Call show(snapshot) every `every` seconds while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            show(progress.snapshot())

    # in a copy of the caller's context: its log fields (run_date, step) ride along
    thread = threading.Thread(target=contextvars.copy_context().run, args=(loop,), name="progress",
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1)


def heartbeat(progress: Progress, log: logging.Logger, what: str,
              every: float = HEARTBEAT_SECONDS) -> contextlib.AbstractContextManager[None]:
    """A log line every `every` seconds while the block runs."""
    return watching(progress, lambda snap: log.info("%s still running: %s", what, snap), every)
