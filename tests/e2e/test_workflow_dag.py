"""The rendered WorkflowTemplate's DAG, executed here task by task as subprocesses the way
Argo runs it (tests/e2e/argo_local.py, which cites the Argo source it reproduces), on the
local profile and on the gcp profile against the emulators: a clean scheduled run; a step
killed once and retried; a pod lost with its Spot node and retried; a step that keeps
failing until the retry limit fails the workflow, alerts, and is then finished by
`argo retry` (only the failed node and what is downstream run again) or by
`argo resubmit --memoized` (a new workflow reusing the succeeded nodes); bad input failing
once, unretried, stopping the DAG and alerting. Every recovered run publishes the same
answer as a clean run."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from airtime.resources import open_warehouse
from airtime.sample import generate
from airtime.settings import Settings
from steps.dag import STEPS as DAG
from tests.e2e.argo_local import ArgoRefused, LocalArgo, Run
from workflows.config import WorkflowConfig
from workflows.render import render

SCHEDULED = "2026-11-27T09:00:00Z"  # 06:00 in Sao Paulo
RUN_DATE = dt.date(2026, 11, 27)
MISSED = RUN_DATE - dt.timedelta(days=1)  # delivered, never run: catch-up's job
CONFIG = WorkflowConfig.example()
WEBHOOK_SECRET = (CONFIG.webhook_secret, "url")

STEPS = tuple(step.name for step in DAG)


def template() -> dict:
    (doc,) = [d for d in render(CONFIG) if d["kind"] == "WorkflowTemplate"]
    return doc


def config_maps() -> dict[str, dict[str, str]]:
    """The ConfigMaps the render applies beside the template (the pods' settings)."""
    return {d["metadata"]["name"]: d.get("data", {}) for d in render(CONFIG) if d["kind"] == "ConfigMap"}


class Webhook:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/alert"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deliveries")
    # the same delivery on both days: a plausible next delivery for the data-quality gate (a
    # synthetic file of another seed or end date looks like a history rewritten throughout)
    for day in (MISSED, RUN_DATE):
        generate(root / f"dt={day.isoformat()}", rows=1500, seed=1, end_date=MISSED - dt.timedelta(days=1))
    return root


@dataclass
class Target:
    """Where one workflow run keeps its state: the env its pods get, and its Settings."""

    env: dict[str, str]
    settings: Settings


class Profiles:
    def __init__(self, profile: str, deliveries: Path, request: pytest.FixtureRequest) -> None:
        self.profile, self.deliveries, self.request = profile, deliveries, request
        self.source = str(deliveries)
        if profile == "gcp":
            from tests import emulators

            self.gcs = request.getfixturevalue("gcs_emulator")
            self.bq = request.getfixturevalue("bigquery_emulator")
            client = emulators.gcs_client(self.gcs)
            bucket = client.create_bucket(f"source-{uuid.uuid4().hex[:10]}")
            for path in deliveries.rglob("*.csv"):
                bucket.blob(f"deliveries/{path.relative_to(deliveries).as_posix()}").upload_from_filename(path)
            self.source = f"gs://{bucket.name}/deliveries"
            self.client = client

    def target(self, tmp: Path) -> Target:
        if self.profile == "local":
            env = {"AIRTIME_PROFILE": "local", "AIRTIME_HOME": str(tmp / "home"), "AIRTIME_SOURCE": self.source}
            return Target(env, Settings(profile="local", home=tmp / "home"))
        bucket = self.client.create_bucket(f"artifacts-{uuid.uuid4().hex[:10]}").name
        dataset = f"airtime_{uuid.uuid4().hex[:10]}"
        env = {
            "AIRTIME_SOURCE": self.source, "AIRTIME_ARTIFACT_BUCKET": bucket, "AIRTIME_GCP_PROJECT": "local",
            "AIRTIME_BQ_DATASET": dataset, "AIRTIME_BQ_API_ENDPOINT": self.bq.url,
            "STORAGE_EMULATOR_HOST": self.gcs.url,
        }
        settings = Settings(profile="gcp", artifact_bucket=bucket, gcp_project="local", bq_dataset=dataset,
                            bq_api_endpoint=self.bq.url)
        return Target(env, settings)


# the gcp profile: the same DAG against the emulators, 15-30 s a test; `make test-slow` (CI) runs it
@pytest.fixture(params=["local", pytest.param("gcp", marks=[pytest.mark.emulators, pytest.mark.slow])])
def profiles(request: pytest.FixtureRequest, deliveries: Path) -> Profiles:
    return Profiles(request.param, deliveries, request)


def argo(target: Target, tmp: Path, webhook: Webhook | None = None, **overrides: str) -> LocalArgo:
    secrets = {WEBHOOK_SECRET: webhook.url} if webhook else {}
    return LocalArgo(template(), tmp / "argo", env_overrides={**target.env, **overrides}, secrets=secrets,
                     config_maps=config_maps())


# the fault tests leave catch-up out, so the crash point fires in the scheduled day's own
# load node rather than inside catch-up's run of the missed day
NO_CATCHUP = {"AIRTIME_CATCHUP_DAYS": "0"}


def crash_once(marker: Path) -> dict[str, str]:
    """Kill the load step (like kill -9) just before its commit, once."""
    return {"AIRTIME_CRASH_AT": "load-before-commit", "AIRTIME_CRASH_ONCE": str(marker)}


CRASH_EVERY_TIME = {"AIRTIME_CRASH_AT": "load-before-commit"}


def retry_limit() -> int:
    return int(next(t for t in template()["spec"]["templates"] if t["name"] == "load")["retryStrategy"]["limit"])


def fail_load_until_the_retry_limit(local: LocalArgo, name: str) -> Run:
    """Every load attempt killed before its commit (exit 137, retried) until the limit is
    spent: the workflow fails. Then the cause is fixed, as an operator would."""
    run = local.submit(name, scheduled_time=SCHEDULED)
    assert run.status == "Failed", logs(run)
    assert run.nodes["load"].phase == "Failed" and run.nodes["load"].exit_code == 137
    assert run.nodes["load"].attempts == retry_limit() + 1
    assert run.nodes["verify"].phase == "Omitted"
    for key in CRASH_EVERY_TIME:
        local.env_overrides.pop(key)
    return run


def warehouse_state(settings: Settings) -> dict:
    """What a client could observe: the ledger's figures and each run's forecast."""
    warehouse = open_warehouse(settings)
    ledger = sorted(
        (r.run_date, r.state, r.input_digest, r.audience_rows, r.availability_rows, r.forecast_rows,
         tuple(sorted(r.checksums.items())))
        for r in warehouse.ledger()
    )
    forecasts = {}
    for run_date, *_ in ledger:
        rows = warehouse.read_forecast(run_date).to_pylist()
        forecasts[run_date] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return {"ledger": ledger, "forecasts": forecasts}


@pytest.fixture
def clean_state(profiles: Profiles, tmp_path: Path) -> dict:
    target = profiles.target(tmp_path / "clean")
    run = argo(target, tmp_path / "clean", **NO_CATCHUP).submit("airtime-daily-clean", scheduled_time=SCHEDULED)
    assert run.status == "Succeeded", {n.task: n.log[-2000:] for n in run.nodes.values()}
    return warehouse_state(target.settings)


def logs(run: Run) -> dict[str, str]:
    return {n.task: n.log[-3000:] for n in run.nodes.values() if n.phase != "Succeeded"}


def test_scheduled_run_catches_up_the_missed_day_then_runs_the_scheduled_one(profiles, tmp_path, webhook) -> None:
    target = profiles.target(tmp_path)
    run = argo(target, tmp_path, webhook).submit("airtime-daily-1", scheduled_time=SCHEDULED)
    assert run.status == "Succeeded", logs(run)
    assert run.executed == ["catchup", *STEPS]
    assert run.nodes["catchup"].outputs["run_date"] == RUN_DATE.isoformat()
    assert run.nodes["verify"].outputs["manifest-uri"].endswith("/verify/manifest.json")
    state = warehouse_state(target.settings)
    assert [(d, s) for d, s, *_ in state["ledger"]] == [(MISSED, "published"), (RUN_DATE, "published")]
    assert run.exit_nodes["notify"].phase == "Skipped" and webhook.bodies == []


def test_step_killed_once_is_retried_and_ends_like_a_clean_run(profiles, tmp_path, clean_state) -> None:
    target = profiles.target(tmp_path / "faulty")
    marker = tmp_path / "crashed-once"
    local = argo(target, tmp_path, **crash_once(marker), **NO_CATCHUP)
    run = local.submit("airtime-daily-2", scheduled_time=SCHEDULED)
    assert marker.exists()  # the fault did fire
    assert run.status == "Succeeded", logs(run)
    assert warehouse_state(target.settings) == clean_state


def test_pod_lost_with_its_spot_node_is_retried_and_ends_like_a_clean_run(profiles, tmp_path, clean_state) -> None:
    # a preempted node takes the pod before any exit code: an Error node, which
    # retryPolicy Always retries (an OnFailure policy would not)
    target = profiles.target(tmp_path / "preempted")
    local = argo(target, tmp_path, **NO_CATCHUP)
    local.lose_pod("preprocess")
    run = local.submit("airtime-daily-spot", scheduled_time=SCHEDULED)
    assert run.status == "Succeeded", logs(run)
    assert run.nodes["preprocess"].attempts == 2
    assert run.executed == ["catchup", *STEPS]  # the lost pod never ran the step
    assert warehouse_state(target.settings) == clean_state


def test_exhausted_retries_fail_and_alert_then_argo_retry_reruns_only_the_failed_node_and_dependents(
    profiles, tmp_path, webhook, clean_state
) -> None:
    target = profiles.target(tmp_path / "faulty")
    local = argo(target, tmp_path, webhook, **CRASH_EVERY_TIME, **NO_CATCHUP)
    run = fail_load_until_the_retry_limit(local, "airtime-daily-3")

    # {{workflow.failures}} reached notify quoted, as Argo passes it (argo_local.py): the alert
    # names the failed step and its exit code (the notify that decoded it once said "unknown")
    assert isinstance(json.loads(run.failures), str)
    (alert,) = webhook.bodies
    text = json.dumps(alert)
    assert alert["text"].startswith(f"airtime run {RUN_DATE.isoformat()} Failed: load failed: load: main: Error (exit code 137)")
    assert {"type": "mrkdwn", "text": "*Failed step*\nload"} in alert["blocks"][1]["fields"]
    assert "airtime-daily-3" in text
    assert "https://argo.example.com/workflows/airtime/airtime-daily-3" in text

    before = list(run.executed)
    local.retry(run)
    assert run.status == "Succeeded", logs(run)
    assert run.executed[len(before):] == ["load", "verify"]
    assert warehouse_state(target.settings) == clean_state
    assert run.exit_nodes["notify"].phase == "Skipped" and len(webhook.bodies) == 1  # no alert for the success
    with pytest.raises(ArgoRefused):
        local.retry(run)  # a succeeded workflow is not retried


def test_resubmit_memoized_reuses_the_succeeded_nodes_and_ends_like_a_clean_run(profiles, tmp_path, clean_state) -> None:
    target = profiles.target(tmp_path / "faulty")
    local = argo(target, tmp_path, **CRASH_EVERY_TIME, **NO_CATCHUP)
    failed = fail_load_until_the_retry_limit(local, "airtime-daily-4")

    again = local.resubmit_memoized(failed, "airtime-daily-4-x7k2p")  # a new workflow
    assert again.status == "Succeeded", logs(again)
    # catchup, ingest and preprocess are copied as Skipped with their outputs: no pod
    assert again.executed == ["load", "verify"]
    assert {t: again.nodes[t].phase for t in ("catchup", "ingest", "preprocess")} == dict.fromkeys(
        ("catchup", "ingest", "preprocess"), "Skipped")
    assert again.nodes["verify"].outputs["manifest-uri"].endswith("/verify/manifest.json")
    assert failed.status == "Failed"  # the old workflow is left as it was
    assert warehouse_state(target.settings) == clean_state


def test_a_fresh_submit_of_a_published_day_reruns_every_pod_but_changes_nothing(profiles, tmp_path, clean_state) -> None:
    # no Argo memoization: a resubmitted day starts every pod, and each step skips itself
    # on its manifest (steps/scaffold.py)
    target = profiles.target(tmp_path / "twice")
    local = argo(target, tmp_path, **NO_CATCHUP)
    assert local.submit("airtime-daily-7", scheduled_time=SCHEDULED).status == "Succeeded"
    again = local.submit("airtime-daily-8", scheduled_time=SCHEDULED)
    assert again.status == "Succeeded", logs(again)
    assert again.executed == ["catchup", *STEPS]
    assert warehouse_state(target.settings) == clean_state


def test_bad_input_fails_once_without_retries_stops_the_dag_and_alerts(deliveries, request, tmp_path, webhook) -> None:
    # exit codes and the retry rule do not depend on the profile: the local one is enough
    profiles = Profiles("local", deliveries, request)
    bad = tmp_path / "bad-source"
    day = bad / f"dt={RUN_DATE.isoformat()}"
    day.mkdir(parents=True)
    for path in (profiles.deliveries / f"dt={RUN_DATE.isoformat()}").iterdir():
        (day / path.name).write_bytes(path.read_bytes())
    audience = next(day.glob("*audience*"))
    audience.write_text(audience.read_text(encoding="utf-8-sig") + "RJ,KVOB,not-a-date,x,y\n")
    target = profiles.target(tmp_path)
    run = argo(target, tmp_path, webhook, AIRTIME_SOURCE=str(bad)).submit("airtime-daily-6", scheduled_time=SCHEDULED)
    assert run.status == "Failed"
    assert run.nodes["ingest"].exit_code == 3 and run.nodes["ingest"].attempts == 1
    assert {t: run.nodes[t].phase for t in STEPS[1:]} == dict.fromkeys(STEPS[1:], "Omitted")
    assert run.executed == ["catchup", "ingest", "notify"]  # the exit handler ran
    assert run.exit_nodes["notify"].phase == "Succeeded"
    (alert,) = webhook.bodies
    assert alert["text"].startswith(f"airtime run {RUN_DATE.isoformat()} Failed: ingest failed: ingest: main: Error (exit code 3)")
    assert run.nodes["ingest"].message == "retryStrategy.expression evaluated to false"
