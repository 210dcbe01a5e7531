"""The image, built once per session (tests/container/podman.py)."""

from __future__ import annotations

import pytest

from tests.conftest import require
from tests.container.podman import PodmanUnavailable, build_image, ensure_podman


@pytest.fixture(scope="session")
def image() -> str:
    try:
        ensure_podman()
    except PodmanUnavailable as exc:
        require(False, f"the container tests need podman: {exc}")  # skips outside CI, fails in it
    return build_image()
