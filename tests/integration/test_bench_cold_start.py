"""The cold-start benchmark still runs end to end against a real `airtime serve` (it asserts
nothing about time: figures come from `make bench-cold-start`, docs/serverless.md)."""

from __future__ import annotations

import re

from bench import cold_start


def test_cold_start_bench_reaches_a_real_answer_from_a_published_run(capsys) -> None:  # noqa: ANN001
    assert cold_start.main(["--slots", "5000", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    (row,) = re.findall(r"^\s+1\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)$", out, re.M)
    live, ready, serving, answer, slots, _rss = row
    assert int(slots) > 0  # GetProgramSlots answered from the published run
    assert float(live) <= float(ready) and float(serving) <= float(answer)
    assert "median of 1" in out
