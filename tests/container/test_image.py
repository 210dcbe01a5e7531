"""The image as it ships, run with Podman or Docker (tests/container/podman.py): who it runs as, a read-only root, `airtime run`
on the bundled sample, `airtime serve` answering the host (gRPC health, a query, metrics),
SIGTERM within the chart's grace period, and an S3 read with the pruned botocore."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from airtime.sample import generate
from grpc_server.client import ForecastClient
from tests import s3_server
from tests.container.podman import ENGINE, ROOT, UID, engine, host_port, remove, wait_for_port, writable_dir
from tests.emulators import EmulatorUnavailable

SAMPLE_DATE = "2026-11-30"  # the bundled sample is the delivery of that day (Makefile `run`)
READ_ONLY = ENGINE.read_only  # the root is read-only, /tmp only is mounted


def grace_period_seconds() -> int:
    """What the kubelet gives the server after SIGTERM: the pod's grace period (preStop +
    drain + 5, charts/airtime/templates/_helpers.tpl) less the preStop sleep it spends
    first."""
    shutdown = yaml.safe_load((ROOT / "charts" / "airtime" / "values.yaml").read_text())["server"]["shutdown"]
    return int(shutdown["drainSeconds"]) + 5


def test_image_runs_as_the_unprivileged_user_10001(image) -> None:
    assert engine("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip() == f"{UID}:{UID}"
    ids = engine("run", "--rm", image, "sh", "-c", "id -u; id -g").stdout.split()
    assert ids == [str(UID), str(UID)]


def test_the_root_filesystem_can_be_read_only_with_only_tmp_writable(image) -> None:
    probe = "touch /tmp/ok && touch /opt/venv/nope 2>/dev/null; echo $?"
    out = engine("run", "--rm", *READ_ONLY, "--tmpfs", "/tmp:rw,mode=1777", "--entrypoint", "sh", image,
                 "-c", probe).stdout.strip()
    assert out == "1"  # /tmp took the write, /opt/venv refused it


@pytest.fixture(scope="module")
def published_home(image, tmp_path_factory) -> Path:
    """`airtime run` on the bundled sample, read-only root, its state in a host folder as /tmp."""
    home = writable_dir(tmp_path_factory.mktemp("home"))
    run = engine("run", "--rm", *READ_ONLY, "-v", f"{home}:/tmp", image, "airtime", "run", "--date", SAMPLE_DATE,
                 timeout=600)
    assert run.returncode == 0
    return home


def test_airtime_run_on_the_bundled_sample_publishes_on_a_read_only_root(image, published_home) -> None:
    runs = engine("run", "--rm", *READ_ONLY, "-v", f"{published_home}:/tmp", image,
                  "airtime", "runs", "--format", "json").stdout
    [record] = [r for r in json.loads(runs) if r["run_date"] == SAMPLE_DATE]
    assert record["state"] == "published"


@pytest.fixture
def server(image, published_home) -> Iterator[str]:
    name = f"airtime-serve-{uuid.uuid4().hex[:8]}"
    engine("run", "-d", "--name", name, *READ_ONLY, "-v", f"{published_home}:/tmp",
           "-p", "127.0.0.1::50051", "-p", "127.0.0.1::9464", image)
    try:
        yield name
    finally:
        remove(name)


def serving(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "the server never reported SERVING"
            time.sleep(0.3)


def test_serve_answers_health_a_query_and_metrics_from_the_host_then_drains_on_sigterm(server) -> None:
    grpc_port, metrics_port = host_port(server, 50051), host_port(server, 9464)
    wait_for_port(grpc_port)
    serving(grpc_port)

    with ForecastClient(f"127.0.0.1:{grpc_port}", timeout=30) as client:
        run_date, rows = client.read_period(dt.date(2026, 12, 1), dt.date(2026, 12, 7))
    assert run_date == dt.date(2026, 11, 30)
    assert rows and all(dt.date(2026, 12, 1) <= r.date <= dt.date(2026, 12, 7) for r in rows)

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert metrics.status == 200 and b"# TYPE" in metrics.read()
    assert urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=10).status == 200

    grace = grace_period_seconds()
    started = time.monotonic()
    engine("stop", "-t", str(grace), server, timeout=grace + 30)  # SIGTERM, SIGKILL after grace
    elapsed = time.monotonic() - started
    state = json.loads(engine("inspect", "--format", "{{json .State}}", server).stdout)
    logs = engine("logs", server)
    assert state["ExitCode"] == 0, logs.stderr[-3000:]
    assert "signal 15: draining" in logs.stdout + logs.stderr  # tini passed SIGTERM on to the server
    assert elapsed < grace, f"took {elapsed:.1f}s of a {grace}s grace period"


@pytest.fixture
def moto(tmp_path) -> Iterator:
    """moto's S3 server on the host's loopback (tests/s3_server.py)."""
    try:
        workdir = tmp_path / "moto"
        workdir.mkdir()
        with s3_server.moto_server(workdir) as server:
            yield server
    except EmulatorUnavailable as exc:
        pytest.skip(str(exc))


def test_airtime_run_reads_an_s3_source_with_the_pruned_botocore(image, tmp_path, moto) -> None:
    # the image keeps only botocore's S3/STS/SSO models (docker/prune-venv.py): a real run
    # from moto's S3 server (on the host's loopback, hence --network host) proves S3 works
    client = s3_server.s3_client(moto)
    client.create_bucket(Bucket="deliveries")
    generate(tmp_path / "sample", rows=1500, seed=5)
    for path in (tmp_path / "sample").iterdir():
        client.upload_file(str(path), "deliveries", f"feed/dt={SAMPLE_DATE}/{path.name}")
    env = [arg for k, v in s3_server.aws_env(moto).items() for arg in ("--env", f"{k}={v}")]
    run = engine("run", "--rm", *READ_ONLY, "--tmpfs", "/tmp:rw,mode=1777", "--network", "host", *env, image,
                 "sh", "-c", f"airtime run --date {SAMPLE_DATE} --source s3://deliveries/feed"
                 " && airtime runs --format json", check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    [record] = [r for r in json.loads(run.stdout[run.stdout.index("["):]) if r["run_date"] == SAMPLE_DATE]
    assert record["state"] == "published"
