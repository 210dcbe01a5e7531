"""The recorded Google API operations (deploy/gcp/recorded_calls.json) are still the ones the
code makes: every flow of tests/record_api_calls.py run again against the emulators, each call
mapped to an operation (an unknown call fails), compared with the fixture. An operation the
fixture lacks fails here; tests/unit/test_iam_covers_calls.py then checks its grant."""

from __future__ import annotations

import json

import pytest

from tests import record_api_calls

# slow: two minutes of real processes behind the recording proxies; `make test-slow` (CI) runs it
pytestmark = [pytest.mark.emulators, pytest.mark.slow]


def test_the_code_makes_no_google_api_operation_the_fixture_lacks(gcs_emulator, bigquery_emulator, tmp_path):
    fresh = record_api_calls.keys_of(record_api_calls.fixture_of(
        record_api_calls.record(gcs_emulator, bigquery_emulator, tmp_path)))
    kept = record_api_calls.keys_of(json.loads(record_api_calls.FIXTURE.read_text()))
    new = sorted(fresh - kept)
    assert not new, ("operations the code now makes that deploy/gcp/recorded_calls.json lacks (review, then"
                     " `python -m tests.record_api_calls --write`):\n" + "\n".join(" ".join(k) for k in new))
    gone = sorted(kept - fresh)
    assert not gone, ("operations in deploy/gcp/recorded_calls.json the code no longer makes (rewrite it:"
                      " `python -m tests.record_api_calls --write`):\n" + "\n".join(" ".join(k) for k in gone))
