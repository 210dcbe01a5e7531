"""A home written before generations keeps working: the release before them writes it, this
one reads it as one generation per date (`legacy`), migrates the warehouse file in place on
first open, builds the next day on it and lets a re-delivery supersede it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.pipeline_helpers import ROOT, cli, make_source

# the last commit before generations (its `airtime run` writes runs/<D>/<step>/ and a ledger
# keyed by run_date alone)
BEFORE_GENERATIONS = "38fce2f"
D1, D2, D3 = "2026-11-30", "2026-12-01", "2026-12-02"


def _old_release(tmp_path: Path) -> Path:
    found = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE_GENERATIONS], capture_output=True)
    if found.returncode != 0:
        pytest.skip(f"commit {BEFORE_GENERATIONS} is not in this clone (shallow?): {found.stderr.decode()[:200]}")
    folder = tmp_path / "old-release"
    with tarfile.open(fileobj=io.BytesIO(found.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _old_cli(release: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"AIRTIME_HOME": str(home), "PYTHONPATH": str(release), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=release, capture_output=True,
                          text=True, timeout=300)


def test_a_home_of_the_previous_layout_is_read_as_legacy_generations_and_built_on(tmp_path: Path) -> None:
    release = _old_release(tmp_path)
    home, source = tmp_path / "home", tmp_path / "src"
    make_source(source / f"dt={D1}")
    make_source(source / f"dt={D2}")
    make_source(source / f"dt={D3}")
    for day in (D1, D2):
        done = _old_cli(release, home, "run", "--date", day, "--source", str(source))
        assert done.returncode == 0, done.stderr
    assert (home / "artifacts" / "runs" / D2 / "preprocess" / "manifest.json").exists()  # the old layout
    before = cli(home, "query", "period", "--start", "2026-12-01", "--end", "2026-12-31", "--format", "json")

    # read as is: the ledger, the served answers and a re-check of the legacy artifacts
    runs = json.loads(cli(home, "runs", "--format", "json").stdout)
    assert [(r["run_date"], r["state"], r["generation"]) for r in runs] == \
        [(D2, "published", "legacy"), (D1, "published", "legacy")]
    assert before.returncode == 0, before.stderr
    checked = cli(home, "verify", "--date", D2)
    assert checked.returncode == 0 and "generation legacy" in checked.stdout, checked.stderr

    # the next day builds on the legacy history, in a generation folder of its own
    nxt = cli(home, "run", "--date", D3, "--source", str(source))
    assert nxt.returncode == 0, nxt.stderr
    runs = json.loads(cli(home, "runs", "--format", "json").stdout)
    assert runs[0]["run_date"] == D3 and runs[0]["generation"] != "legacy"
    manifest = next((home / "artifacts" / "runs" / D3).glob("*/preprocess/manifest.json"))
    assert json.loads(manifest.read_text())["extra"]["previous_run"] == D2

    # a re-delivery of a legacy day is a new generation that supersedes it
    changed = tmp_path / "changed"
    make_source(changed, seed=4)
    gate_off = {"AIRTIME_DQ_MAX_REWRITTEN_RATIO": "1", "AIRTIME_DQ_MAX_VANISHED_SERIES_RATIO": "1",
                "AIRTIME_DQ_MAX_VANISHED_SIGNALS": "9", "AIRTIME_DQ_MIN_UPCOMING_SLOTS_RATIO": "0",
                "AIRTIME_DQ_MIN_AVAILABLE_TIME_RATIO": "0", "AIRTIME_DQ_MAX_AUDIENCE_OUTLIERS": "1000000"}
    again = cli(home, "run", "--date", D2, "--source", str(changed), env=gate_off)
    assert again.returncode == 0, again.stderr
    generations = {g["generation"]: g["state"] for g in json.loads(
        cli(home, "runs", "--date", D2, "--format", "json").stdout)[0]["generations"]}
    assert generations["legacy"] == "superseded" and sorted(generations.values()) == ["published", "superseded"]
    assert cli(home, "prune").returncode == 0
    assert not (home / "artifacts" / "runs" / D2 / "preprocess").exists()  # the legacy folder's files
    assert next((home / "artifacts" / "runs" / D2).glob("*/preprocess/manifest.json"))  # the new one stays
    assert cli(home, "verify", "--date", D3).returncode == 0
