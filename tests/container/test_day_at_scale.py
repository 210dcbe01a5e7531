"""A 10M-row day in containers, inside the limits the workflow renders (issue 22): the
rendered WorkflowTemplate with the default resources (workflows/config.py DEFAULT_RESOURCES)
run one container per task (tests/container/argo_podman.py): `--memory` and `--cpus` as
rendered, each pod's /tmp measured by the model's kubelet and evicted past its emptyDir's
sizeLimit or its ephemeral-storage (tests/container/kubelet.py).

The delivery is bench/day.py's (`airtime sample-data --rows 10000000`, 654 MB of CSV), the
same files delivered on four consecutive days. The run of the fourth day first catches up
the three before it in its `catchup` pod (a first day, then two next days, in one process),
then runs each step of a next day (the history merged) in its own pod. Each pod's peak
memory and scratch are printed beside its limits. Local profile: the artifact store is a
shared host folder, so the source CSVs are not fetched into /tmp as on the gcp profile
(654 MB more scratch for catchup and ingest there, docs/operations-argo.md "Pod sizes").

Marked `big` (minutes, not seconds): `make test-slow` runs it in CI (.ci/run, after `make
test`, which leaves it out), and `make image-test` without MARKS with the rest of tests/container.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from bench.day import prepare
from tests.container.argo_podman import ContainerDag, memory_bytes
from tests.container.podman import writable_dir
from tests.container.test_workflow_in_containers import STORE, config_maps, workflow_template
from tests.pipeline_helpers import dump_warehouse
from workflows.config import DEFAULT_RESOURCES

ROWS = 10_000_000
FIRST_DAY = dt.date(2026, 11, 30)  # the sample's delivery day (bench/day.py RUN_DATE)
DAYS = [FIRST_DAY + dt.timedelta(days=n) for n in range(4)]  # three caught up, then the run's own
MiB = 2**20

pytestmark = [pytest.mark.big, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def big_delivery(tmp_path_factory) -> Path:
    csv, _ = prepare(ROWS, 7, tmp_path_factory.mktemp("day-10m"))
    for path in (csv, *csv.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the image's user reads the delivery
    return csv


def limits_table(run: ContainerDag) -> list[dict]:
    rows = []
    for task in run.order():
        container = run.templates[task]["container"]
        limits = container["resources"]["limits"]
        (volume,) = run.templates[task]["volumes"]
        scratch_limit = min(memory_bytes(volume["emptyDir"]["sizeLimit"]), memory_bytes(limits["ephemeral-storage"]))
        for usage in run.usage[task]:
            rows.append({"task": task, "cpu": limits["cpu"], "memory_limit": memory_bytes(limits["memory"]),
                         "anon_peak": usage.anon_peak, "cgroup_peak": usage.cgroup_peak,
                         "scratch_peak": usage.scratch_peak, "scratch_limit": scratch_limit,
                         "evicted": usage.evicted})
    return rows


def mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MiB:,.0f}"


def report(rows: list[dict], seconds: dict[str, float]) -> str:
    lines = [f"{'task':11} {'cpu':>5} {'memory peak / limit MiB':>24} {'cgroup peak':>11} "
             f"{'scratch peak / limit MiB':>25} {'seconds':>8}"]
    for r in rows:
        lines.append(f"{r['task']:11} {r['cpu']:>5} {mib(r['anon_peak']):>11} / {mib(r['memory_limit']):>10} "
                     f"{mib(r['cgroup_peak']):>11} {mib(r['scratch_peak']):>12} / {mib(r['scratch_limit']):>10} "
                     f"{seconds[r['task']]:8.0f}")
    return "\n".join(lines)


def test_a_10m_row_day_and_a_catch_up_of_3_days_run_inside_their_rendered_limits(
    image, tmp_path, big_delivery, capsys
) -> None:
    store = writable_dir(tmp_path / "store")
    run = ContainerDag(
        workflow_template(image, DEFAULT_RESOURCES), tmp_path, parameters={"run_date": DAYS[-1].isoformat()},
        env_overrides={"AIRTIME_PROFILE": "local", "AIRTIME_HOME": f"{STORE}/home", "AIRTIME_SOURCE": "/source"},
        mounts=[f"{store}:{STORE}", *(f"{big_delivery}:/source/dt={day.isoformat()}:ro" for day in DAYS)],
        config_maps=config_maps(),
    )
    seconds = {}
    for task in run.order():
        started = time.monotonic()
        code = run.run(task)
        seconds[task] = time.monotonic() - started
        assert code == 0, f"{task}: exit code {code}, node message {run.attempts[task][-1][1]!r}\n{run.log[task]}"
    rows = limits_table(run)
    with capsys.disabled():
        print(f"\n10M audience rows, catch-up of {len(DAYS) - 1} days then a next day, in containers"
              f" (memory peak: anonymous memory sampled every 0.5 s; cgroup peak: its high-water mark,"
              f" page cache included):\n{report(rows, seconds)}")
    published = dump_warehouse(store / "home" / "warehouse.duckdb")
    assert [r[:2] for r in published["runs"]] == [(day, "published") for day in DAYS]
    for r in rows:  # each inside its limits: not evicted, not OOM-killed (exit 0 above)
        assert r["evicted"] is None and r["scratch_peak"] <= r["scratch_limit"], r
        assert r["anon_peak"] is None or r["anon_peak"] < r["memory_limit"], r
