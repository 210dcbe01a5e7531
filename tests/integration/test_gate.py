"""The data-quality gate, as an operator meets it: a delivery valid line by line but
implausible against the previous published one is held (exit 3, nothing loaded, the
previous day still served), the decision is in the ledger, and an explicit acceptance
lets the next run publish it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from airtime.errors import InputError
from tests.pipeline_helpers import cli, make_source

DAY1, DAY2 = "2026-11-30", "2026-12-01"


def _rewrite(path: Path, keep: Callable[[int, list[str]], list[str] | None], sep: str) -> None:
    """Rewrite a delivered CSV file line by line (the header stays)."""
    text = path.read_text(encoding="utf-8-sig")
    header, *lines = [line for line in text.splitlines() if line]
    kept = [header]
    for i, line in enumerate(lines):
        fields = keep(i, line.split(sep))
        if fields is not None:
            kept.append(sep.join(fields))
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    """Home with DAY1 published, and DAY2's delivery: a copy of DAY1's to spoil."""
    source = make_source(tmp_path / "src" / f"dt={DAY1}")
    home = tmp_path / "home"
    assert cli(home, "run", "--date", DAY1, "--source", str(tmp_path / "src")).returncode == 0
    shutil.copytree(source, tmp_path / "src" / f"dt={DAY2}")
    return home, tmp_path / "src"


def _run_day2(home: Path, source: Path, *args: str):  # noqa: ANN202
    return cli(home, "run", "--date", DAY2, "--source", str(source), *args)


def _gate_attempts(home: Path) -> list[dict]:
    (run,) = json.loads(cli(home, "runs", "--format", "json", "--date", DAY2).stdout)
    return [a for a in run["attempts"] if a["step"] == "gate"]


def _still_serving_day1(home: Path) -> None:
    states = {run["run_date"]: run["state"] for run in json.loads(cli(home, "runs", "--format", "json").stdout)}
    assert states[DAY1] == "published" and states[DAY2] in ("held", "failed")
    served = cli(home, "query", "period", "--start", "2026-12-01", "--end", "2026-12-31", "--limit", "1")
    assert served.returncode == 0 and f"forecast of run {DAY1}" in served.stdout


def test_the_same_delivery_again_passes(published) -> None:  # noqa: ANN001
    home, source = published
    assert _run_day2(home, source).returncode == 0
    assert [a["state"] for a in _gate_attempts(home)] == ["succeeded"]


def test_half_the_usual_rows_is_held_until_accepted(published) -> None:  # noqa: ANN001
    home, source = published
    _rewrite(source / f"dt={DAY2}" / "program_audience.csv", lambda i, f: f if i % 3 == 0 else None, ",")
    held = _run_day2(home, source)
    assert held.returncode == InputError.exit_code, held.stderr
    assert "held by the data-quality gate" in held.stderr and "audience has 1,000 rows, 33%" in held.stderr
    assert "airtime accept --date 2026-12-01" in held.stderr
    _still_serving_day1(home)
    (attempt,) = _gate_attempts(home)
    assert attempt["state"] == "failed" and "audience has 1,000 rows" in attempt["error"]

    accepted = cli(home, "accept", "--date", DAY2, "--reason", "a short day: the football final")
    assert accepted.returncode == 0, accepted.stderr
    assert "published" in accepted.stdout  # accept finishes exactly the held generation itself
    decisions = [(a["state"], a["error"]) for a in _gate_attempts(home)]
    assert decisions[0][0] == "failed" and decisions[-1] == ("succeeded", None)
    assert decisions[1][0] == "accepted" and "the football final" in decisions[1][1]
    assert _run_day2(home, source).returncode == 0  # the same delivery again: nothing to do
    assert _gate_attempts(home)[-1]["state"] == "skipped"


def test_a_vanished_signal_is_held(published) -> None:  # noqa: ANN001
    home, source = published
    availability = source / f"dt={DAY2}" / "inventory_availability.csv"
    gone = availability.read_text(encoding="utf-8-sig").splitlines()[1].split(";")[0]
    _rewrite(availability, lambda i, f: None if f[0] == gone else f, ";")
    held = _run_day2(home, source)
    assert held.returncode == InputError.exit_code, held.stderr
    assert f"signals with availability before and none now: {gone}" in held.stderr


def test_a_rewritten_history_is_held(published) -> None:  # noqa: ANN001
    home, source = published
    _rewrite(source / f"dt={DAY2}" / "program_audience.csv",
             lambda i, f: [*f[:4], str(float(f[4]) * 3)] if i % 4 == 0 else f, ",")
    held = _run_day2(home, source)
    assert held.returncode == InputError.exit_code, held.stderr
    assert "the audience rewrites 750 of the 3,000 exhibitions the history already held (25%" in held.stderr


def test_a_day_with_no_valid_row_never_replaces_the_served_one(published) -> None:  # noqa: ANN001
    home, source = published
    _rewrite(source / f"dt={DAY2}" / "inventory_availability.csv", lambda i, f: [*f[:3], "-5"], ";")
    held = _run_day2(home, source, "--max-bad-rows", "100000")
    assert held.returncode == InputError.exit_code, held.stderr
    assert "availability has no valid row" in held.stderr
    _still_serving_day1(home)
