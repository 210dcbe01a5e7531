"""The benchmark still runs, and its two contenders compute the same forecast (it asserts
nothing about time: figures come from `python -m bench.preprocess`, not from tests)."""

from __future__ import annotations

import json

from bench import preprocess


def test_benchmark_contenders_agree_on_a_small_input(tmp_path, capsys):
    assert preprocess.main(["--rows", "3000", "--repeat", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result-3000.json").read_text())
    assert result["input"]["audience_rows"] == 3000
    agreement = result["agreement"]
    assert agreement["duckdb_rows"] == agreement["pandas_rows"] == result["input"]["availability_rows"]
    assert agreement["unmatched"] == 0 and agreement["different"] == 0
    assert "outputs agree: True" in capsys.readouterr().out
