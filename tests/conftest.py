"""Shared fixtures. Optional dependencies skip outside CI and fail inside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the project; AIRTIME_SHARED_DIR points elsewhere (a clone in /tmp, say)
SHARED = Path(os.environ.get("AIRTIME_SHARED_DIR") or ROOT.parent / "shared")
SHARED_DATA = SHARED / "data"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Property tests: quick while developing, thorough in CI (HYPOTHESIS_PROFILE overrides).
# No deadline: a shared 2-core machine makes single-example timings meaningless.
settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev"))


def require(condition: bool, reason: str) -> None:
    """Skip with a reason when an optional dependency is missing; in CI, where the
    project's scripts install everything, a missing dependency is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def require_shared(path: Path, what: str) -> Path:
    """A file of ../shared (real data, schemas). ../shared sits beside the project in the
    team's checkouts and CI, not in a clone elsewhere (Cloud Build): when the folder is
    absent as a whole its tests skip, even in CI; when it is there, a missing file fails
    in CI like any other missing dependency."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent ({what} live beside the project, not in it)")
    require(path.exists(), f"{path} is absent ({what})")
    return path


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (the real input files)."""
    require_shared(SHARED_DATA / "tvaberta_program_audience.csv", "the real input files")
    return SHARED_DATA


# -- Google Cloud emulators (tests/emulators.py), one of each per test session ----------


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory):
    from tests import emulators

    try:
        with emulators.fake_gcs_server(tmp_path_factory.mktemp("fake-gcs")) as emulator:
            yield emulator
    except emulators.EmulatorUnavailable as exc:
        require(False, str(exc))


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory, gcs_emulator):
    from tests import emulators

    if IN_CI and not emulators.local_bigquery_installed():
        # `make test` runs .ci/install-emulators first in CI; this covers a bare `pytest`
        import subprocess

        subprocess.run([str(ROOT / ".ci" / "install-emulators")], check=True, timeout=1800)
    try:
        with emulators.local_bigquery(tmp_path_factory.mktemp("local-bigquery"),
                                      storage_emulator_host=gcs_emulator.url) as emulator:
            yield emulator
    except emulators.EmulatorUnavailable as exc:
        require(False, str(exc))
