"""Record the Google API operations the code makes, per identity, against the emulators.

Each flow runs as its production process would, with the environment its pod gets, talking
to the emulators through a recording proxy of its identity (tests/api_proxy.py):
- pipeline: `python -m steps.catchup` (which runs a missed earlier day, every step in its
  process), then each step's entry point (`python -m steps.<step>`, one pod each), a step that
  fails (no delivery), and the exit handler (`python -m steps.notify`, the same account);
- server: `airtime serve` on each backend (snapshot, warehouse), asked for freshness and rows,
  and (snapshot) polling while the pipeline publishes the next day, which it then serves.
What the test sets up itself (buckets, the dataset, the deliveries) goes to the emulators
directly: in production the Pulumi program and the broadcaster do that, not these identities.
The dataset exists beforehand, as the program creates it.

    .venv/bin/python -m tests.record_api_calls            # print what differs from the fixture
    .venv/bin/python -m tests.record_api_calls --write    # rewrite deploy/gcp/recorded_calls.json

tests/integration/test_recorded_calls.py re-records and fails on an operation the fixture lacks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from google.cloud import bigquery

from airtime.warehouse import SlotFilter
from deploy.gcp.operations import Operation, Resources, operations_of
from grpc_server.client import ForecastClient, query_rows
from tests import emulators
from tests.api_proxy import RecordingProxy, recording
from tests.gcp_helpers import GcpProfile, new_profile
from tests.integration.grpc_fixtures import wait_until_serving
from tests.pipeline_helpers import make_source

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "deploy" / "gcp" / "recorded_calls.json"
DAY = dt.date(2026, 11, 30)
STEPS = ("ingest", "preprocess", "gate", "load", "verify")
MAX_DETAILS = 8  # examples kept per operation in the fixture


class Recorder:
    """A pair of proxies (Cloud Storage, BigQuery) per identity and flow: each call is known by
    the identity and the process that made it."""

    def __init__(self, profile: GcpProfile, stack: ExitStack) -> None:
        self.profile, self.stack = profile, stack
        self.proxies: dict[tuple[str, str], tuple[RecordingProxy, RecordingProxy]] = {}

    @property
    def flows(self) -> dict[str, list[str]]:
        flows: dict[str, list[str]] = {}
        for identity, flow in self.proxies:
            flows.setdefault(identity, []).append(flow)
        return flows

    def env(self, identity: str, flow: str, **extra: str) -> dict[str, str]:
        if (identity, flow) not in self.proxies:
            self.proxies[identity, flow] = (self.stack.enter_context(recording(self.profile.gcs.url)),
                                            self.stack.enter_context(recording(self.profile.bigquery.url)))
        gcs, bq = self.proxies[identity, flow]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
        return env | self.profile.env() | {
            "STORAGE_EMULATOR_HOST": gcs.url, "AIRTIME_BQ_API_ENDPOINT": bq.url,
            "PYTHONPATH": str(ROOT), "AIRTIME_METRICS_PORT": "0", **extra}

    def operations(self) -> list[tuple[str, Operation]]:
        """(flow, operation) for every call recorded."""
        resources = Resources(
            project=emulators.BIGQUERY_PROJECT,
            buckets={self.profile.source_bucket: "source_bucket", self.profile.artifact_bucket: "artifact_bucket"},
            datasets={self.profile.dataset: "dataset"})
        ops = []
        for (identity, flow), proxies in self.proxies.items():
            for proxy in proxies:
                for call in proxy.calls:
                    ops += [(flow, op) for op in operations_of(identity, call, resources)]
        return ops


def run(argv: list[str], env: dict[str, str], *, expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != expect:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}, not {expect}:\n{done.stderr[-3000:]}")
    return done


def record_pipeline(rec: Recorder, home: Path) -> None:
    emit = home / "emit"
    env = rec.env("pipeline", "catch-up (runs a missed day's steps)", AIRTIME_HOME=str(home / "catchup"))
    run(["-m", "steps.catchup", "--date", DAY.isoformat(), "--emit-date", str(emit / "date"),
         "--emit-digest", str(emit / "digest")], env)
    for step in STEPS:
        env = rec.env("pipeline", f"step pod: {step}", AIRTIME_HOME=str(home / step))
        run(["-m", f"steps.{step}", "--date", DAY.isoformat(), "--emit", str(emit / step)], env)
    missing = DAY + dt.timedelta(days=5)  # no delivery: ingest fails and says so in the ledger
    env = rec.env("pipeline", "step pod: ingest, failing", AIRTIME_HOME=str(home / "failing"))
    run(["-m", "steps.ingest", "--date", missing.isoformat(), "--emit", str(emit / "failing")], env, expect=3)
    env = rec.env("pipeline", "exit handler: notify", AIRTIME_HOME=str(home / "notify"))
    run(["-m", "steps.notify", "--workflow", "airtime-daily-x", "--run-date", missing.isoformat(),
         "--status", "Failed", "--failures", "[]", "--link", "https://argo.example/x"], env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_server(rec: Recorder, home: Path, backend: str, *, serving: dt.date, publish_next: bool) -> None:
    env = rec.env("server", f"airtime serve ({backend} backend)" + (", polling a new publication" if publish_next else ""),
                  AIRTIME_HOME=str(home / f"server-{backend}"), AIRTIME_SERVER_BACKEND=backend,
                  AIRTIME_RELOAD_INTERVAL_SECONDS="0.5", AIRTIME_LEDGER_CHECK_SECONDS="2")
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    target = f"127.0.0.1:{port}"
    try:
        wait_until_serving(port, process)
        with ForecastClient(target) as client:
            assert client.freshness().run_date == serving
        start = serving + dt.timedelta(days=1)
        rows = query_rows(target, SlotFilter(start, start + dt.timedelta(days=6)))[1]
        assert rows, "the server answered no rows"
        if publish_next:
            nxt = serving + dt.timedelta(days=1)
            penv = rec.env("pipeline", "step pods of the next day, while the server polls",
                           AIRTIME_HOME=str(home / "next"))
            for step in STEPS:
                run(["-m", f"steps.{step}", "--date", nxt.isoformat(), "--emit", str(home / f"next-{step}")], penv)
            deadline = time.monotonic() + 60
            while True:
                with ForecastClient(target) as client:
                    if client.freshness().run_date == nxt:
                        break
                assert time.monotonic() < deadline, "the server never served the new publication"
                time.sleep(0.2)
        time.sleep(2.5)  # past one ledger safety check
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    if process.returncode not in (0, -15):
        raise RuntimeError(f"airtime serve exited {process.returncode}:\n{err[-3000:]}")


def record(gcs: emulators.Emulator, bq: emulators.Emulator, work: Path) -> Recorder:
    """Run every flow once against the emulators; the recorder holds the calls."""
    profile = new_profile(gcs, bq)
    emulators.bigquery_client(bq).create_dataset(bigquery.Dataset(f"{emulators.BIGQUERY_PROJECT}.{profile.dataset}"))
    source = make_source(work / "source")
    for back in (1, 0, -1):  # the missed day, the run date, the next day
        profile.upload_day(source, DAY - dt.timedelta(days=back))
    with ExitStack() as stack:
        rec = Recorder(profile, stack)
        record_pipeline(rec, work / "pipeline")
        record_server(rec, work, "snapshot", serving=DAY, publish_next=True)
        record_server(rec, work, "warehouse", serving=DAY + dt.timedelta(days=1), publish_next=False)
        rec.operations()  # every call mapped while the proxies still hold them
        return rec


def fixture_of(rec: Recorder) -> dict:
    grouped: dict[tuple, set[str]] = {}
    made_by: dict[tuple, set[str]] = {}
    for flow, op in rec.operations():
        grouped.setdefault(op.key, set()).add(op.detail)
        made_by.setdefault(op.key, set()).add(flow)
    identities = {}
    for identity, flows in rec.flows.items():
        identities[identity] = {
            "flows": flows,
            "operations": [
                {"operation": key[1], "scope": key[2], "resource": key[3],
                 "examples": sorted(d for d in details if d)[:MAX_DETAILS], "flows": sorted(made_by[key])}
                for key, details in sorted(grouped.items()) if key[0] == identity],
        }
    return {"recorded_with": "python -m tests.record_api_calls --write (fake-gcs-server, local-bigquery 0.3.2)",
            "identities": identities}


def keys_of(fixture: dict) -> set[tuple[str, str, str, str]]:
    return {(identity, op["operation"], op["scope"], op["resource"])
            for identity, body in fixture["identities"].items() for op in body["operations"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {FIXTURE.relative_to(ROOT)}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="airtime-record-") as tmp:
        work = Path(tmp)
        with emulators.fake_gcs_server(work) as gcs, emulators.local_bigquery(work, storage_emulator_host=gcs.url) as bq:
            fresh = fixture_of(record(gcs, bq, work))
    if args.write:
        FIXTURE.write_text(json.dumps(fresh, indent=2) + "\n")
        print(f"wrote {FIXTURE.relative_to(ROOT)}")
        return 0
    old = keys_of(json.loads(FIXTURE.read_text())) if FIXTURE.exists() else set()
    new = keys_of(fresh)
    for key in sorted(new - old):
        print("new:", *key)
    for key in sorted(old - new):
        print("gone:", *key)
    return 1 if new != old else 0


if __name__ == "__main__":
    sys.exit(main())
