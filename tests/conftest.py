"""Shared fixtures. Optional dependencies skip outside CI and fail inside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip with a reason when an optional dependency is missing; in CI, where the
    project's scripts install everything, a missing dependency is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (the real input files); skipped when absent, as in a fresh clone."""
    require(
        (SHARED_DATA / "tvaberta_program_audience.csv").is_file(),
        f"{SHARED_DATA} is absent (the real files live beside the project, not in it)",
    )
    return SHARED_DATA
