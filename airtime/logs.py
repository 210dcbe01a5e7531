"""Logging set-up: JSON lines with Cloud Logging's `severity` in containers, readable
text on a terminal. Fields bound with `bind`/`bound` (`run_date`, `step`, ...) ride
along on every line logged while they are bound, in both formats."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType

CONTEXT_FIELDS = ("run_date", "step", "workflow", "method", "code", "duration_ms", "peer")

_bound: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "airtime_log_fields", default=MappingProxyType({}))


def fields() -> Mapping[str, object]:
    """The fields bound here and now (where a Ctrl-C stopped the process: airtime/interrupts.py)."""
    return _bound.get()


def bind(**fields: object) -> None:
    """Add fields to every later log line of this process (an entry point's run date and step)."""
    _bound.set({**_bound.get(), **fields})


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add fields to the log lines written inside the block (one step of an in-process run)."""
    token = _bound.set({**_bound.get(), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _bound.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def _fields(record: logging.LogRecord) -> dict[str, object]:
    found = {}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = value if isinstance(value, int | float) else str(value)
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            **_fields(record),
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        shown = {k: v for k, v in _fields(record).items() if k in ("run_date", "step")}
        record.context = f" [{' '.join(f'{k}={v}' for k, v in shown.items())}]" if shown else ""
        return super().format(record)


def configure(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
