"""Logging set-up: JSON lines with Cloud Logging's `severity` in containers, readable
text on a terminal. Fields bound with `bind`/`bound` (`run_date`, `step`, ...) ride
along on every line logged while they are bound, in both formats.

What clients send reaches the log (an HTTP path, a peer's text, an exception's message), so
both formats escape control characters (`\\x1b`, `\\x07`, `\\x00`, ...) in the message, the
exception and every field: an ESC sequence cannot repaint a terminal that shows the log,
nor a CR or NUL hide what came before it. A newline stays a line break inside a message or
a traceback, but a record can never forge another: JSON keeps it inside the string, and the
text format indents every line after a record's first, so only a record starts a line at
column 0. In a field (one value) a newline is escaped too."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
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


# C0 controls but tab and newline, DEL, C1 (NEL included), the Unicode line and paragraph
# separators, and the bidirectional overrides and isolates ("Trojan Source",
# CVE-2021-42574) that reorder what a terminal shows
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile(_CONTROL.pattern[:-1] + "\n]")
CONTINUATION = "\n  "  # how the text format breaks a record's lines


def _escape_one(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str, *, newlines: bool = True) -> str:
    """text with its control characters written as escapes (`\\x1b`); `newlines`: keep
    line breaks (a message, a traceback), else escape them too (a field's one value)."""
    return (_CONTROL if newlines else _CONTROL_OR_NEWLINE).sub(_escape_one, text)


_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def redact_url(url: str) -> str:
    """What of a URL may be logged: `scheme://host[:port]/…`. A webhook's path and query
    are its credential (Slack's /services/T…/B…/secret, Google Chat's ?key=…&token=…), and
    user info is a password. Without `scheme://`, only a first segment that looks like a
    host (a dot or a port in it) is shown (`hooks.slack.com/…`), else nothing but `…`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if not _HOST_PORT.fullmatch(host):
        host = ""
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return f"{scheme}://{host}/…"
    # no scheme: a bare word may be the secret itself (a pasted token), a host has a dot or a port
    return f"{host}/…" if "." in host or ":" in host else "…"


def _fields(record: logging.LogRecord) -> dict[str, object]:
    found: dict[str, object] = {}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = value if isinstance(value, int | float) else escape(str(value), newlines=False)
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "severity": record.levelname,
            "message": escape(record.getMessage()),
            "logger": escape(record.name, newlines=False),
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            **_fields(record),
        }
        if record.exc_info:
            body["exception"] = escape(self.formatException(record.exc_info))
        if record.stack_info:
            body["stack"] = escape(self.formatStack(record.stack_info))
        return json.dumps(body)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        shown = {k: v for k, v in _fields(record).items() if k in ("run_date", "step")}
        record.context = f" [{' '.join(f'{k}={v}' for k, v in shown.items())}]" if shown else ""
        # the whole record (message, exception, stack) escaped, its later lines indented
        text = escape(super().format(record))
        return "\n".join(line if not n else CONTINUATION[1:] + line
                         for n, line in enumerate(text.split("\n")))


def configure(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
