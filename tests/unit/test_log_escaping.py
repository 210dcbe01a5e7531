"""Control characters a client sends (an HTTP path, a header) never reach a log raw, in either
format, in the message, the exception or a field; and no record can forge another."""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from airtime.logs import JsonFormatter, TextFormatter, escape

HOSTILE = "/v1/\x1b[2J\x1b[31mred\x07\x00\r\x7f\x85\u2028\u202e"
FORGED_LINE = "\n12:00:00 INFO grpc_server.access: GET /v1/freshness 200 0.10ms"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _record(message: str = "%s %s %d", args: tuple = ("GET", HOSTILE + FORGED_LINE, 404), *,
            exc: bool = False, **fields: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"unknown url type: {HOSTILE!s}")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("grpc_server.access", logging.INFO, __file__, 1, message, args, exc_info)
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def test_escape_writes_control_characters_as_escapes_and_keeps_the_rest() -> None:
    assert escape("a\x1bb\x07c\x00d") == "a\\x1bb\\x07c\\x00d"
    assert escape("\u202eevil\u2028") == "\\u202eevil\\u2028"
    assert escape("two\nlines\ttab") == "two\nlines\ttab"
    assert escape("one\nvalue", newlines=False) == "one\\x0avalue"
    assert escape("ação 日本 😀 \\x1b") == "ação 日本 😀 \\x1b"  # printable text and backslashes as they are


@pytest.mark.parametrize("exc", [False, True])
def test_the_text_format_writes_no_control_character_and_no_forged_record(exc: bool) -> None:
    formatter = TextFormatter()
    text = formatter.format(_record(exc=exc, run_date="2026-11-30\x1b[0m", step="load\nERROR fake"))
    assert not RAW.search(text), repr(text)
    assert "\\x1b[2J\\x1b[31mred\\x07\\x00\\x0d\\x7f\\x85\\u2028\\u202e" in text
    lines = text.split("\n")
    # only the record's own first line starts at column 0: the forged one is a continuation
    assert [n for n, line in enumerate(lines) if not line.startswith(" ")] == [0], lines
    assert "run_date=2026-11-30\\x1b[0m" in lines[0] and "step=load\\x0aERROR fake" in lines[0]
    if exc:
        assert any(line.startswith("  Traceback") for line in lines)


@pytest.mark.parametrize("exc", [False, True])
def test_the_json_format_escapes_the_message_the_exception_and_every_field(exc: bool) -> None:
    line = JsonFormatter().format(_record(exc=exc, method=f"GET {HOSTILE}", peer="ipv4:1.2.3.4\x00",
                                          code=404, duration_ms=0.5, run_date="2026-11-30"))
    assert "\n" not in line  # one record, one line
    body = json.loads(line)
    for name, value in body.items():
        assert not isinstance(value, str) or not RAW.search(value), (name, value)
    assert "\\x1b[2J" in body["message"] and body["message"].count("\n") == 1  # the forged line stays inside
    assert body["method"] == "GET /v1/\\x1b[2J\\x1b[31mred\\x07\\x00\\x0d\\x7f\\x85\\u2028\\u202e"
    assert body["peer"] == "ipv4:1.2.3.4\\x00" and body["code"] == 404 and body["duration_ms"] == 0.5
    if exc:
        assert "unknown url type: /v1/\\x1b[2J" in body["exception"]


def test_a_message_without_arguments_is_escaped_too() -> None:
    text = TextFormatter().format(_record("bell\x07 in a literal", ()))
    assert text.endswith("bell\\x07 in a literal")
