"""Podman from the tests: the engine .ci/install-podman installs and configures, the image
.ci/build-image builds (docs/image.md). Plain subprocess calls, no client library."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / ".tools" / "podman" / "containers.conf"
IMAGE = os.environ.get("AIRTIME_IMAGE", "localhost/airtime:dev")
UID = 10001


class PodmanUnavailable(Exception):
    pass


def env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}


def ensure_podman() -> None:
    """Podman configured for this machine, installed by the project's script when missing."""
    if shutil.which("podman") and CONTAINERS_CONF.exists():
        return
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "install-podman")], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0 or not shutil.which("podman"):
        raise PodmanUnavailable(f"podman is missing and .ci/install-podman failed: {proc.stderr[-1500:]}")


def build_image() -> str:
    """`make image` (cached layers make a rebuild take seconds)."""
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "build-image")], env=env(), capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, f"make image failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return IMAGE


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} -> {proc.returncode}\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def writable_dir(path: Path) -> Path:
    """A host folder the image's user may write, like an emptyDir with fsGroup 10001."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, UID, UID)
    return path


def host_port(container: str, port: int) -> int:
    """The 127.0.0.1 port podman published the container's port on (`-p 127.0.0.1::PORT`)."""
    out = podman("port", container, f"{port}/tcp").stdout.strip()
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
