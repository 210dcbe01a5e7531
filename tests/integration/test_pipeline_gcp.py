"""The daily job on the gcp profile (GCS + BigQuery, against fake-gcs-server and
local-bigquery): the same assertions as the local profile, and the same answers."""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from airtime.errors import ConfigError, InputError, StorageError, VerificationError
from airtime.sample_days import sample_days
from airtime.warehouse import PUBLISHED
from steps import runner
from steps.dag import STEPS, step_named
from steps.scaffold import make_context, run_step
from tests.gcp_helpers import GcpProfile, new_profile
from tests.pipeline_helpers import ROOT, cli, local_settings, make_source

# slow: 10-70 s a scenario against the emulators; `make test-slow` (CI) runs them
pytestmark = [pytest.mark.emulators, pytest.mark.slow]
DAY = dt.date(2026, 11, 30)
LEDGER_FIELDS = ("state", "input_digest", "audience_rows", "availability_rows", "forecast_rows",
                 "quarantined_rows", "checksums", "failed_step")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_source(tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory, source):
    """The local profile's result for the same files: what the gcp profile must equal."""
    settings = local_settings(tmp_path_factory.mktemp("local"), source)
    runner.run_day(settings, DAY)
    warehouse = make_context(settings, DAY).warehouse
    return snapshot(warehouse)


@pytest.fixture
def gcp(gcs_emulator, bigquery_emulator, source, monkeypatch) -> GcpProfile:
    # what the entry point's environment carries on GKE-with-emulators: google-cloud-storage
    # reads it itself (airtime code never reads the environment)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    profile = new_profile(gcs_emulator, bigquery_emulator)
    profile.upload_day(source, DAY)
    return profile


def snapshot(warehouse) -> dict:  # noqa: ANN001 - a Warehouse
    record = warehouse.run_record(DAY)
    return {
        "forecast": warehouse.read_forecast(DAY),
        "figures": warehouse.figures(DAY, record.generation),
        "ledger": {name: getattr(record, name) for name in LEDGER_FIELDS},
    }


def assert_same(got: dict, want: dict) -> None:
    assert got["figures"] == want["figures"]
    assert got["ledger"] == want["ledger"]
    assert got["forecast"].equals(want["forecast"])  # row for row, typed


def gcp_warehouse(gcp: GcpProfile):  # noqa: ANN201
    return make_context(gcp.settings(), DAY).warehouse


def test_gcp_profile_publishes_the_same_forecast_as_the_local_profile(gcp, local_reference):
    result = runner.run_day(gcp.settings(), DAY)
    assert result.record.state == PUBLISHED
    assert result.steps[-1].manifest_uri == \
        f"gs://{gcp.artifact_bucket}/airtime/runs/{DAY}/{result.record.generation}/verify/manifest.json"
    assert_same(snapshot(gcp_warehouse(gcp)), local_reference)
    assert local_reference["forecast"].num_rows > 0


def test_running_a_date_twice_on_gcp_leaves_one_copy(gcp, local_reference):
    settings = gcp.settings()
    runner.run_day(settings, DAY)
    again = runner.run_day(settings, DAY)
    assert [s.skipped for s in again.steps] == [True] * len(STEPS)
    # force a real second load and verify of the same data: still one copy
    bucket = gcp.storage().bucket(gcp.artifact_bucket)
    generation = gcp_warehouse(gcp).run_record(DAY).generation
    for step in ("load", "verify"):
        bucket.blob(f"airtime/runs/{DAY}/{generation}/{step}/manifest.json").delete()
    third = runner.run_day(settings, DAY)
    assert [s.skipped for s in third.steps] == [True, True, True, False, False]  # ingest, preprocess, gate kept
    assert_same(snapshot(gcp_warehouse(gcp)), local_reference)
    assert [r.run_date for r in gcp_warehouse(gcp).ledger()] == [DAY]


@pytest.mark.parametrize("point", ["after-ingest", "load-before-commit", "after-load"])
def test_a_crash_on_gcp_resumes_to_the_uninterrupted_result(gcp, local_reference, tmp_path, point):
    crashed = cli(tmp_path, "run", "--date", DAY.isoformat(),
                  env=gcp.env() | {"AIRTIME_CRASH_AT": point})
    assert crashed.returncode == 137, crashed.stderr
    assert gcp_warehouse(gcp).latest_published() is None
    resumed = cli(tmp_path, "run", "--date", DAY.isoformat(), env=gcp.env())
    assert resumed.returncode == 0, resumed.stderr
    assert_same(snapshot(gcp_warehouse(gcp)), local_reference)


def test_kill_9_at_random_moments_on_gcp_then_resume_matches(gcp, local_reference, tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
    env |= gcp.env() | {"AIRTIME_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    rng = random.Random(4)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "cli", "run", "--date", DAY.isoformat()],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = cli(tmp_path, "run", "--date", DAY.isoformat(), env=gcp.env())
    assert final.returncode == 0, final.stderr
    assert_same(snapshot(gcp_warehouse(gcp)), local_reference)


def test_a_replaced_source_object_is_noticed_and_ingested_again(gcp, source):
    settings = gcp.settings()
    first = runner.run_day(settings, DAY)
    # the same bytes uploaded again: a new generation, so the source identity changed
    blob = gcp.storage().bucket(gcp.source_bucket).blob(f"incoming/dt={DAY}/inventory_availability.csv")
    original = blob.download_as_bytes()
    blob.upload_from_string(original)
    second = runner.run_day(settings, DAY)
    assert second.steps[0].skipped is False
    assert second.record.state == PUBLISHED
    # different bytes: one slot fewer is one forecast row fewer
    lines = original.split(b"\r\n")
    blob.upload_from_string(b"\r\n".join(lines[:-2]) + b"\r\n")
    third = runner.run_day(settings, DAY)
    assert [s.skipped for s in third.steps] == [False] * len(STEPS)
    assert third.record.forecast_rows == first.record.forecast_rows - 1


def test_a_row_altered_in_bigquery_after_load_fails_verify_and_publishes_nothing(gcp):
    ctx = make_context(gcp.settings(), DAY)
    for step in ("ingest", "preprocess", "gate", "load"):
        run_step(step_named(step), ctx)
    table = f"`local.{gcp.dataset}.forecast`"
    ctx.warehouse.client.query(
        f"UPDATE {table} SET available_time = available_time + 1 WHERE run_date = @d"
        " AND date = (SELECT MIN(date) FROM " + table + " WHERE run_date = @d)",
        job_config=_date_param(DAY)).result()
    with pytest.raises(VerificationError) as exc:
        run_step(step_named("verify"), ctx)
    assert f"table forecast (run_date {DAY})" in str(exc.value)
    assert ctx.warehouse.latest_published() is None
    assert ctx.warehouse.run_record(DAY).failed_step == "verify"
    assert not gcp.storage().bucket(gcp.artifact_bucket).blob(
        f"airtime/runs/{DAY}/{ctx.gen}/verify/manifest.json").exists()


def test_a_row_deleted_in_bigquery_after_load_fails_verify(gcp):
    ctx = make_context(gcp.settings(), DAY)
    for step in ("ingest", "preprocess", "gate", "load"):
        run_step(step_named(step), ctx)
    ctx.warehouse.client.query(
        f"DELETE FROM `local.{gcp.dataset}.raw_audience` WHERE run_date = @d"
        f" AND exhibition_date = (SELECT MAX(exhibition_date) FROM `local.{gcp.dataset}.raw_audience`"
        " WHERE run_date = @d)", job_config=_date_param(DAY)).result()
    with pytest.raises(VerificationError, match="table raw_audience"):
        run_step(step_named("verify"), ctx)
    assert ctx.warehouse.latest_published() is None


def test_a_failing_gcs_write_exits_5_naming_the_object(gcp, tmp_path):
    env = gcp.env() | {"AIRTIME_ARTIFACT_BUCKET": "no-such-bucket"}
    result = cli(tmp_path, "run", "--date", DAY.isoformat(), env=env)
    assert result.returncode == StorageError.exit_code, result.stderr
    assert "gs://no-such-bucket/airtime/runs/2026-11-30/" in result.stderr


def test_a_failing_bigquery_job_exits_5_with_a_clear_message(gcp, tmp_path):
    from google.cloud import bigquery

    # a forecast table someone created with another schema: the load's INSERT must fail
    client = gcp_warehouse(gcp).client
    client.create_dataset(f"local.{gcp.dataset}")
    client.create_table(bigquery.Table(f"local.{gcp.dataset}.forecast",
                                       schema=[bigquery.SchemaField("run_date", "DATE"),
                                               bigquery.SchemaField("signal", "INT64")]))
    result = cli(tmp_path, "run", "--date", DAY.isoformat(), env=gcp.env())
    assert result.returncode == StorageError.exit_code, result.stderr
    assert "BigQuery load transaction of run 2026-11-30" in result.stderr
    assert gcp_warehouse(gcp).latest_published() is None


def test_step_entry_points_on_gcp_emit_gs_manifest_uris(gcp, tmp_path):
    for step in [s.name for s in STEPS]:
        emitted = tmp_path / f"{step}.uri"
        done = subprocess.run([sys.executable, "-m", f"steps.{step}", "--date", DAY.isoformat(),
                               "--emit", str(emitted)], env=_env(gcp, tmp_path), cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert re.fullmatch(f"gs://{gcp.artifact_bucket}/airtime/runs/{DAY}/[0-9a-f]{{16}}/{step}/manifest.json",
                            emitted.read_text())
    assert gcp_warehouse(gcp).run_record(DAY).state == PUBLISHED


def test_gcp_profile_without_an_artifact_bucket_is_a_config_error(gcp):
    with pytest.raises(ConfigError, match="AIRTIME_ARTIFACT_BUCKET"):
        runner.run_day(gcp.settings().model_copy(update={"artifact_bucket": None}), DAY)


def _date_param(day: dt.date):  # noqa: ANN202
    from google.cloud import bigquery

    return bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("d", "DATE", day)])


def _env(gcp: GcpProfile, home) -> dict[str, str]:  # noqa: ANN001
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
    return env | gcp.env() | {"AIRTIME_HOME": str(home), "PYTHONPATH": str(ROOT)}



def test_the_gcp_profile_check_finds_both_profiles_answer_the_same(bigquery_emulator):
    # `python -m tests.gcp_profile_check`: the by-hand check, kept working (own emulators)
    done = subprocess.run([sys.executable, "-m", "tests.gcp_profile_check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SAME: `airtime query period` gives identical output on both profiles" in done.stdout


def _rewritten(source, target):  # noqa: ANN001, ANN202 - Paths
    """The same delivery with every audience x1.5: valid line by line, held by the gate."""
    shutil.copytree(source, target)
    path = next(target.glob("*program_audience*.csv"))
    header, *lines = path.read_text(encoding="utf-8-sig").splitlines()
    scaled = [",".join([*row.split(",")[:4], str(float(row.split(",")[4]) * 1.5)]) for row in lines if row]
    path.write_text("\ufeff" + "\r\n".join([header, *scaled]) + "\r\n", encoding="utf-8")
    return target


def test_a_held_redelivery_on_gcp_leaves_no_trace_in_what_is_served_or_built_on(gcp, source, tmp_path):
    """docs/generations.md on the gcp profile: a wrong re-delivery of a published day is held in
    its own generation; the next day publishes exactly what a home without it publishes."""
    before, after = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)
    gcp.upload_day(source, before)
    gcp.upload_day(source, after)
    settings = gcp.settings()
    runner.run_day(settings, before)
    runner.run_day(settings, DAY)
    warehouse = gcp_warehouse(gcp)
    published = warehouse.run_record(DAY)

    gcp.upload_day(_rewritten(source, tmp_path / "wrong"), DAY)
    with pytest.raises(InputError, match="held by the data-quality gate"):
        runner.run_day(settings, DAY)
    assert warehouse.run_record(DAY) == published  # the same generation, untouched
    assert [g.state for g in warehouse.generations(DAY)] == ["held", "published"]

    nxt = runner.run_day(settings, after)
    assert nxt.record.state == PUBLISHED
    reference = local_settings(tmp_path / "never-wrong", source)
    for day in (before, DAY, after):
        expected = runner.run_day(reference, day)
    history = {r.steps[1].manifest.outputs["history"].rows for r in (nxt, expected)}
    assert len(history) == 1
    assert gcp_warehouse(gcp).read_forecast(after).equals(make_context(reference, after).warehouse.read_forecast(after))


def test_prune_with_warehouse_retention_on_gcp_expires_old_dates_by_the_ledger(gcp, tmp_path):
    """`airtime prune` with AIRTIME_WAREHOUSE_RETENTION_DAYS on GCS and BigQuery, as on the local
    profile (tests/integration/test_warehouse_retention.py): four days, one kept before the
    newest, the day it builds on kept, the oldest gone from the bucket, the tables and the ledger."""
    days = sample_days(tmp_path / "days", dt.date(2026, 11, 25), 4)
    settings = gcp.settings()
    for day in days:
        gcp.upload_day(tmp_path / "days" / f"dt={day.isoformat()}", day)
        assert runner.run_day(settings, day).record.state == PUBLISHED
    warehouse = gcp_warehouse(gcp)
    generations = {day: warehouse.run_record(day).generation for day in days}
    newest = warehouse.read_forecast(days[-1])

    pruned = cli(tmp_path / "home", "prune", env=gcp.env() | {"AIRTIME_RETENTION_DAYS": "1",
                                                              "AIRTIME_WAREHOUSE_RETENTION_DAYS": "1"})
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert f"remove {days[0]} generation {generations[days[0]]}" in pruned.stdout
    assert "and its warehouse rows" in pruned.stdout and "1 generation(s) removed" in pruned.stdout
    assert [r.state for r in warehouse.generations(days[0])] == ["pruned"]
    assert warehouse.read_forecast(days[0]).num_rows == 0
    assert not list(gcp.storage().list_blobs(gcp.artifact_bucket, prefix=f"airtime/runs/{days[0]}/"))
    assert {day: warehouse.run_record(day).state for day in days[1:]} == dict.fromkeys(days[1:], PUBLISHED)
    assert list(gcp.storage().list_blobs(gcp.artifact_bucket, prefix=f"airtime/runs/{days[1]}/"))
    assert warehouse.latest_published().generation == generations[days[-1]]
    assert warehouse.read_forecast(days[-1]).equals(newest)
