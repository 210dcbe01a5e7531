"""The rendered WorkflowTemplate run the way Argo runs it: one container per task of the
image, in DAG order, each exactly as rendered (tests/container/argo_podman.py maps the pod
spec to podman flags), sharing only the artifact store, on the local profile. Its published
answer equals `airtime run`'s in the same image; a task killed mid-step and run again, as
Argo's retryStrategy would, changes nothing; each pod's /tmp is a disk-backed folder the
model's kubelet measures, and a step that outgrows its emptyDir's sizeLimit or its
ephemeral-storage is evicted, as on GKE.

Not run as rendered (Kubernetes-only, no podman equivalent): serviceAccountName and
Workload Identity, nodeSelector (Spot), podGC, synchronization, ttlStrategy; retryStrategy is
applied by the test itself. The
local profile replaces the rendered gcp one: AIRTIME_PROFILE=local, AIRTIME_HOME on the
shared artifact folder, AIRTIME_SOURCE a read-only folder (the gcp profile against the
emulators: the last test, its containers on the host's network to reach them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from airtime.resources import open_warehouse
from airtime.sample import generate
from airtime.settings import Settings
from tests.container.argo_podman import ContainerDag
from tests.container.podman import ENGINE, engine, writable_dir
from tests.e2e.argo_local import should_retry
from tests.gcp_helpers import new_profile
from tests.pipeline_helpers import dump_warehouse
from workflows.config import DEFAULT_RESOURCES, StepResources, WorkflowConfig
from workflows.render import render

SAMPLE_DATE = dt.date(2026, 11, 30)
REAL_DATE = dt.date(2020, 7, 21)  # the real files' delivery: availability from 2020-07-22
STORE = "/airtime"  # where the shared artifact store (and the DuckDB warehouse) is mounted


def workflow_template(image: str, resources: dict[str, StepResources] | None = None) -> dict:
    config = dataclasses.replace(WorkflowConfig.example(), image=image, resources=resources or DEFAULT_RESOURCES)
    (doc,) = [d for d in render(config) if d["kind"] == "WorkflowTemplate"]
    return doc


def config_maps() -> dict[str, dict[str, str]]:
    """The ConfigMaps the render applies beside the template: the pods' settings."""
    return {d["metadata"]["name"]: d.get("data", {}) for d in render(WorkflowConfig.example())
            if d["kind"] == "ConfigMap"}


def source_mount(files: Path, day: dt.date) -> str:
    # a dt=D/ folder: catch-up then finds no delivery for the days before D
    return f"{files}:/source/dt={day.isoformat()}:ro"


def dag(image: str, workdir: Path, files: Path, day: dt.date,
        resources: dict[str, StepResources] | None = None) -> ContainerDag:
    store = writable_dir(workdir / "store")
    return ContainerDag(
        workflow_template(image, resources), workdir, parameters={"run_date": day.isoformat()},
        env_overrides={"AIRTIME_PROFILE": "local", "AIRTIME_HOME": f"{STORE}/home", "AIRTIME_SOURCE": "/source"},
        mounts=[f"{store}:{STORE}", source_mount(files, day)], config_maps=config_maps(),
    )


def airtime_run(image: str, workdir: Path, files: Path, day: dt.date) -> dict:
    """`airtime run` in the same image, same source: the answer the DAG must publish."""
    home = writable_dir(workdir / "airtime-run")
    engine("run", "--rm", *ENGINE.read_only, "--tmpfs", "/tmp:rw,mode=1777",
           "-v", f"{home}:{STORE}", "-v", source_mount(files, day), "--env", f"AIRTIME_HOME={STORE}/home",
           image, "airtime", "run", "--date", day.isoformat(), "--source", "/source")
    return dump_warehouse(home / "home" / "warehouse.duckdb")


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory) -> Path:
    files = tmp_path_factory.mktemp("sample")
    generate(files, rows=3000, seed=3)
    files.chmod(0o755)  # pytest's folders are 0700: the image's user must read the delivery
    return files


def test_every_task_runs_as_rendered_in_its_own_container(image, tmp_path) -> None:
    template = workflow_template(image)
    run = dag(image, tmp_path, tmp_path, SAMPLE_DATE)
    for task in run.order():
        argv = run.pod(task).argv
        container = run.templates[task]["container"]
        assert argv[argv.index("--entrypoint") + 1:][:2] == [container["command"][0], image]
        for flag in ("--read-only", "--cap-drop", "--memory", "--cpus", "--user"):
            assert flag in argv, (task, flag)
    assert run.order() == ["catchup", "ingest", "preprocess", "gate", "load", "verify"]
    assert template["spec"]["serviceAccountName"]  # rendered, and not applied by podman


def test_the_dag_in_containers_publishes_what_airtime_run_publishes(image, tmp_path, sample_files) -> None:
    run = dag(image, tmp_path, sample_files, SAMPLE_DATE)
    run.run_all()
    assert run.outputs["catchup"]["run_date"] == SAMPLE_DATE.isoformat()
    published = dump_warehouse(tmp_path / "store" / "home" / "warehouse.duckdb")
    assert [r[:2] for r in published["runs"]] == [(SAMPLE_DATE, "published")]
    assert published == airtime_run(image, tmp_path, sample_files, SAMPLE_DATE)


def test_a_step_that_outgrows_its_scratch_is_evicted_as_on_gke(image, tmp_path, sample_files) -> None:
    # every pod's /tmp is a disk-backed folder that the model's kubelet measures every 0.5 s
    # (tests/container/kubelet.py; the DAG above stays inside its limits); ingest's emptyDir
    # cut to 8 KiB holds less than what it writes there. The write succeeds (no ENOSPC: the
    # limit is not the filesystem's) and the pod is evicted: a Failed node with the kubelet's
    # message and no exit code (argo-workflows v4.1.2 operator.go:1786-1788), which the
    # retryStrategy retries ("-1" is not a deterministic failure's exit code). A twentieth of a
    # CPU keeps the step inside its work across several checks.
    small = {**DEFAULT_RESOURCES, "ingest": dataclasses.replace(DEFAULT_RESOURCES["ingest"], scratch="8Ki")}
    run = dag(image, tmp_path, sample_files, SAMPLE_DATE, small)
    assert run.run("catchup") == 0, run.log["catchup"]
    pod = run.pod("ingest")
    assert f"{pod.emptydirs['/tmp']}:/tmp" in pod.argv and "--mount" not in pod.argv  # a folder, no tmpfs
    assert run.run("ingest", podman_args=("--cpus", "0.05")) is None, run.log["ingest"]
    ((code, message, _),) = run.attempts["ingest"]
    assert code is None and message == 'Usage of EmptyDir volume "tmp" exceeds the limit "8Ki". '
    assert run.usage["ingest"][0].scratch_peak > 8 * 1024
    assert "No space left on device" not in run.log["ingest"] and "ingest done" not in run.log["ingest"]
    # retried whichever exit code the node ends with: none ("-1"), or the main container's
    # terminated one when the kubelet reports it (the SIGTERM/SIGKILL's 143/137, or 137 with
    # reason ContainerStatusUnknown, seen on GKE: kubernetes/kubernetes#122160), which Argo
    # takes as the node's (operator.go:1612-1617, getExitCode at 1711)
    for exit_code in ("-1", "137", "143"):
        assert should_retry(run.templates["ingest"]["retryStrategy"], 1, "Failed", exit_code)


def test_a_failed_load_alerts_naming_load_and_its_exit_code(image, tmp_path, sample_files) -> None:
    run = dag(image, tmp_path, sample_files, SAMPLE_DATE)
    for task in ("catchup", "ingest", "preprocess", "gate"):
        assert run.run(task) == 0, run.log[task]
    strategy = run.templates["load"]["retryStrategy"]
    while True:  # Argo's retries: every attempt dies (exit 137) before its commit
        code = run.run("load", env={"AIRTIME_CRASH_AT": "load-before-commit"})
        if not should_retry(strategy, len(run.attempts["load"]), "Failed", str(code)):
            break
    assert [code for code, *_ in run.attempts["load"]] == [137] * (int(strategy["limit"]) + 1)
    assert isinstance(json.loads(run.failures("airtime-daily-9")), str)  # quoted, as Argo passes it
    assert run.run_exit_handler("airtime-daily-9") == {"notify": 0}
    lines = [json.loads(line) for line in run.log["notify"].splitlines() if line.startswith("{")]
    (alert,) = [line for line in lines if line.get("logger") == "airtime.alert"]
    assert alert["step"] == "load" and alert["workflow"] == "airtime-daily-9"
    assert "load failed: load: main: Error (exit code 137)" in alert["message"]


@pytest.mark.parametrize("fault", ["podman kill", "crash point"])
def test_a_task_killed_mid_step_and_run_again_publishes_the_same_answer(image, tmp_path, sample_files, fault) -> None:
    clean = airtime_run(image, tmp_path, sample_files, SAMPLE_DATE)
    run = dag(image, tmp_path, sample_files, SAMPLE_DATE)
    for task in ("catchup", "ingest", "preprocess", "gate"):
        assert run.run(task) == 0, run.log[task]
    if fault == "podman kill":  # SIGKILL from outside while the step works
        assert run.run_killed_mid_step("load") == 137
    else:  # the step dies (os._exit(137)) just before its commit: airtime/faults.py
        assert run.run("load", env={"AIRTIME_CRASH_AT": "load-before-commit"}) == 137
    assert "load done" not in run.log["load"]
    assert run.run("load") == 0, run.log["load"]  # Argo's retry: a new pod, a fresh emptyDir
    run.run_all(start_after="load")
    assert dump_warehouse(tmp_path / "store" / "home" / "warehouse.duckdb") == clean


def test_the_dag_in_containers_publishes_the_2292_answers_of_the_real_files(image, tmp_path, shared_data) -> None:
    files = shared_data  # skips, with the reason, where ../shared/data is absent
    run = dag(image, tmp_path, files, REAL_DATE)
    run.run_all()
    published = dump_warehouse(tmp_path / "store" / "home" / "warehouse.duckdb")
    assert len(published["forecast"]) == 2292
    assert published == airtime_run(image, tmp_path, files, REAL_DATE)


def published_forecast(settings: Settings, day: dt.date) -> list[dict]:
    rows = open_warehouse(settings).read_forecast(day).to_pylist()
    return sorted(rows, key=lambda r: (r["signal"], r["program_code"], r["date"]))


@pytest.mark.emulators
def test_the_dag_in_containers_on_the_gcp_profile_publishes_what_airtime_run_publishes(
    image, tmp_path, sample_files, gcs_emulator, bigquery_emulator
) -> None:
    # the rendered gcp profile, its buckets, project and dataset pointed at the emulators
    # (tests/gcp_helpers.py); the containers share the host's network to reach their
    # loopback ports, and nothing else: no folder is shared between the pods
    profile = new_profile(gcs_emulator, bigquery_emulator)
    profile.upload_day(sample_files, SAMPLE_DATE)
    run = ContainerDag(workflow_template(image), tmp_path, parameters={"run_date": SAMPLE_DATE.isoformat()},
                       env_overrides=profile.env(), podman_args=["--network", "host"],
                       config_maps=config_maps())
    run.run_all()
    record = open_warehouse(profile.settings()).run_record(SAMPLE_DATE)
    assert record.state == "published"
    airtime_run(image, tmp_path, sample_files, SAMPLE_DATE)
    local = Settings(profile="local", home=tmp_path / "airtime-run" / "home")
    assert published_forecast(profile.settings(), SAMPLE_DATE) == published_forecast(local, SAMPLE_DATE)
    assert record.checksums == open_warehouse(local).run_record(SAMPLE_DATE).checksums
