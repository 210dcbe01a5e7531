"""A real S3 API on loopback, for the s3:// source tests: moto's standalone server.

`python -m moto.server` (moto[server], in the `dev` extra) runs as a child process on a
free 127.0.0.1 port, in memory, offline; it is started, polled until it answers and
stopped by its PID, like the Google emulators of tests/emulators.py. Any access key is
accepted; signatures are not checked.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.emulators import Emulator, EmulatorUnavailable, _run, free_port

REGION = "us-east-1"
ACCESS_KEY = "airtime-test"
SECRET_KEY = "airtime-test-secret"


@contextlib.contextmanager
def moto_server(workdir: Path) -> Iterator[Emulator]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise EmulatorUnavailable("moto[server] is not installed (pip install -e '.[dev]')")
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _run("moto-server", argv, "/moto-api/", port, workdir) as server:
        yield server


def aws_env(server: Emulator) -> dict[str, str]:
    """The standard AWS settings an operator would set for an S3-compatible endpoint, and
    nothing from this machine's ~/.aws or an instance metadata service."""
    return {
        "AWS_ENDPOINT_URL_S3": server.url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def s3_client(server: Emulator, **config):  # noqa: ANN201, ANN003 - a botocore S3 client
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=server.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=Config(**config) if config else None)
