"""The image, built once per session with the chosen engine (tests/container/podman.py)."""

from __future__ import annotations

import pytest

from tests.conftest import require
from tests.container.podman import ENGINE, EngineUnavailable, build_image, ensure_engine


@pytest.fixture(scope="session")
def image() -> str:
    try:
        ensure_engine()
    except EngineUnavailable as exc:
        require(False, f"the container tests need {ENGINE.name}: {exc}")  # skips outside CI, fails in it
    return build_image()
