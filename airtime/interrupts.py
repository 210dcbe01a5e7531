"""Ctrl-C (SIGINT) ends any airtime process with exit 130 and one line saying where it
stopped: never a traceback, never a hang.

Python raises KeyboardInterrupt wherever the main thread is when SIGINT arrives, and the
libraries under a step turn it into other things: DuckDB into RuntimeError('Query
interrupted'), an import cut half-way into ImportError. So the handler notes the interrupt
first, with where the process was (the run date and step bound to its log lines), and the
entry point (airtime/entrypoint.py) turns whatever then escapes into exit 130 and that line.

An import cut half-way can leave its module lock held, and a thread that later imports the
same module waits forever (issue 19: DuckDB imported pandas on the main thread when the
Ctrl-C came, then the ingest's typing threads waited in `_get_module_lock` while the main
thread waited for them). Hence `preload`, which imports before any work what the libraries
would import lazily in the middle of a step, and a watchdog that ends the process anyway
GRACE_SECONDS after the Ctrl-C, whatever it is stuck on. A second Ctrl-C ends it at once.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from airtime import logs

EXIT_CODE = 130  # 128 + SIGINT: what a shell reports for a process that Ctrl-C ended
# enough to roll a transaction back and remove scratch files; a step keeps its work only
# once it finished (its manifest is written last), so cutting the clean-up short loses nothing
GRACE_SECONDS = 5.0
# imported on first use in the middle of a step, some on worker threads: pyarrow.dataset by
# DuckDB (scanning Arrow data); pytz by DuckDB (TIMESTAMPTZ to Python)
LAZY_IMPORTS = ("pyarrow.dataset", "pytz")
# Never used by airtime, but imported when installed (the bench and test extras; not the
# image) by DuckDB (binding any parameter) and pyarrow.compute (packing arguments): 0.2-0.3 s
# of every pipeline process, and an import a Ctrl-C can cut on a worker thread. A command's
# own process hides it (`hide_unused`), so the libraries take the path they take in the
# image; a caller in a process of its own making (a test, a notebook) keeps it.
UNUSED = ("pandas",)


@dataclass(frozen=True)
class Interrupt:
    """Where the process was when Ctrl-C came: the step and date bound to its log lines."""

    step: str | None = None
    run_date: str | None = None

    def line(self, resume: str | None = None) -> str:
        if self.step and self.run_date:
            text = f"interrupted during {self.step} of {self.run_date} (an unfinished step keeps nothing)"
        elif self.run_date:
            text = f"interrupted while running {self.run_date} (an unfinished step keeps nothing)"
        else:
            text = "interrupted"
        return f"{text}; `{resume}` resumes" if resume else text


# the command that resumes the work an interrupt stopped (None: none to name)
Resume = Callable[[Interrupt], str | None]


def _nothing_to_resume(stopped: Interrupt) -> None:
    return None


_noted: Interrupt | None = None
_line: str | None = None  # the noted interrupt's line, made when it came
_resume: Resume = _nothing_to_resume
_said = threading.Lock()  # the line is written once, by the entry point or the watchdog


def preload(hide_unused: bool = False, lazy: bool = True) -> None:
    """Import what the libraries would import lazily mid-step (see LAZY_IMPORTS; not with
    `lazy=False`, for a command that starts no worker threads); with `hide_unused`, make
    the UNUSED modules not yet imported look absent."""
    if hide_unused and not any(name in sys.modules for name in UNUSED) \
            and not any(isinstance(finder, _Absent) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Absent())
    if not lazy:
        return
    for name in LAZY_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


class _Absent:
    """A finder that says the UNUSED modules are not installed, as the image says."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in UNUSED:
            raise ModuleNotFoundError(f"No module named {name!r} (airtime/interrupts.py, UNUSED)", name=name)


def noted(exc: BaseException | None = None) -> Interrupt | None:
    """The Ctrl-C behind `exc` (whatever a library made of it), or None if there was none."""
    if _noted is not None:
        return _noted
    while exc is not None:  # raised without our handler (not the main thread, SIGINT ignored)
        if isinstance(exc, KeyboardInterrupt):
            return Interrupt()
        exc = exc.__cause__ or exc.__context__
    return None


def say(interrupt: Interrupt) -> int:
    """Write the one line (unless the watchdog did) and return the exit code."""
    line = _line if interrupt is _noted and _line else interrupt.line(_resume(interrupt))
    if _said.acquire(blocking=False):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    return EXIT_CODE


@contextlib.contextmanager
def handled(resume: Resume) -> Iterator[None]:
    """SIGINT handled as this module says while the block runs (from the main thread, and only
    over Python's default handler: an inherited SIG_IGN, as under nohup, is left alone).
    `resume(interrupt)` names the command that resumes the work it stopped."""
    global _noted, _line, _said, _resume
    _noted, _line, _said, _resume = None, None, threading.Lock(), resume
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        if _noted is None:  # after a Ctrl-C the process is ending: a second one still ends it
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _noted, _line
    if _noted is not None and _line is not None:
        _end(_line)
    fields = logs.fields()
    step, run_date = fields.get("step"), fields.get("run_date")
    _noted = Interrupt(None if step is None else str(step), None if run_date is None else str(run_date))
    _line = _noted.line(_resume(_noted))  # now: the watchdog may have to say it
    threading.Thread(target=_watchdog, name="interrupt-watchdog", daemon=True).start()
    signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt where the work is


def _watchdog() -> None:
    time.sleep(GRACE_SECONDS)
    assert _line is not None
    _end(_line)


def _end(line: str) -> None:
    if _said.acquire(blocking=False):
        # not sys.stderr: the main thread may be inside a write to it (a reentrant call fails)
        os.write(2, (line + "\n").encode())
    os._exit(EXIT_CODE)  # skips what hangs: joining stuck threads, flushing a stuck stream
