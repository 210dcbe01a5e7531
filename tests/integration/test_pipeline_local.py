"""The daily job end to end on the local profile: publish, idempotence, resume after
crashes, bad input, quarantine, verification."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from airtime.errors import InputError, VerificationError
from airtime.warehouse import PUBLISHED
from steps import runner
from steps.dag import STEPS, step_named
from steps.scaffold import make_context, run_step
from tests.pipeline_helpers import (
    ROOT,
    cli,
    dump_warehouse,
    generation_dir,
    history_relation,
    local_settings,
    make_source,
)

DAY = dt.date(2026, 11, 30)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_source(tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, source):
    """The warehouse after one uninterrupted run: what every resumed run must equal."""
    home = tmp_path_factory.mktemp("reference")
    runner.run_day(local_settings(home, source), DAY)
    return dump_warehouse(home / "warehouse.duckdb")


def test_a_run_publishes_one_forecast_row_per_slot(tmp_path, source, reference):
    result = runner.run_day(local_settings(tmp_path, source), DAY)
    assert result.record.state == PUBLISHED
    availability = result.steps[0].manifest.outputs["availability"].rows
    assert result.record.forecast_rows == availability == len(reference["forecast"])
    assert [s.skipped for s in result.steps] == [False] * len(STEPS)


def test_running_a_date_twice_leaves_one_identical_copy(tmp_path, source, reference):
    settings = local_settings(tmp_path, source)
    runner.run_day(settings, DAY)
    again = runner.run_day(settings, DAY)
    assert [s.skipped for s in again.steps] == [True] * len(STEPS)
    # force a real second load and verify of the same data: still one copy
    shutil.rmtree(generation_dir(settings.home, DAY) / "load")
    shutil.rmtree(generation_dir(settings.home, DAY) / "verify")
    third = runner.run_day(settings, DAY)
    assert [s.skipped for s in third.steps] == [True, True, True, False, False]  # ingest, preprocess, gate kept
    assert dump_warehouse(settings.warehouse_path) == reference


@pytest.mark.parametrize("point", ["after-ingest", "after-preprocess", "load-before-commit", "after-load",
                                   "after-verify"])
def test_a_crash_at_any_step_resumes_to_the_uninterrupted_result(tmp_path, source, reference, point):
    crashed = cli(tmp_path, "run", "--date", DAY.isoformat(), "--source", str(source),
                  env={"AIRTIME_CRASH_AT": point})
    assert crashed.returncode == 137, crashed.stderr
    resumed = cli(tmp_path, "run", "--date", DAY.isoformat(), "--source", str(source))
    assert resumed.returncode == 0, resumed.stderr
    assert "published" in resumed.stdout
    assert dump_warehouse(tmp_path / "warehouse.duckdb") == reference


def test_a_crash_mid_load_leaves_the_previous_state(tmp_path, source):
    settings = local_settings(tmp_path, source)
    runner.run_day(settings, DAY - dt.timedelta(days=1))
    before = dump_warehouse(settings.warehouse_path)
    crashed = cli(tmp_path, "run", "--date", DAY.isoformat(), "--source", str(source),
                  env={"AIRTIME_CRASH_AT": "load-before-commit"})
    assert crashed.returncode == 137
    assert dump_warehouse(settings.warehouse_path) == before


def test_kill_9_at_random_moments_then_resume_matches(tmp_path_factory):
    bigger = make_source(tmp_path_factory.mktemp("bigger"), rows=400_000, seed=11)
    ref_home = tmp_path_factory.mktemp("bigger-reference")
    assert cli(ref_home, "run", "--date", DAY.isoformat(), "--source", str(bigger)).returncode == 0
    reference = dump_warehouse(ref_home / "warehouse.duckdb")

    home = tmp_path_factory.mktemp("killed")
    rng = random.Random(2026)
    env = {"AIRTIME_HOME": str(home), "PYTHONPATH": str(ROOT)}
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "cli", "run", "--date", DAY.isoformat(),
                                 "--source", str(bigger)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = cli(home, "run", "--date", DAY.isoformat(), "--source", str(bigger))
    assert final.returncode == 0, final.stderr
    assert dump_warehouse(home / "warehouse.duckdb") == reference


def corrupt(source, target, line: bytes):
    shutil.copytree(source, target)
    path = target / "inventory_availability.csv"
    path.write_bytes(path.read_bytes() + line + b"\r\n")
    return target


def test_bad_input_is_refused_and_yesterday_stays_published(tmp_path, source):
    settings = local_settings(tmp_path / "home", source)
    runner.run_day(settings, DAY)
    before = dump_warehouse(settings.warehouse_path)
    bad = corrupt(source, tmp_path / "bad", b"SP1;HUCK;01/12/2026;99999")

    result = cli(settings.home, "run", "--date", (DAY + dt.timedelta(days=1)).isoformat(), "--source", str(bad))
    assert result.returncode == InputError.exit_code
    assert "inventory_availability.csv: line" in result.stderr
    assert "column available_time, value '99999': must be between 0 and 3600 seconds" in result.stderr
    # nothing half-written: no artifacts for the refused day, the warehouse data unchanged
    assert not (settings.runs_root / "runs" / (DAY + dt.timedelta(days=1)).isoformat()).exists()
    after = dump_warehouse(settings.warehouse_path)
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in before.items() if k != "runs"}
    warehouse = make_context(settings, DAY).warehouse
    assert warehouse.latest_published().run_date == DAY
    failed = warehouse.run_record(DAY + dt.timedelta(days=1))
    assert failed.state == "failed" and failed.failed_step == "ingest"


def test_bad_redelivery_of_a_published_day_keeps_it_published(tmp_path, source):
    settings = local_settings(tmp_path / "home", source)
    runner.run_day(settings, DAY)
    bad = corrupt(source, tmp_path / "bad", b"SP1;HUCK;01/12/2026")
    with pytest.raises(InputError):
        runner.run_day(settings, DAY, str(bad))
    warehouse = make_context(settings, DAY).warehouse
    published, refused = warehouse.run_record(DAY), warehouse.generations(DAY)[0]
    assert published.state == PUBLISHED and published.failed_step is None
    assert (refused.state, refused.failed_step) == ("failed", "ingest")
    assert refused.generation != published.generation


def test_tolerated_bad_rows_are_quarantined_and_counted(tmp_path, source):
    bad = corrupt(source, tmp_path / "bad", b"SP1;HUCK;01/12/2026;-5")
    settings = local_settings(tmp_path / "home", bad, max_bad_rows=1)
    result = runner.run_day(settings, DAY)
    assert result.record.state == PUBLISHED and result.record.quarantined_rows == 1
    quarantine = generation_dir(settings.home, DAY) / "ingest" / "quarantine-availability.csv"
    text = quarantine.read_text()
    assert "SP1;HUCK;01/12/2026;-5" in text and "available_time: must be between 0 and 3600" in text


def test_verify_refuses_to_publish_when_the_warehouse_was_altered(tmp_path, source):
    settings = local_settings(tmp_path, source)
    ctx = make_context(settings, DAY)
    for step in ("ingest", "preprocess", "gate", "load"):
        run_step(step_named(step), ctx)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("UPDATE forecast SET available_time = available_time + 1 WHERE rowid = 0")
    con.close()
    with pytest.raises(VerificationError) as exc:
        run_step(step_named("verify"), ctx)
    assert "table forecast (run_date 2026-11-30)" in str(exc.value)
    assert ctx.warehouse.latest_published() is None
    assert ctx.warehouse.run_record(DAY).failed_step == "verify"


def test_a_replaced_source_file_is_ingested_again(tmp_path, source):
    own = tmp_path / "src"
    shutil.copytree(source, own)
    settings = local_settings(tmp_path / "home", own)
    first = runner.run_day(settings, DAY)
    path = own / "inventory_availability.csv"
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join(lines[:-2]) + b"\r\n")  # one slot fewer
    second = runner.run_day(settings, DAY)
    assert [s.skipped for s in second.steps] == [False] * len(STEPS)
    assert second.record.forecast_rows == first.record.forecast_rows - 1


def test_history_accumulates_across_runs_and_the_latest_delivery_wins(tmp_path, source):
    early, late = tmp_path / "early", tmp_path / "late"
    make_source(early, rows=3000, seed=3)
    shutil.copytree(early, late)
    audience = late / "program_audience.csv"
    header, first, *rest = audience.read_bytes().split(b"\r\n")
    fields = first.split(b",")
    changed = b",".join(fields[:4] + [b"123.0"])
    audience.write_bytes(b"\r\n".join([header, changed]) + b"\r\n")  # a one-row re-delivery
    # a one-row delivery after a full one, its audience 123: the gate's row-count, vanished and
    # outlier checks would hold it
    settings = local_settings(tmp_path / "home", early, dq_min_rows_ratio=0, dq_max_vanished_signals=9,
                              dq_max_vanished_series_ratio=1, dq_max_audience_outliers=1)
    runner.run_day(settings, DAY)
    second = runner.run_day(settings, DAY + dt.timedelta(days=1), str(late))
    relation = history_relation(settings.runs_root, second.steps[1].manifest, DAY + dt.timedelta(days=1))
    history = duckdb.connect().execute(
        f"SELECT count(*), count(*) FILTER (average_audience = 123.0) FROM {relation}").fetchone()
    assert history == (3000, 1)


def test_a_history_written_as_one_file_by_an_older_version_is_read_the_same(tmp_path, source):
    """Before the two parts (the day's audience by reference, the rows kept), a preprocess
    manifest named one history file holding every row. A next day built on such a manifest
    gets the same history and forecast as one built on the two parts."""
    from airtime.artifacts import sql_string
    from airtime.manifest import Manifest, manifest_key, write_manifest
    from airtime.store import LocalStore, sha256_file

    next_day = DAY + dt.timedelta(days=1)
    results = {}
    for layout in ("parts", "one file"):
        settings = local_settings(tmp_path / layout, source)
        first = runner.run_day(settings, DAY)
        manifest = first.steps[1].manifest
        if layout == "one file":  # as an older version wrote it
            whole = settings.runs_root / manifest.outputs["history"].key.replace("history-", "history-whole-")
            relation = history_relation(settings.runs_root, manifest, DAY)
            duckdb.connect().execute(f"COPY (SELECT * FROM {relation}) TO {sql_string(whole)} (FORMAT parquet)")
            rows = duckdb.connect().execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
            old = Manifest.from_json((settings.runs_root / manifest_key(DAY, manifest.generation, "preprocess"))
                                     .read_bytes())
            history = old.outputs.pop("history_delivery")
            old.extra.pop("history_delivery", None)
            old.outputs["history"] = dataclasses.replace(
                old.outputs["history"], key=str(whole.relative_to(settings.runs_root)), rows=rows,
                sha256=sha256_file(whole))
            assert rows == history.rows
            write_manifest(LocalStore(settings.runs_root), old)
        second = runner.run_day(settings, next_day)
        assert second.steps[1].manifest.outputs["history"].rows == 0 or layout == "one file"
        con = duckdb.connect()
        results[layout] = (
            con.execute(f"SELECT * FROM {history_relation(settings.runs_root, second.steps[1].manifest, next_day)}"
                        " ORDER BY ALL").fetchall(),
            con.execute("SELECT * FROM read_parquet($p) ORDER BY ALL",
                        {"p": str(settings.runs_root / second.steps[1].manifest.outputs["forecast"].key)}).fetchall())
    assert results["parts"] == results["one file"]
    assert len(results["parts"][0]) == 3000


def test_backfill_runs_each_date_in_order_from_dated_folders(tmp_path, source):
    dated = tmp_path / "incoming"
    for i in range(3):
        shutil.copytree(source, dated / f"dt={(DAY + dt.timedelta(days=i)).isoformat()}")
    result = cli(tmp_path / "home", "backfill", "--start", DAY.isoformat(),
                 "--end", (DAY + dt.timedelta(days=2)).isoformat(), "--source", str(dated))
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines() if line.startswith("run ")] == [
        (DAY + dt.timedelta(days=i)).isoformat() for i in range(3)]
    ledger = json.loads(cli(tmp_path / "home", "runs", "--format", "json").stdout)
    assert [run["state"] for run in ledger] == ["published"] * 3


def test_step_entry_points_run_alone_and_emit_their_manifest_uri(tmp_path, source):
    env = {"AIRTIME_HOME": str(tmp_path / "home"), "AIRTIME_SOURCE": str(source), "PYTHONPATH": str(ROOT)}
    for step in [s.name for s in STEPS]:
        emitted = tmp_path / f"{step}.uri"
        done = subprocess.run([sys.executable, "-m", f"steps.{step}", "--date", DAY.isoformat(),
                               "--emit", str(emitted)], env=env, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert re.search(f"runs/{DAY.isoformat()}/[0-9a-f]{{16}}/{step}/manifest.json$", emitted.read_text())
