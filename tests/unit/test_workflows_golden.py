"""The rendered Argo resources match the checked-in golden YAML, and read right.

Regenerate after an intended change with `make golden`
(`python -m tests.unit.test_workflows_golden`) and review the diff.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from steps.dag import STEPS as DAG
from workflows.config import WorkflowConfig
from workflows.daily import RETRY_EXPRESSION, SPOT_NODE_SELECTOR
from workflows.render import dump, file_name, render, write

STEPS = tuple(step.name for step in DAG)
GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "workflows"


def documents() -> dict[str, dict]:
    return {d["kind"]: d for d in render(WorkflowConfig.example())}


def templates() -> dict[str, dict]:
    return {t["name"]: t for t in documents()["WorkflowTemplate"]["spec"]["templates"]}


def test_golden_folder_holds_exactly_the_rendered_files() -> None:
    expected = sorted(file_name(d) for d in render(WorkflowConfig.example()))
    assert sorted(p.name for p in GOLDEN_DIR.glob("*.yaml")) == expected


@pytest.mark.parametrize("doc", render(WorkflowConfig.example()), ids=file_name)
def test_rendered_yaml_matches_golden_file(doc: dict) -> None:
    golden = GOLDEN_DIR / file_name(doc)
    assert dump(doc) == golden.read_text(), f"stale {golden}: run `make golden`"


def test_cron_runs_daily_in_sao_paulo_time_without_overlap() -> None:
    spec = documents()["CronWorkflow"]["spec"]
    assert spec["schedules"] == ["0 6 * * *"]
    assert "schedule" not in spec  # removed in Argo v4
    assert spec["timezone"] == "America/Sao_Paulo"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["workflowSpec"] == {"workflowTemplateRef": {"name": "airtime-daily"}}


def test_dag_runs_catchup_then_the_steps_in_order() -> None:
    (dag,) = [t["dag"] for t in templates().values() if t["name"] == "daily"]
    depends = {task["name"]: task.get("depends") for task in dag["tasks"]}
    assert depends == {
        "catchup": None, "ingest": "catchup", "preprocess": "ingest", "gate": "preprocess", "load": "gate",
        "verify": "load",
    }


def test_run_date_comes_from_the_scheduled_time_through_catchup() -> None:
    (dag,) = [t["dag"] for t in templates().values() if t["name"] == "daily"]
    tasks = {task["name"]: task for task in dag["tasks"]}
    catchup_args = {p["name"]: p["value"] for p in tasks["catchup"]["arguments"]["parameters"]}
    assert catchup_args["scheduled_time"] == "{{workflow.scheduledTime}}"
    for step in STEPS:
        args = {p["name"]: p["value"] for p in tasks[step]["arguments"]["parameters"]}
        assert args["run_date"] == "{{tasks.catchup.outputs.parameters.run_date}}"


@pytest.mark.parametrize("step", STEPS)
def test_step_runs_the_project_image_and_emits_its_manifest_uri(step: str) -> None:
    template = templates()[step]
    container = template["container"]
    assert container["image"] == WorkflowConfig.example().image
    assert container["command"] + container["args"] == [
        "python", "-m", f"steps.{step}",
        "--date", "{{inputs.parameters.run_date}}", "--emit", "/tmp/outputs/manifest-uri",
    ]
    (output,) = template["outputs"]["parameters"]
    assert output == {"name": "manifest-uri", "valueFrom": {"path": "/tmp/outputs/manifest-uri"}}
    # its settings: the ConfigMap it mounts, under its own env (tests/unit/test_pod_settings.py)
    (config_map,) = [d for d in render(WorkflowConfig.example()) if d["kind"] == "ConfigMap"]
    assert container["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AIRTIME_PROFILE"] == "gcp"
    assert config_map["data"]["AIRTIME_ARTIFACT_BUCKET"] == "example-airtime-artifacts"


def test_nothing_memoizes_and_only_argo_kinds_and_the_settings_are_rendered() -> None:
    # resuming is the steps' own manifests plus argo retry / resubmit --memoized
    # (docs/operations-argo.md): no memoize, no cache ConfigMap, no ConfigMap RBAC; the one
    # ConfigMap is the settings the pods mount
    assert sorted(documents()) == ["ConfigMap", "CronWorkflow", "WorkflowTemplate"]
    assert documents()["ConfigMap"]["metadata"]["name"] == "airtime-daily-settings"
    assert "workflows.argoproj.io/configmap-type" not in documents()["ConfigMap"]["metadata"].get("labels", {})
    assert [name for name, t in templates().items() if "memoize" in t] == []


def test_steps_take_only_the_run_date() -> None:
    for step in STEPS:
        assert [p["name"] for p in templates()[step]["inputs"]["parameters"]] == ["run_date"]
    assert [p["name"] for p in templates()["catchup"]["outputs"]["parameters"]] == ["run_date"]


def test_retried_templates_run_on_spot_and_the_alert_does_not() -> None:
    on_spot = {name for name, t in templates().items() if t.get("nodeSelector") == SPOT_NODE_SELECTOR}
    retried = {name for name, t in templates().items() if "retryStrategy" in t}
    assert on_spot == retried == {"catchup", *STEPS}
    assert "nodeSelector" not in templates()["notify"]


def test_spot_can_be_turned_off() -> None:
    config = dataclasses.replace(WorkflowConfig.example(), spot=False)
    (template,) = [d for d in render(config) if d["kind"] == "WorkflowTemplate"]
    assert not [t["name"] for t in template["spec"]["templates"] if "nodeSelector" in t]


@pytest.mark.parametrize("step", ("catchup", *STEPS))
def test_step_retries_with_exponential_backoff(step: str) -> None:
    retry = templates()[step]["retryStrategy"]
    assert retry["limit"] >= 1 and retry["retryPolicy"] == "Always"
    assert int(retry["backoff"]["factor"]) >= 2 and retry["backoff"]["duration"]
    assert retry["expression"] == RETRY_EXPRESSION


def should_retry(expression: str, exit_code: str) -> bool:
    """Evaluates the retry expression the way Argo's expr does, for the forms it uses."""
    python = expression.replace("!(", "not (").replace("lastRetry.exitCode", repr(exit_code))
    return bool(eval(python, {"__builtins__": {}}))  # noqa: S307 - our own constant


@pytest.mark.parametrize(("exit_code", "retried"), [
    ("1", True), ("5", True), ("137", True), ("143", True), ("-1", True),
    ("2", False), ("3", False), ("4", False), ("6", False), ("8", False),  # 8: upstream step not run
])
def test_retry_expression_skips_input_and_verification_failures(exit_code: str, retried: bool) -> None:
    assert should_retry(RETRY_EXPRESSION, exit_code) is retried


def test_workflow_has_exit_handler_deadlines_gc_ttl_and_identity() -> None:
    spec = documents()["WorkflowTemplate"]["spec"]
    assert spec["onExit"] == "exit-handler"
    (notify,) = templates()["exit-handler"]["dag"]["tasks"]
    assert notify["template"] == "notify" and notify["when"] == "{{workflow.status}} != Succeeded"
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["podGC"]["strategy"] and spec["ttlStrategy"]["secondsAfterFailure"] > 0
    assert spec["serviceAccountName"] == "airtime-pipeline"
    assert spec["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("name", ("catchup", "notify", *STEPS))
def test_container_is_non_root_with_requests_equal_to_limits(name: str) -> None:
    container = templates()[name]["container"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert {"cpu", "memory", "ephemeral-storage"} <= set(container["resources"]["requests"])


def test_webhook_url_comes_from_a_secret_not_the_yaml() -> None:
    env = {e["name"]: e for e in templates()["notify"]["container"]["env"]}
    assert "value" not in env["AIRTIME_WEBHOOK_URL"]
    assert env["AIRTIME_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"]["name"] == "airtime-webhook"


def test_golden_files_are_plain_yaml_documents() -> None:
    for path in GOLDEN_DIR.glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict)


def regenerate() -> None:
    """Rewrite the golden files from `WorkflowConfig.example()` (`make golden`)."""
    for stale in GOLDEN_DIR.glob("*.yaml"):
        stale.unlink()
    for path in write(WorkflowConfig.example(), GOLDEN_DIR):
        print(path)


if __name__ == "__main__":
    regenerate()


def test_each_pods_tmp_is_as_large_as_its_ephemeral_storage() -> None:
    # one workflow-wide 1Gi emptyDir used to cap every step's scratch, catchup's 3Gi included
    assert "volumes" not in documents()["WorkflowTemplate"]["spec"]
    for name in ("catchup", *STEPS, "notify"):
        template = templates()[name]
        (volume,) = template["volumes"]
        assert [m["name"] for m in template["container"]["volumeMounts"]] == [volume["name"]]
        storage = template["container"]["resources"]["limits"]["ephemeral-storage"]
        assert volume["emptyDir"]["sizeLimit"] == storage, name
