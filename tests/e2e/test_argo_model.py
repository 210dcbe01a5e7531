"""The local Argo model's decisions against the upstream rules it cites (argo_local.py):
which failures are retried, and which workflows `argo retry` / `resubmit --memoized` take."""

from __future__ import annotations

import json

import pytest

from steps.notify import Failure, parse_failures
from tests.e2e.argo_local import (
    POD_DEADLINE_EXCEEDED,
    STEP_DEADLINE_EXCEEDED,
    ArgoRefused,
    LocalArgo,
    Run,
    should_retry,
)
from tests.e2e.test_workflow_dag import config_maps, template
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
    local = LocalArgo(template(), tmp_path, config_maps=config_maps())
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


# -- retries on Argo's clock: maxDuration, deadlines, the Retry node's attempts ----------------

def one_task(step: str, command: str, strategy: dict | None = None) -> dict:
    """The rendered template cut to one task: `step`'s retryStrategy, deadline and environment
    and the workflow's deadline, its container a tiny Python program (the model's clock is
    virtual)."""
    doc = template()
    rendered = next(t for t in doc["spec"]["templates"] if t["name"] == step)
    task = {"name": step, "template": step}
    return {**doc, "spec": {
        "entrypoint": "daily", "activeDeadlineSeconds": doc["spec"]["activeDeadlineSeconds"],
        "templates": [
            {"name": "daily", "dag": {"tasks": [task]}},
            {"name": step, "container": {"image": "python", "command": ["python", "-c", command],
                                         # the step's own environment: the settings ConfigMap, the profile
                                         **{k: rendered["container"][k] for k in ("envFrom", "env")
                                            if k in rendered["container"]}},
             "retryStrategy": strategy or rendered["retryStrategy"],
             "activeDeadlineSeconds": rendered["activeDeadlineSeconds"]},
        ],
    }}


# what the template had before issue 22: maxDuration counted from the first attempt
OLD_STRATEGY = {**STRATEGY, "backoff": {"duration": "30s", "factor": 2, "cap": "10m", "maxDuration": "1h"}}


def test_a_catchup_preempted_after_an_hour_is_retried_within_its_own_deadline(tmp_path) -> None:
    local = LocalArgo(one_task("catchup", "pass"), tmp_path, config_maps=config_maps())
    local.lose_pod("catchup", after=3700)
    run = local.submit("wf-1")
    node = run.nodes["catchup"]
    assert run.status == "Succeeded" and node.type == "Retry"
    assert [(c.display_name, c.phase) for c in node.children] == [("catchup(0)", "Error"), ("catchup(1)", "Succeeded")]
    assert node.children[1].started_at == 3700 + 30  # after the first backoff


def test_the_old_max_duration_gave_up_on_a_catchup_preempted_after_an_hour(tmp_path) -> None:
    local = LocalArgo(one_task("catchup", "pass", OLD_STRATEGY), tmp_path, config_maps=config_maps())
    local.lose_pod("catchup", after=3700)
    run = local.submit("wf-1")
    assert run.status == "Error" and run.nodes["catchup"].message == "Max duration limit exceeded"
    assert run.nodes["catchup"].attempts == 1


def test_every_attempt_of_a_step_gets_its_whole_deadline(tmp_path) -> None:
    local = LocalArgo(one_task("load", "pass"), tmp_path, config_maps=config_maps())
    local.hang("load", times=2)  # killed at activeDeadlineSeconds, twice
    run = local.submit("wf-1")
    children = run.nodes["load"].children
    assert run.status == "Succeeded", [c.message for c in children]
    assert [c.message for c in children[:2]] == [POD_DEADLINE_EXCEEDED] * 2
    assert [c.started_at for c in children] == [0, 3600 + 30, 2 * 3600 + 30 + 60]


def test_the_old_max_duration_left_no_retry_after_a_step_used_its_hour(tmp_path) -> None:
    local = LocalArgo(one_task("load", "pass", OLD_STRATEGY), tmp_path, config_maps=config_maps())
    local.hang("load")
    run = local.submit("wf-1")
    assert run.status == "Failed" and run.nodes["load"].message == "Backoff would exceed max duration limit"


def test_the_workflow_deadline_cuts_the_last_attempt_and_ends_the_retries(tmp_path) -> None:
    doc = one_task("load", "pass")
    local = LocalArgo(doc, tmp_path, config_maps=config_maps())
    local.hang("load", times=10)
    run = local.submit("wf-1")
    node = run.nodes["load"]
    assert run.status == "Failed" and node.message.startswith("retry exceeded workflow deadline")
    assert node.children[-1].message == STEP_DEADLINE_EXCEEDED
    assert node.children[-1].finished_at == doc["spec"]["activeDeadlineSeconds"]
    assert node.attempts == 4  # 0-1h, 1h00:30-2h00:30, 2h01:30-3h01:30, 3h03:30 cut at 4h


def test_workflow_failures_reach_the_exit_handler_quoted_as_argo_sets_them(tmp_path) -> None:
    local = LocalArgo(one_task("load", "import sys; print('warehouse down'); sys.exit(5)"), tmp_path, config_maps=config_maps())
    run = local.submit("wf-1")
    assert run.status == "Failed" and run.nodes["load"].attempts == 5
    nodes = json.loads(json.loads(run.failures))  # decoded twice (operator.go:479)
    assert sorted(n["displayName"] for n in nodes) == ["load", *(f"load({i})" for i in range(5)), "wf-1"]
    assert all(n["podName"] for n in nodes)
    (failure,) = parse_failures(run.failures, "wf-1")
    assert failure == Failure("load", "main: Error (exit code 5): warehouse down")


def test_no_failed_node_is_the_quoted_null(tmp_path) -> None:
    run = LocalArgo(one_task("load", "pass"), tmp_path, config_maps=config_maps()).submit("wf-1")
    assert run.status == "Succeeded" and run.failures == '"null"'


def test_a_pod_whose_settings_config_map_is_missing_does_not_start(tmp_path) -> None:
    """Every step mounts the settings ConfigMap (envFrom, not optional): without it the
    kubelet cannot build the container's environment and the step never runs, so the
    model refuses the pod instead of running it on the image's defaults."""
    local = LocalArgo(one_task("load", "pass"), tmp_path, config_maps={})
    with pytest.raises(ValueError, match="configmap .* missing for load"):
        local.submit("wf-1")


def test_the_pods_read_their_settings_from_the_config_map(tmp_path) -> None:
    maps = config_maps()
    (name,) = maps
    maps[name] = {**maps[name], "AIRTIME_DQ_MIN_ROWS_RATIO": "0.35"}
    code = ("import os, sys; sys.exit(0 if os.environ.get('AIRTIME_DQ_MIN_ROWS_RATIO') == '0.35'"
            " and os.environ.get('AIRTIME_PROFILE') == 'gcp' else 5)")
    run = LocalArgo(one_task("load", code), tmp_path, config_maps=maps).submit("wf-1")
    assert run.status == "Succeeded", {n: (x.phase, x.message) for n, x in run.nodes.items()}
