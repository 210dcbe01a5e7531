"""The local Argo model's decisions against the upstream rules it cites (argo_local.py):
which failures are retried, and which workflows `argo retry` / `resubmit --memoized` take."""

from __future__ import annotations

import pytest

from tests.e2e.argo_local import ArgoRefused, LocalArgo, Run, should_retry
from tests.e2e.test_workflow_dag import template
from workflows.daily import RETRY_EXPRESSION

STRATEGY = {"limit": 4, "retryPolicy": "Always", "expression": RETRY_EXPRESSION}


@pytest.mark.parametrize(("phase", "exit_code", "retried"), [
    ("Failed", "137", True),  # OOM kill, preemption's SIGKILL
    ("Failed", "143", True),  # SIGTERM within the Spot grace period
    ("Failed", "5", True),  # storage or warehouse fault
    ("Error", "-1", True),  # the pod vanished with its node: no exit code
    ("Failed", "3", False),  # bad input
    ("Failed", "4", False),  # verification failed
    ("Failed", "8", False),  # upstream step not run
])
def test_rendered_strategy_retries_transient_failures_only(phase: str, exit_code: str, retried: bool) -> None:
    assert should_retry(STRATEGY, 1, phase, exit_code) is retried


def test_limit_counts_attempts_after_the_first() -> None:
    assert should_retry(STRATEGY, 4, "Failed", "137")
    assert not should_retry(STRATEGY, 5, "Failed", "137")  # 1 try + 4 retries spent


def test_policy_gates_phases_before_the_expression() -> None:
    assert not should_retry({"retryPolicy": "OnFailure", "expression": "true"}, 1, "Error", "-1")
    assert not should_retry({"retryPolicy": "OnError"}, 1, "Failed", "1")
    # an expression without a policy means Always (v3.5+)
    assert should_retry({"expression": RETRY_EXPRESSION}, 1, "Error", "-1")
    # no expression and no policy means OnFailure
    assert not should_retry({}, 1, "Error", "-1")


@pytest.mark.parametrize("status", ["Running", "Succeeded"])
def test_retry_and_resubmit_memoized_take_only_failed_workflows(tmp_path, status: str) -> None:
    local = LocalArgo(template(), tmp_path)
    run = Run("airtime-daily-1", {}, None, status=status)
    with pytest.raises(ArgoRefused):
        local.retry(run)
    with pytest.raises(ArgoRefused):
        local.resubmit_memoized(run, "airtime-daily-1-abcde")


def test_a_template_feature_the_model_lacks_is_refused(tmp_path) -> None:
    doc = template()
    doc["spec"]["templates"][1]["memoize"] = {"key": "k", "maxAge": "1h", "cache": {"configMap": {"name": "c"}}}
    with pytest.raises(NotImplementedError, match="memoize"):
        LocalArgo(doc, tmp_path)
