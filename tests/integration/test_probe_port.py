"""The probe and metrics port (grpc_server/probes.py) against slow and idle clients, on a real
socket: no thread per connection, probes answered during the attack, every slow connection
cut within its deadline whatever its pace.

The attackers and the probes' client run on an asyncio loop of the test's own main thread (raw
sockets, no executor), so `threading.active_count()` counts the server's threads only. The
threaded http.server this replaced held one thread per connection: +200 here, for 100 s.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from grpc_server.metrics import ServiceMetrics
from grpc_server.probes import IDLE_SECONDS, MAX_LINE_BYTES, REQUEST_SECONDS

HOST = "127.0.0.1"
TRICKLERS = 200
SILENT = 20  # connect and send nothing
IDLE_AFTER_ANSWER = 20  # one keep-alive request answered, then nothing
PROBE_TIMEOUT = 1.0  # the kubelet's default timeoutSeconds: "promptly"
SLACK = 1.5  # timer and scheduling latency on a loaded 2-core machine
TRICKLED = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 64


@dataclass
class Probes:
    port: int
    ready: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def probes() -> Iterator[Probes]:
    metrics = ServiceMetrics()
    metrics.requests.labels("/airtime.v1.ForecastService/GetFreshness", "OK").inc()
    ready = threading.Event()
    ready.set()
    port = metrics.serve_http(0, addr=HOST, checks={"/healthz": lambda: True, "/readyz": ready.is_set})
    try:
        yield Probes(port, ready)
    finally:
        metrics.close()


async def _get(port: int, path: str, accept: str | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One request on a connection of its own (as the kubelet sends its probes)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        extra = f"Accept: {accept}\r\n" if accept else ""
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n{extra}\r\n".encode())
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """Wait for the server to close the connection; what it sent before (nothing expected)."""
    try:
        return await reader.read()
    except ConnectionError:
        return b""


async def _trickle(port: int) -> tuple[float, bytes]:
    """Send the request a byte a second until cut; seconds from the first byte to the cut."""
    reader, writer = await asyncio.open_connection(HOST, port)
    started = time.monotonic()
    closed = asyncio.ensure_future(_closed(reader))
    try:
        for byte in TRICKLED:
            writer.write(bytes([byte]))
            await asyncio.wait({closed}, timeout=1.0)
            if closed.done():
                break
        sent = await closed
    except ConnectionError:
        sent = b""
    finally:
        writer.close()
    return time.monotonic() - started, sent


async def _silent(port: int) -> tuple[float, bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    started = time.monotonic()
    sent = await _closed(reader)
    writer.close()
    return time.monotonic() - started, sent


async def _idle_after_answer(port: int) -> tuple[float, bytes]:
    """A keep-alive request, answered; then the connection idles: seconds from the answer."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    answer = await reader.readuntil(b"ok\n")
    assert answer.startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    sent = await _closed(reader)
    writer.close()
    return time.monotonic() - started, sent


async def _attack(port: int) -> dict:
    threads_before = threading.active_count()
    tricklers = [asyncio.ensure_future(_trickle(port)) for _ in range(TRICKLERS)]
    silent = [asyncio.ensure_future(_silent(port)) for _ in range(SILENT)]
    idle = [asyncio.ensure_future(_idle_after_answer(port)) for _ in range(IDLE_AFTER_ANSWER)]
    await asyncio.sleep(2.0)  # every attacker connected and trickling
    threads, latencies = [], {"/healthz": [], "/readyz": [], "/metrics": []}
    for _ in range(5):
        threads.append(threading.active_count())
        for path, seconds in latencies.items():
            started = time.monotonic()
            status, _, _ = await asyncio.wait_for(_get(port, path), PROBE_TIMEOUT)
            seconds.append(time.monotonic() - started)
            assert status == 200, path
        await asyncio.sleep(0.2)
    still_open = sum(not task.done() for task in tricklers)
    return {
        "threads_before": threads_before, "threads": threads, "latencies": latencies,
        "tricklers_open_during_probes": still_open,
        "tricklers": await asyncio.gather(*tricklers),
        "silent": await asyncio.gather(*silent),
        "idle": await asyncio.gather(*idle),
    }


def test_slow_connections_hold_no_thread_and_are_cut_within_the_deadline_while_probes_answer(
        probes: Probes) -> None:
    result = asyncio.run(asyncio.wait_for(_attack(probes.port), 15))

    assert result["tricklers_open_during_probes"] == TRICKLERS  # the attack was on throughout
    assert max(result["threads"]) <= result["threads_before"] + 3
    for path, seconds in result["latencies"].items():
        assert max(seconds) < PROBE_TIMEOUT, path
    cut_after = [seconds for seconds, _ in result["tricklers"]]
    assert max(cut_after) <= REQUEST_SECONDS + SLACK
    assert all(sent == b"" for _, sent in result["tricklers"])  # cut, not answered
    assert max(seconds for seconds, _ in result["silent"]) <= IDLE_SECONDS + SLACK
    assert max(seconds for seconds, _ in result["idle"]) <= IDLE_SECONDS + SLACK
    print(f"\nthreads: {result['threads_before']} before, max {max(result['threads'])} during the attack;"
          f" probe latency ms max: " + ", ".join(
              f"{path} {max(s) * 1000:.1f}" for path, s in result["latencies"].items())
          + f"; tricklers cut after {min(cut_after):.2f}-{max(cut_after):.2f} s")


def test_probes_answer_their_status_and_content_type_and_log_nothing(
        probes: Probes, caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> dict[str, tuple[int, dict[str, str], bytes]]:
        answers = {}
        answers["healthz"] = await _get(probes.port, "/healthz")
        answers["readyz"] = await _get(probes.port, "/readyz?verbose")
        probes.ready.clear()
        answers["unready"] = await _get(probes.port, "/readyz")
        answers["metrics"] = await _get(probes.port, "/metrics")
        answers["openmetrics"] = await _get(probes.port, "/metrics", accept="application/openmetrics-text; version=1.0.0")
        answers["elsewhere"] = await _get(probes.port, "/favicon.ico")
        answers["post"] = await _get(probes.port, "/healthz", method="POST")
        answers["head"] = await _get(probes.port, "/healthz", method="HEAD")
        return answers

    with caplog.at_level(logging.INFO):
        answers = asyncio.run(run())
    assert caplog.records == []  # no access log line for probes and scrapes
    assert answers["healthz"] == (200, answers["healthz"][1], b"ok\n")
    assert answers["healthz"][1]["content-type"] == "text/plain; charset=utf-8"
    assert answers["readyz"][0] == 200
    assert answers["unready"][0] == 503 and answers["unready"][2] == b"unavailable\n"
    status, headers, body = answers["metrics"]
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b'airtime_grpc_requests_total{code="OK",method="/airtime.v1.ForecastService/GetFreshness"} 1.0' in body
    status, headers, body = answers["openmetrics"]
    assert status == 200 and headers["content-type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    assert answers["elsewhere"][0] == 404
    assert answers["post"][0] == 405 and answers["post"][1]["allow"] == "GET, HEAD"
    assert answers["head"][0] == 200 and answers["head"][2] == b""


def test_an_oversized_request_line_or_header_is_refused_at_once_without_a_traceback(
        probes: Probes, caplog: pytest.LogCaptureFixture) -> None:
    too_long = b"a" * (MAX_LINE_BYTES + 1)
    requests = [b"GET /" + too_long + b" HTTP/1.1\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nX-Big: " + too_long + b"\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(100)) + b"\r\n"]
    for request in requests:
        with caplog.at_level(logging.INFO), socket.create_connection((HOST, probes.port), timeout=2) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert caplog.records == []


def test_a_taken_port_raises_before_anything_is_served_and_close_frees_it(probes: Probes) -> None:
    with pytest.raises(OSError):
        ServiceMetrics().serve_http(probes.port, addr=HOST)
    metrics = ServiceMetrics()
    port = metrics.serve_http(0, addr=HOST)
    metrics.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=2).close()
    again = ServiceMetrics()
    assert again.serve_http(port, addr=HOST) == port  # the port is free again
    again.close()
