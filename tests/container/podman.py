"""The container engine from the tests: Podman here, or the Docker daemon a Cloud Build step
reaches through its socket; the engine .ci/install-podman installs and configures, the image
.ci/build-image builds (docs/image.md). Plain subprocess calls to the engine's CLI, no
client library; the few flags in which the two CLIs differ live here.

Which engine: AIRTIME_CONTAINER_ENGINE=docker|podman, else docker when a Docker daemon
answers on its socket (DOCKER_HOST's unix path, else /var/run/docker.sock) and the docker
CLI is on PATH, else podman. Podman cannot run inside an unprivileged Cloud Build step
(containers/podman #24605, "Not able to run podman inside unprivileged container in CI/CD
pipeline"; ossf/package-analysis #89, on Cloud Build: "Cloud Build doesn't support running
`podman`"); a Cloud Build step has the build's Docker daemon instead (.ci/run-in-docker,
docs/image.md).

With docker the daemon, not this process, resolves `-v HOST:CTR` and publishes ports: the
tests' folders (pytest's tmp_path, under TMPDIR) must be the same path on the daemon's host,
and 127.0.0.1 the host's loopback. .ci/run-in-docker runs the tests in a container that
has both (a same-path bind mount for TMPDIR, `--network host`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / ".tools" / "podman" / "containers.conf"
IMAGE = os.environ.get("AIRTIME_IMAGE", "localhost/airtime:dev")
UID = 10001
DOCKER_SOCKET = Path("/var/run/docker.sock")


class EngineUnavailable(Exception):
    pass



def docker_socket(environ: dict[str, str]) -> Path | None:
    """The unix socket the docker CLI would talk to (DOCKER_HOST, else the default path)."""
    host = environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None  # tcp:// or ssh://: not a socket this machine's paths can reach
    return Path(host.removeprefix("unix://")) if host else DOCKER_SOCKET


def daemon_answers(path: Path) -> bool:
    if not path.is_socket():
        return False
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        return sock.connect_ex(str(path)) == 0


def choose(environ: dict[str, str]) -> str:
    """docker or podman: AIRTIME_CONTAINER_ENGINE, else a reachable Docker daemon, else podman."""
    name = environ.get("AIRTIME_CONTAINER_ENGINE", "")
    if name:
        if name not in ("docker", "podman"):
            raise EngineUnavailable(f"AIRTIME_CONTAINER_ENGINE={name!r}: expected docker or podman")
        return name
    path = docker_socket(environ)
    if path is not None and shutil.which("docker") and daemon_answers(path):
        return "docker"
    return "podman"


@dataclass(frozen=True)
class Engine:
    name: str

    @property
    def read_only(self) -> tuple[str, ...]:
        """A read-only root with no writable path added: podman mounts tmpfs on /tmp, /run
        and /var/tmp with --read-only unless told not to; docker adds nothing."""
        return ("--read-only", "--read-only-tmpfs=false") if self.name == "podman" else ("--read-only",)

    def env(self) -> dict[str, str]:
        conf = os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))
        return {**os.environ, "AIRTIME_CONTAINER_ENGINE": self.name, "CONTAINERS_CONF": conf}


ENGINE = Engine(choose(dict(os.environ)))


def env() -> dict[str, str]:
    return ENGINE.env()


def ensure_engine() -> None:
    """The chosen engine, usable: docker's daemon answering, or podman installed when missing
    and configured for this machine by the project's script (idempotent, quick when there)."""
    if ENGINE.name == "docker":
        proc = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                              text=True, timeout=60)
        if proc.returncode != 0:
            raise EngineUnavailable(f"the docker daemon does not answer: {proc.stderr[-1500:]}")
        return
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "install-podman")], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0 or not shutil.which("podman"):
        raise EngineUnavailable(f"podman is missing and .ci/install-podman failed: {proc.stderr[-1500:]}")



def build_image() -> str:
    """`make image` with the chosen engine (cached layers make a rebuild take seconds)."""
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "build-image")], env=env(), capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, f"make image failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return IMAGE


def engine(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """The chosen engine's CLI with these arguments (the same for docker and podman)."""
    proc = subprocess.run([ENGINE.name, *args], env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{ENGINE.name} {' '.join(args)} -> {proc.returncode}\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc



def remove(name: str) -> None:
    """Force-remove a container at once (podman's `rm -f` would first wait its stop timeout)."""
    engine("rm", "-f", *(("-t", "0") if ENGINE.name == "podman" else ()), name, check=False)


def writable_dir(path: Path) -> Path:
    """A host folder the image's user may write, like an emptyDir with fsGroup 10001."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, UID, UID)
    return path


def host_port(container: str, port: int) -> int:
    """The 127.0.0.1 port the engine published the container's port on (`-p 127.0.0.1::PORT`)."""
    out = engine("port", container, f"{port}/tcp").stdout.strip().splitlines()[0]
    return int(out.rsplit(":", 1)[1])


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")
