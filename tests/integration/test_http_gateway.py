"""HTTP/JSON beside gRPC (`Service.start_http`, what `airtime serve --http-port` runs), on a
real server on port 0: the curl calls of docs/query-service.md answer what gRPC answers,
errors are google.rpc.Status JSON under Google's HTTP mapping, tokens and TLS as gRPC's."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from grpc_server.http import bad_request_fields
from tests.conftest import require
from tests.integration.grpc_fixtures import (  # noqa: F401 - fixtures
    ROOT,
    forecast_table,
    make_backend,
    publish_run,
    running_service,
    server_settings,
    warehouse,
)
from tests.integration.test_grpc_security import _self_signed

DOC = ROOT / "docs" / "query-service.md"
DOC_HOST = "http://localhost:8080"
RUN0, RUN1 = dt.date(2020, 7, 20), dt.date(2020, 7, 21)
FIRST = dt.date(2020, 7, 20)  # the fixture's slots: 2020-07-20 .. 2020-08-16


@dataclass
class Served:
    base: str
    stub: pb_grpc.ForecastServiceStub


def _publish_two_runs(warehouse, tmp_path: Path) -> None:  # noqa: ANN001, F811
    for run in (RUN0, RUN1):
        publish_run(warehouse, run, forecast_table(run, first=FIRST), tmp_path)


@pytest.fixture(params=["snapshot", "warehouse"])
def served(request: pytest.FixtureRequest, warehouse, tmp_path: Path) -> Iterator[Served]:  # noqa: F811
    _publish_two_runs(warehouse, tmp_path)
    backend = make_backend(request.param, warehouse)
    backend.refresh()
    settings = server_settings(tmp_path / "home")
    with running_service(settings, backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        port = service.start_http(settings, 0, "127.0.0.1")
        yield Served(f"http://127.0.0.1:{port}", pb_grpc.ForecastServiceStub(channel))


def get(url: str, *, method: str = "GET", headers: dict | None = None,
        context: ssl.SSLContext | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _json(message) -> object:  # noqa: ANN001
    return json.loads(json_format.MessageToJson(message))


def doc_curl_lines() -> list[str]:
    """The curl lines of the code block after the test's marker in docs/query-service.md."""
    text = DOC.read_text()
    marker = text.index("tests/integration/test_http_gateway.py runs these very lines")
    block = re.search(r"```\n(.*?)```", text[marker:], re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.startswith("curl ")]


def test_the_doc_curl_calls_answer_what_grpc_answers(served: Served) -> None:
    require(shutil.which("curl") is not None, "curl runs the documented calls")
    lines = doc_curl_lines()
    program_day = pb.GetProgramSlotsRequest(program_code="HUCK", signal="SP1", date="2020-08-01")
    # the gRPC call each documented line stands for, in the doc's order
    expected = [
        lambda: served.stub.GetProgramSlots(program_day),
        lambda: served.stub.GetProgramSlots(pb.GetProgramSlotsRequest(
            program_code="HUCK", start_date="2020-07-27", end_date="2020-08-02")),
        lambda: served.stub.ListSlots(pb.ListSlotsRequest(start_date="2020-07-22", end_date="2020-07-28")),
        lambda: served.stub.ListSlots(pb.ListSlotsRequest(start_date="2020-07-22", end_date="2020-07-28",
                                                          signal="SP1", page_size=50)),
        lambda: list(served.stub.StreamSlots(pb.StreamSlotsRequest(
            start_date="2020-07-22", end_date="2020-07-28", program_code="HUCK"))),
        lambda: served.stub.GetFreshness(pb.GetFreshnessRequest()),
        lambda: served.stub.GetFreshness(pb.GetFreshnessRequest(run_date="2020-07-21")),
        lambda: served.stub.GetProgramSlots(pb.GetProgramSlotsRequest(
            program_code="HUCK", signal="SP1", date="2020-08-01", run_date="2020-07-21")),
    ]
    assert len(lines) == len(expected), lines
    for line, grpc_call in zip(lines, expected, strict=True):
        args = [arg.replace(DOC_HOST, served.base) for arg in shlex.split(line)]
        done = subprocess.run([*args, "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=30)
        body, _, status = done.stdout.rpartition("\n")
        assert (done.returncode, status) == (0, "200"), (line, done.stdout, done.stderr)
        answer = grpc_call()
        want = [_json(m) for m in answer] if isinstance(answer, list) else _json(answer)
        got = json.loads(body)
        if isinstance(want, dict) and "loadTime" in want:  # the warehouse backend's is per call
            got.pop("loadTime"), want.pop("loadTime")
        assert got == want, line
    # the first line is the check: HUCK on SP1 on 2020-08-01, named by its run
    first = json.loads(subprocess.run([a.replace(DOC_HOST, served.base) for a in shlex.split(lines[0])],
                                      capture_output=True, text=True, timeout=30).stdout)
    assert first["runDate"] == {"year": 2020, "month": 7, "day": 21}
    assert [(s["signal"], s["programCode"], s["date"]) for s in first["slots"]] == [
        ("SP1", "HUCK", {"year": 2020, "month": 8, "day": 1})]


def test_stream_is_one_json_array_of_the_stream_messages(served: Served) -> None:
    status, headers, body = get(f"{served.base}/v1/slots:stream?start_date=2020-07-20&end_date=2020-08-16")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    chunks = json.loads(body)
    assert isinstance(chunks, list) and len(chunks) == 1  # 308 slots: one chunk of <= 1000
    assert len(chunks[0]["slots"]) == 308 and chunks[0]["runDate"] == {"year": 2020, "month": 7, "day": 21}
    status, _, body = get(f"{served.base}/v1/slots:stream?start_date=2030-01-01&end_date=2030-01-02")
    assert (status, json.loads(body)) == (200, [{"runDate": {"year": 2020, "month": 7, "day": 21}}])


@pytest.mark.parametrize("path, status, code, fields", [
    ("/v1/slots?start_date=2020-07-28&end_date=2020-07-22", 400, 3, ["end_date"]),
    ("/v1/slots?start_date=2020-07-22&end_date=2020-02-30", 400, 3, ["end_date"]),
    ("/v1/slots?start_date=20200722&end_date=2020-07-28", 400, 3, ["start_date"]),
    ("/v1/slots?end_date=2020-07-28", 400, 3, ["start_date"]),
    ("/v1/slots?start_date=2020-07-22&end_date=2020-07-28&page_size=abc", 400, 3, ["page_size"]),
    ("/v1/slots?start_date=2020-07-22&end_date=2020-07-28&page_size=99999999999", 400, 3, ["page_size"]),
    ("/v1/slots?start_date=2020-07-22&end_date=2020-07-28&colour=red", 400, 3, ["colour"]),
    ("/v1/slots?start_date=2020-07-22&end_date=2020-07-28&page_token=forged", 400, 3, ["page_token"]),
    ("/v1/programs/HU%20CK/slots", 400, 3, ["program_code"]),
    ("/v1/slots?start_date=2020-07-22&end_date=2020-07-28&signal=SP1&signal=BH", 400, 3, ["signal"]),
    ("/v1/programs/HUCK/slots?program_code=VALE", 400, 3, ["program_code"]),
    ("/v1/programs/HUCK/slots?date=2020-08-01&start_date=2020-08-01", 400, 3, ["start_date"]),
    ("/v1/programs/NOPE/slots?date=2020-08-01", 404, 5, []),
    ("/v1/slots?start_date=2020-07-22&end_date=2020-07-28&program_code=HUKC", 404, 5, []),
    ("/v1/slots:stream?start_date=2020-07-22&end_date=2020-07-28&signal=SP2", 404, 5, []),
    ("/v1/freshness?run_date=2020-07-19", 404, 5, []),
    ("/v1/programs/HUCK/slots?run_date=2019-01-01", 404, 5, []),
    ("/v1/nothing", 404, 5, []),
    ("/v1/programs/HUCK", 404, 5, []),
])
def test_errors_are_status_json_under_googles_http_mapping(served: Served, path, status, code, fields) -> None:  # noqa: ANN001
    got, headers, body = get(served.base + path)
    answer = json.loads(body)
    assert (got, answer["code"]) == (status, code), answer
    assert headers["Content-Type"].startswith("application/json")
    assert answer["message"]
    assert bad_request_fields(answer) == fields


def test_not_found_says_which_resource_is_missing(served: Served) -> None:
    _, _, body = get(f"{served.base}/v1/programs/NOPE/slots")
    assert json.loads(body)["details"] == [{
        "@type": "type.googleapis.com/google.rpc.ResourceInfo", "resourceType": "airtime.v1.Program",
        "resourceName": "NOPE",
        "description": "program 'NOPE' is not in the published run 2020-07-21; its programs are HUCK, PTV1, VALE, _999"}]
    _, _, body = get(f"{served.base}/v1/freshness?run_date=2020-07-19")
    assert json.loads(body)["details"][0]["resourceType"] == "airtime.v1.Run"


def test_a_method_the_rule_does_not_take_is_405_with_allow(served: Served) -> None:
    status, headers, body = get(f"{served.base}/v1/freshness", method="POST")
    assert (status, headers["Allow"]) == (405, "GET")
    assert json.loads(body)["code"] == 12


def test_a_pinned_run_answers_from_that_run_and_pages_stay_on_it(served: Served) -> None:
    base = f"{served.base}/v1/programs/HUCK/slots?signal=SP1&date=2020-08-01"
    latest, pinned = (json.loads(get(url)[2]) for url in (base, base + "&run_date=2020-07-20"))
    assert latest["runDate"]["day"] == 21 and pinned["runDate"]["day"] == 20
    assert latest["slots"] != pinned["slots"]  # the runs' forecasts differ
    url = f"{served.base}/v1/slots?start_date=2020-07-20&end_date=2020-08-16&page_size=100&run_date=2020-07-20"
    page = json.loads(get(url)[2])
    rows = page["slots"]
    while "nextPageToken" in page:
        page = json.loads(get(f"{url}&page_token={page['nextPageToken']}")[2])
        assert page["runDate"] == {"year": 2020, "month": 7, "day": 20}
        rows += page["slots"]
    assert len(rows) == 308 == int(page["totalSize"])
    everything = served.stub.ListSlots(pb.ListSlotsRequest(
        start_date="2020-07-20", end_date="2020-08-16", page_size=1000, run_date="2020-07-20"))
    assert rows == _json(everything)["slots"]


def test_tokens_as_grpc_health_paths_open(warehouse, tmp_path: Path) -> None:  # noqa: ANN001, F811
    _publish_two_runs(warehouse, tmp_path)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    settings = server_settings(tmp_path / "home", tokens="s3cret")
    with running_service(settings, backend) as service:
        base = f"http://127.0.0.1:{service.start_http(settings, 0, '127.0.0.1')}"
        status, headers, body = get(f"{base}/v1/freshness")
        assert (status, json.loads(body)["code"], headers["WWW-Authenticate"]) == (401, 16, "Bearer")
        assert get(f"{base}/v1/freshness", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert get(f"{base}/v1/freshness", headers={"Authorization": "Bearer s3cret"})[0] == 200
        # open, like gRPC's health Check: the check's own answer, never 401
        assert get(f"{base}/healthz")[0] == 503  # running_service does not mark it started
        service.started.set()
        assert get(f"{base}/healthz")[0] == 200


def test_tls_settings_serve_https(warehouse, tmp_path: Path) -> None:  # noqa: ANN001, F811
    _publish_two_runs(warehouse, tmp_path)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    cert, key = _self_signed(tmp_path)
    settings = server_settings(tmp_path / "home", tls_cert_file=cert, tls_key_file=key)
    with running_service(settings, backend) as service:
        port = service.start_http(settings, 0, "127.0.0.1")
        trusting = ssl.create_default_context(cafile=str(cert))
        status, _, body = get(f"https://localhost:{port}/v1/freshness", context=trusting)
        assert status == 200 and json.loads(body)["run"]["runDate"]["day"] == 21
        with pytest.raises(OSError):  # plaintext gets no answer from a TLS port (URLError, reset)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/freshness", timeout=5)


def test_a_stream_reader_that_stops_reading_is_cut_off_with_the_array_unclosed(warehouse, tmp_path: Path) -> None:  # noqa: ANN001, E501, F811
    """As gRPC's idle-reader rule (SERVER_STREAM_IDLE_SECONDS), over HTTP: the server drops
    the connection, and what the client got is not valid JSON, never a shortened array."""
    import socket
    import time

    programs = tuple(f"P{i:03d}" for i in range(200))  # ~220,000 slots, ~30 MB of JSON
    publish_run(warehouse, RUN1, forecast_table(RUN1, days=366, programs=programs, first=FIRST), tmp_path)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    settings = server_settings(tmp_path / "home", server_stream_idle_seconds=0.5)
    with running_service(settings, backend) as service:
        port = service.start_http(settings, 0, "127.0.0.1")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            client.sendall(b"GET /v1/slots:stream?start_date=2020-07-20&end_date=2021-07-20 HTTP/1.1\r\n"
                           b"Host: x\r\n\r\n")
            got = client.recv(4096)
            assert got.startswith(b"HTTP/1.1 200")
            time.sleep(3)  # read nothing: the server's writes stall, then it gives up
            while chunk := client.recv(1 << 20):
                got += chunk
        payload = _dechunk(got.split(b"\r\n\r\n", 1)[1])
        assert payload.startswith(b'[{"slots": [') and payload.count(b'"runDate"') < 220
        with pytest.raises(ValueError):
            json.loads(payload)
        # the server is still there for others
        assert get(f"http://127.0.0.1:{port}/v1/freshness")[0] == 200


def _dechunk(body: bytes) -> bytes:
    """The payload of a chunked HTTP/1.1 body (as far as it goes)."""
    out, at = [], 0
    while at < len(body):
        end = body.find(b"\r\n", at)
        if end < 0:
            break
        size = int(body[at:end] or b"0", 16)
        if size == 0:
            break
        out.append(body[end + 2:end + 2 + size])
        at = end + 2 + size + 2
    return b"".join(out)
