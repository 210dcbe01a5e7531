"""The emulator harness itself: started on a free loopback port, answering, stopped by PID."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from tests import emulators

pytestmark = pytest.mark.emulators


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too: the harness reaps its children, so it must not be one
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "State:\tZ" not in status.read_text()


@pytest.mark.parametrize("name", ["fake-gcs-server", "local-bigquery"])
def test_an_emulator_answers_on_loopback_and_is_gone_after_the_block(request, tmp_path, name):
    if name == "local-bigquery":
        request.getfixturevalue("bigquery_emulator")  # skips (or installs, in CI) as the others
        starter, ready = emulators.local_bigquery, "/bigquery/v2/projects/local/datasets"
    else:
        starter, ready = emulators.fake_gcs_server, "/storage/v1/b"
    with starter(tmp_path) as emulator:
        assert emulator.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(emulator.url + ready, timeout=10) as response:
            assert response.status == 200
        pid = emulator.pid
        assert _alive(pid)
    assert not _alive(pid)


def test_a_missing_local_bigquery_install_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(emulators, "LOCAL_BIGQUERY", tmp_path / "nowhere" / "bin" / "local-bigquery")
    monkeypatch.setattr(emulators, "TOOLS", tmp_path / "nowhere")
    with pytest.raises(emulators.EmulatorUnavailable, match=r"run \.ci/install-emulators"):
        with emulators.local_bigquery(tmp_path):
            pass
