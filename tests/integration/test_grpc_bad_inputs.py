"""Bad inputs are client errors, and quiet (issue 20, item 4), on real servers on port 0:
forged page tokens, page tokens of runs no longer published, `bearer` in any case, a tokens
file rotated to bytes that are not UTF-8. No answer is INTERNAL/UNKNOWN/5xx, and nothing is
logged at ERROR."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from airtime.warehouse import SlotFilter
from grpc_server import queries
from grpc_server.backend import ForecastBackend
from grpc_server.errors import bad_request_violations
from tests.integration.grpc_fixtures import (  # noqa: F401 - fixtures
    ROOT,
    forecast_table,
    make_backend,
    publish_run,
    running_service,
    server_settings,
    warehouse,
)

D = dt.date(2026, 12, 1)
END = D + dt.timedelta(days=27)
RUN1, RUN2 = dt.date(2026, 11, 28), dt.date(2026, 11, 29)


@dataclass
class Served:
    stub: pb_grpc.ForecastServiceStub
    base: str  # the HTTP/JSON gateway's URL


@contextlib.contextmanager
def serving(backend: ForecastBackend, home: Path, **settings: object) -> Iterator[Served]:
    config = server_settings(home, **settings)
    with running_service(config, backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        port = service.start_http(config, 0, "127.0.0.1")
        yield Served(pb_grpc.ForecastServiceStub(channel), f"http://127.0.0.1:{port}")


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def list_page(served: Served, token: str = "", run_date: dt.date | None = None) -> pb.ListSlotsResponse:
    return served.stub.ListSlots(pb.ListSlotsRequest(
        start_date=D.isoformat(), end_date=END.isoformat(), page_size=50, page_token=token,
        run_date=run_date.isoformat() if run_date else ""), timeout=10)


def http_page(served: Served, token: str, run_date: dt.date | None = None) -> tuple[int, dict]:
    query = {"start_date": D.isoformat(), "end_date": END.isoformat(), "page_size": "50", "page_token": token,
             "run_date": run_date.isoformat() if run_date else ""}
    return http_get(f"{served.base}/v1/slots?{urllib.parse.urlencode(query)}")


def forge(ordinal: int, *, version: int = 1, run_version: int = 0, offset: int = 50,
          digest: bytes | None = None) -> str:
    """A page token with any fields and a valid checksum: anyone can make one."""
    body = queries._TOKEN.pack(version, ordinal, run_version, offset,  # noqa: SLF001 - the format
                               digest if digest is not None else queries.filter_digest(SlotFilter(D, END)))
    check = hashlib.blake2b(body, digest_size=8, person=b"airtime-page").digest()
    return base64.urlsafe_b64encode(body + check).decode().rstrip("=")


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not loud, [r.getMessage() for r in loud]


# -- forged page tokens: INVALID_ARGUMENT / 400 ------------------------------------------

def forged_tokens(served_version: int) -> dict[str, str]:
    """Tokens a client may send: valid checksums around absurd fields, and garbage."""
    ours = RUN1.toordinal()
    return {
        "ordinal 2**31 (OverflowError in date.fromordinal)": forge(2**31, run_version=served_version),
        "ordinal 2**32 - 1": forge(2**32 - 1, run_version=served_version),
        "ordinal past 9999-12-31": forge(dt.date.max.toordinal() + 1),
        "ordinal 0": forge(0),
        "another token version": forge(ours, version=2, run_version=served_version),
        "offset 2**64 - 1": forge(ours, run_version=served_version, offset=2**64 - 1),
        "offset past the end": forge(ours, run_version=served_version, offset=10**9),
        "other filters": forge(ours, run_version=served_version, digest=b"\xff" * 8),
        "bad checksum": forge(ours, run_version=served_version)[:-2] + "AA",
        "truncated": forge(ours, run_version=served_version)[:20],
        "not base64": "%%%not a token%%%",
        "non-ASCII": "tok\u00e9n\u2028",
    }


def test_forged_page_tokens_are_invalid_argument_and_400_never_internal(warehouse, tmp_path: Path,  # noqa: F811
                                                                          caplog: pytest.LogCaptureFixture):
    record = publish_run(warehouse, RUN1, forecast_table(RUN1), tmp_path)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    served_version = int(record.published_at.timestamp() * 1_000_000)
    caplog.set_level(logging.INFO)
    with serving(backend, tmp_path / "home") as served:
        for name, token in forged_tokens(served_version).items():
            with pytest.raises(grpc.RpcError) as caught:
                list_page(served, token)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, caught.value.details())
            assert [field for field, _why in bad_request_violations(caught.value)] == ["page_token"], name
            status, body = http_page(served, token)
            assert status == 400 and body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0], (name, body)
        # a well-formed token of a run version never published: no run to page, FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as caught:
            list_page(served, forge(RUN1.toordinal(), run_version=served_version + 1))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    no_errors_logged(caplog)


# -- page tokens of runs no longer published: FAILED_PRECONDITION / 400 --------------------

def _demote(warehouse, run: dt.date) -> None:  # noqa: ANN001, F811
    warehouse.record_failure(run, warehouse.run_record(run).generation, "verify", "re-check found other rows",
                             demote=True)


def _refused_as_expired(served: Served, token: str, run_date: dt.date | None = None) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list_page(served, token, run_date)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, caught.value.details()
    assert "start again from the first page" in caught.value.details()
    status, body = http_page(served, token, run_date)
    assert status == 400 and body["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0], body
    assert "start again from the first page" in body["message"]


@pytest.mark.parametrize("kind", ["snapshot", "warehouse"])
def test_a_page_token_of_a_re_published_date_is_failed_precondition(kind, warehouse, tmp_path: Path,  # noqa: ANN001, F811
                                                                     caplog: pytest.LogCaptureFixture):
    publish_run(warehouse, RUN1, forecast_table(RUN1), tmp_path, digest="first")
    backend = make_backend(kind, warehouse)
    backend.refresh()
    with serving(backend, tmp_path / "home") as served:
        token = list_page(served).next_page_token
        # the same date delivered again: the first generation is superseded, its rows removed
        publish_run(warehouse, RUN1, forecast_table(RUN2), tmp_path, digest="second")
        backend.refresh()
        _refused_as_expired(served, token)
        fresh = list_page(served)  # the first page again: the new generation
        assert fresh.run_date.day == RUN1.day and list_page(served, fresh.next_page_token).slots
    no_errors_logged(caplog)


@pytest.mark.parametrize("kind", ["snapshot", "warehouse"])
def test_a_page_token_of_the_latest_run_demoted_by_a_recheck_is_failed_precondition(
        kind, warehouse, tmp_path: Path, caplog: pytest.LogCaptureFixture):  # noqa: ANN001, F811
    for run in (RUN1, RUN2):
        publish_run(warehouse, run, forecast_table(run), tmp_path)
    backend = make_backend(kind, warehouse)
    backend.refresh()
    with serving(backend, tmp_path / "home") as served:
        token = list_page(served).next_page_token  # on RUN2, the latest
        _demote(warehouse, RUN2)
        backend.refresh()  # the server falls back to RUN1; RUN2 stays in memory as the previous run
        _refused_as_expired(served, token)
        assert list_page(served).run_date.day == RUN1.day
    no_errors_logged(caplog)


def test_paging_a_pinned_older_run_goes_on_until_that_run_is_demoted(warehouse, tmp_path: Path,  # noqa: F811
                                                                    caplog: pytest.LogCaptureFixture):
    """A newer run does not demote an older one: each date keeps its published generation, and a
    client that asked for an older run (run_date) pages through it, from memory."""
    for run in (RUN1, RUN2):
        publish_run(warehouse, run, forecast_table(run), tmp_path)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    with serving(backend, tmp_path / "home") as served:
        first = list_page(served, run_date=RUN1)
        second = list_page(served, first.next_page_token, RUN1)
        assert second.run_date.day == RUN1.day and second.slots
        later = list_page(served, second.next_page_token)  # the token alone keeps its run
        assert later.run_date.day == RUN1.day
        _demote(warehouse, RUN1)
        backend.refresh()  # the latest (RUN2) did not change; the pinned RUN1 goes
        _refused_as_expired(served, later.next_page_token)
        assert list_page(served).run_date.day == RUN2.day
    no_errors_logged(caplog)


def test_paging_across_a_swap_stops_once_the_previous_run_is_demoted(warehouse, tmp_path: Path,  # noqa: F811
                                                                      caplog: pytest.LogCaptureFixture):
    publish_run(warehouse, RUN1, forecast_table(RUN1), tmp_path)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    with serving(backend, tmp_path / "home") as served:
        first = list_page(served)
        publish_run(warehouse, RUN2, forecast_table(RUN2), tmp_path)
        assert backend.refresh()
        second = list_page(served, first.next_page_token)  # still published: paging goes on
        assert second.run_date.day == RUN1.day
        _demote(warehouse, RUN1)
        backend.refresh()
        _refused_as_expired(served, second.next_page_token)
    no_errors_logged(caplog)


# -- bearer in any case ------------------------------------------------------------------

def test_the_bearer_scheme_is_accepted_in_any_case(warehouse, tmp_path: Path):  # noqa: F811
    publish_run(warehouse, RUN1, forecast_table(RUN1), tmp_path)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    with serving(backend, tmp_path / "home", tokens="s3cret") as served:
        for header in ("Bearer s3cret", "bearer s3cret", "BEARER s3cret", "bEaReR   s3cret"):
            answer = served.stub.GetFreshness(pb.GetFreshnessRequest(), timeout=5,
                                              metadata=(("authorization", header),))
            assert answer.run.run_date.day == RUN1.day, header
            assert http_get(f"{served.base}/v1/freshness", {"Authorization": header})[0] == 200, header
        for header in ("bearers3cret", "Bearer", "Basic s3cret", "bearer S3CRET"):  # the token itself is exact
            with pytest.raises(grpc.RpcError) as caught:
                served.stub.GetFreshness(pb.GetFreshnessRequest(), timeout=5, metadata=(("authorization", header),))
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, header
            assert http_get(f"{served.base}/v1/freshness", {"Authorization": header})[0] == 401, header


# -- a tokens file that is not UTF-8 -----------------------------------------------------

NOT_UTF8 = b"# rotated\nnew-t\xffken\n"  # 0xff at offset 15


def test_a_tokens_file_rotated_to_bytes_that_are_not_utf8_is_ignored_with_one_warning(
        warehouse, tmp_path: Path, caplog: pytest.LogCaptureFixture):  # noqa: F811
    publish_run(warehouse, RUN1, forecast_table(RUN1), tmp_path)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    tokens = tmp_path / "secret" / "tokens"
    tokens.parent.mkdir()
    tokens.write_text("old-token\n")
    caplog.set_level(logging.INFO)

    def freshness(served: Served, token: str) -> grpc.StatusCode:
        try:
            served.stub.GetFreshness(pb.GetFreshnessRequest(), timeout=5,
                                     metadata=(("authorization", f"Bearer {token}"),))
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()

    with serving(backend, tmp_path / "home", tokens_file=tokens) as served:
        rotated = tokens.with_name("tokens.new")
        rotated.write_bytes(NOT_UTF8)
        os.replace(rotated, tokens)  # as the kubelet swaps a Secret
        deadline = time.monotonic() + 3.5  # the file is looked at once a second: 3 looks
        while time.monotonic() < deadline:
            assert freshness(served, "old-token") == grpc.StatusCode.OK  # the previous tokens stay
            assert http_get(f"{served.base}/v1/freshness", {"Authorization": "Bearer old-token"})[0] == 200
            time.sleep(0.05)
        warned = [r for r in caplog.records if r.name == "grpc_server.auth" and r.levelno == logging.WARNING]
        assert len(warned) == 1, [r.getMessage() for r in warned]
        assert str(tokens) in warned[0].getMessage() and "offset 15" in warned[0].getMessage()
        assert not warned[0].exc_info
        tokens.write_text("new-token\n")  # fixed: read again
        deadline = time.monotonic() + 5
        while freshness(served, "new-token") != grpc.StatusCode.OK:
            assert time.monotonic() < deadline, "the fixed tokens file was never read"
            time.sleep(0.1)
        assert freshness(served, "old-token") == grpc.StatusCode.UNAUTHENTICATED
    no_errors_logged(caplog)


def test_a_tokens_file_that_is_not_utf8_stops_the_start_with_exit_2(tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_bytes(NOT_UTF8)
    env = {**os.environ, "AIRTIME_HOME": str(tmp_path / "home"), "AIRTIME_METRICS_PORT": "0",
           "AIRTIME_TOKENS_FILE": str(tokens), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "cli", "serve", "--port", "0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert str(tokens) in done.stderr and "offset 15" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
