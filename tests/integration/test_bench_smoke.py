"""The benchmarks still run, and their contenders compute the same forecast (they assert
nothing about time: figures come from `make bench` / `python -m bench.day` and
`python -m bench.preprocess`, not from tests)."""

from __future__ import annotations

import json

from bench import day, preprocess


def test_benchmark_contenders_agree_on_a_small_input(tmp_path, capsys):
    assert preprocess.main(["--rows", "3000", "--repeat", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result-3000.json").read_text())
    assert result["input"]["audience_rows"] == 3000
    agreement = result["agreement"]
    assert agreement["duckdb_rows"] == agreement["pandas_rows"] == result["input"]["availability_rows"]
    assert agreement["unmatched"] == 0 and agreement["different"] == 0
    assert "outputs agree: True" in capsys.readouterr().out


def test_whole_day_benchmark_runs_airtime_the_floor_and_the_pandas_script_on_the_same_csvs(tmp_path, capsys):
    assert day.main(["--rows", "2000", "--repeat", "1", "--baseline-repeat", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "day-result-2000.json").read_text())
    assert result["input"]["rows"]["program_audience.csv"] == 2000
    assert {"ingest", "preprocess", "load", "verify"} <= set(result["step_median_seconds"])
    assert {"first_over_floor", "next_over_floor", "pandas_over_first"} <= set(result["ratios"])
    agreement = result["agreement"]
    assert agreement["airtime_rows"] == agreement["pandas_rows"] == result["input"]["rows"]["inventory_availability.csv"]
    assert "outputs agree: True" in capsys.readouterr().out
