"""Cloud Build's gate runs the container tests with the engine its step really has: the build's
Docker daemon, reached through gcr.io/cloud-builders/docker and .ci/run-in-docker, chosen by
the same code (tests/container/podman.py) that picks Podman on this machine."""

from __future__ import annotations

import shlex
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.container.podman import EngineUnavailable, choose

ROOT = Path(__file__).resolve().parents[2]
DOCKER_BUILDER = "gcr.io/cloud-builders/docker"


def cloudbuild() -> dict:
    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def script_lines(step: dict) -> list[str]:
    return [line.strip() for line in step.get("script", "").splitlines()
            if line.strip() and not line.strip().startswith("#")]


def step_running_make_test() -> dict:
    steps = [s for s in cloudbuild()["steps"] if any("make test" in line for line in script_lines(s))]
    assert len(steps) == 1, [s["id"] for s in steps]
    return steps[0]


def run_in_docker() -> str:
    return (ROOT / ".ci" / "run-in-docker").read_text()


def recipe(target: str) -> str:
    return (ROOT / "Makefile").read_text().split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]


def test_make_test_in_ci_runs_the_container_tests_and_make_test_slow_the_rest() -> None:
    assert '"$${CI:-}" = "true" ]; then $(MAKE) image-test MARKS="not big"' in recipe("test")
    assert '-m "not slow and not big"' in recipe("test")
    assert '"$${CI:-}" = "true" ]; then $(MAKE) image-test MARKS=big' in recipe("test-slow")
    assert '-m "slow or big"' in recipe("test-slow")
    assert 'pytest -q $(if $(MARKS),-m "$(MARKS)") tests/container' in recipe("image-test")


def test_ci_runs_the_slow_tests_after_the_fast_ones_so_nothing_is_left_out() -> None:
    run = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make")]
    assert run == ["make test", "make test-slow"]


def test_the_cloud_build_step_running_make_test_is_on_the_docker_builder_through_run_in_docker() -> None:
    step = step_running_make_test()
    assert step["name"] == DOCKER_BUILDER, "only the docker builder reaches the build's Docker daemon"
    [command] = [line for line in script_lines(step) if "make test" in line]
    assert shlex.split(command) == ["bash", ".ci/run-in-docker", "make", "test", "test-slow"]  # as .ci/run
    assert cloudbuild()["options"]["automapSubstitutions"] is True  # _PYTHON_IMAGE reaches the script


def test_run_in_docker_gives_the_tests_the_socket_the_hosts_network_and_same_path_folders() -> None:
    script = run_in_docker()
    assert 'SOCKET="${AIRTIME_DOCKER_SOCKET:-/var/run/docker.sock}"' in script
    create = script.split("docker create", 1)[1].split(">/dev/null", 1)[0]
    assert '-v "$SOCKET:/var/run/docker.sock"' in create
    assert "--network host" in create  # ports published on 127.0.0.1 are the test's loopback
    assert '-v "$SHARED_TMP:$SHARED_TMP"' in create and '--env "TMPDIR=$SHARED_TMP"' in create
    assert "--env AIRTIME_CONTAINER_ENGINE=docker" in create and "--env CI=true" in create
    assert "docker start --attach" in script  # the step fails with the tests' exit code
    assert "/workspace:" not in script  # copied in, never re-mounted (unsupported in Cloud Build)


def test_run_in_docker_tests_in_the_install_steps_image_so_the_venv_runs() -> None:
    config = cloudbuild()
    [install] = [s for s in config["steps"] if s["id"] == "install"]
    assert install["name"] == "${_PYTHON_IMAGE}"
    default = config["substitutions"]["_PYTHON_IMAGE"]
    assert f'PYTHON_IMAGE="${{_PYTHON_IMAGE:-${{AIRTIME_CI_PYTHON_IMAGE:-{default}}}}}"' in run_in_docker()


@pytest.fixture
def listening_socket() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="airtime-sock-"))  # short: AF_UNIX paths max ~107 bytes
    path = folder / "docker.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen(1)
        yield path
    shutil.rmtree(folder)


def test_the_engine_is_docker_when_a_daemon_answers_on_its_socket(listening_socket, monkeypatch) -> None:
    bin_dir = listening_socket.parent / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))  # a docker CLI on PATH, whatever this machine has
    assert choose({"DOCKER_HOST": f"unix://{listening_socket}"}) == "docker"
    assert choose({"DOCKER_HOST": f"unix://{listening_socket.parent / 'absent.sock'}"}) == "podman"
    assert choose({"DOCKER_HOST": "tcp://10.0.0.1:2375"}) == "podman"
    monkeypatch.setenv("PATH", str(bin_dir.parent / "empty"))
    assert choose({"DOCKER_HOST": f"unix://{listening_socket}"}) == "podman"  # no CLI to drive it


def test_the_engine_named_in_the_environment_wins_and_a_typo_is_refused() -> None:
    assert choose({"AIRTIME_CONTAINER_ENGINE": "podman", "DOCKER_HOST": "unix:///var/run/docker.sock"}) == "podman"
    assert choose({"AIRTIME_CONTAINER_ENGINE": "docker"}) == "docker"
    with pytest.raises(EngineUnavailable, match="AIRTIME_CONTAINER_ENGINE='dokcer'"):
        choose({"AIRTIME_CONTAINER_ENGINE": "dokcer"})
