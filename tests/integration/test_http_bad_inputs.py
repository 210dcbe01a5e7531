"""The HTTP/JSON gateway against hostile or impatient clients, on a real server on port 0 and
real sockets: a client that drops a stream mid-answer is one INFO line (499), not an ERROR
traceback; control characters in a path reach neither log format raw."""

from __future__ import annotations

import datetime as dt
import gc
import io
import json
import logging
import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.logs import JsonFormatter, TextFormatter
from tests.integration.grpc_fixtures import forecast_table, make_backend, publish_run, running_service, server_settings

RUN = dt.date(2026, 11, 30)
DAYS = 2000  # 3 signals x 10 programs x 2000 days: ~60k slots, ~10 MB of JSON, far more than socket buffers
STREAM = f"/v1/slots:stream?start_date=2026-12-01&end_date={dt.date(2026, 12, 1) + dt.timedelta(days=DAYS - 1)}"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass
class Gateway:
    port: int


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("http-bad-inputs")
    warehouse = DuckDBWarehouse(folder / "home" / "warehouse.duckdb")
    publish_run(warehouse, RUN, forecast_table(RUN, days=DAYS, programs=tuple(f"P{i}" for i in range(10))), folder)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    settings = server_settings(folder / "home", max_range_days=DAYS)
    with running_service(settings, backend) as service:
        yield Gateway(service.start_http(settings, 0, "127.0.0.1"))


def _request(port: int, target: bytes, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:  # before connect: the window the server sees is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def _access_lines(caplog: pytest.LogCaptureFixture, path: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "grpc_server.access" and path in r.getMessage()]


def _wait_for(found, what: str, seconds: float = 10.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + seconds
    while not (result := found()):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return result


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_client_that_drops_a_stream_mid_answer_is_one_info_line(gateway: Gateway, how: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sock = _request(gateway.port, STREAM.encode(), rcvbuf=4096)
    head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    time.sleep(0.5)  # the server fills the buffers and waits for the reader, who reads no more
    assert not _access_lines(caplog, "/v1/slots:stream"), "the whole answer fit in the buffers"
    if how == "reset":  # an RST at once, as a killed process's kernel sends
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # with unread data: Linux answers the server's next segment with RST either way
    lines = _wait_for(lambda: _access_lines(caplog, "/v1/slots:stream"), "no access-log line")
    time.sleep(0.2)
    gc.collect()  # an exception never retrieved is logged (asyncio, ERROR) when its task is collected
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and lines[0].code == 499, lines
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not loud, [(r.name, r.getMessage()) for r in loud]


def test_the_gateway_still_answers_after_dropped_readers(gateway: Gateway) -> None:
    sock = _request(gateway.port, b"/v1/freshness")
    with sock:
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200") and b'"runDate"' in answer


@pytest.mark.parametrize("target", [
    # percent-encoded: request.path decodes it (%0A too: the catch-all route must still match)
    b"/v1/%1B%5B2J%1B%5B31mred%07%00%0D%0A12:00:00%20INFO%20forged",
    # raw bytes on the request line: aiohttp's parser refuses them with its own 400
    b"/v1/\x1b[2J\x1b[31mred\x07",
])
def test_control_characters_in_a_path_are_escaped_in_both_log_formats(gateway: Gateway, target: bytes) -> None:
    streams = {"text": io.StringIO(), "json": io.StringIO()}
    handlers = []
    for name, formatter in (("text", TextFormatter()), ("json", JsonFormatter())):
        handler = logging.StreamHandler(streams[name])
        handler.setFormatter(formatter)
        handlers.append(handler)
    loggers = [logging.getLogger(name) for name in ("grpc_server.access", "aiohttp.server", "grpc_server.http")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        for handler in handlers:
            logger.addHandler(handler)
    try:
        with _request(gateway.port, target) as sock:
            answer = sock.recv(65536)
        assert re.match(rb"HTTP/1\.[01] 4\d\d ", answer), answer  # a client error, whichever the parser chose
        _wait_for(lambda: streams["json"].getvalue(), "no log line")
        time.sleep(0.1)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
            for handler in handlers:
                logger.removeHandler(handler)
    text, line = streams["text"].getvalue(), streams["json"].getvalue()
    assert not RAW.search(text) and not RAW.search(line), (text, line)
    # one record, one line, in each format: no traceback, no forged line
    assert text.count("\n") == 1 and line.count("\n") == 1, (text, line)
    body = json.loads(line)
    assert body["severity"] == "INFO", body
    if b"%1B" in target:  # what the request's path decoded to, escaped
        assert "\\x1b[2J\\x1b[31mred\\x07\\x00\\x0d\\x0a12:00:00 INFO forged 404" in text
        assert "\\x1b[2J" in body["message"] and "\\x00" in body["method"] and body["code"] == 404
    else:
        assert "refused a malformed HTTP request" in body["message"] and "400" in body["message"], body
