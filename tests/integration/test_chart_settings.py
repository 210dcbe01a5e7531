"""Every setting a pod reads can be set through the chart: chart value -> the settings
ConfigMap -> each step pod's environment (envFrom, under its own env) and the server's.

The settings are enumerated from airtime/settings.py through workflows/pod_settings.py (the
fields left out are named there, each with its reason), so a field added to Settings that the
chart cannot carry fails here. `helm template` runs once with a values file setting every one
to a value that differs from its default; `--set` of a gate threshold has a test of its own."""

from __future__ import annotations

import pytest
import yaml

from deploy import chart_settings
from tests.integration.test_deploy_validation import CHART, helm, one, template  # noqa: F401 - helm: fixture
from tests.unit.test_pod_settings import parse, pod_env, sample_value
from workflows import pod_settings

SHARED = pod_settings.shared_fields()
CONFIG_MAP = "airtime-settings"
STEP_TEMPLATES = {"catchup", "ingest", "preprocess", "gate", "load", "verify", "notify"}


def _docs(helm_, *args: str) -> list[dict]:  # noqa: ANN001 - the helm fixture
    return [d for d in yaml.safe_load_all(template(helm_, *args)) if d]


def _step_containers(docs: list[dict]) -> dict[str, dict]:
    spec = one(docs, "WorkflowTemplate")["spec"]
    return {t["name"]: t["container"] for t in spec["templates"] if "container" in t}


def _typed(field: str, value: str) -> object:
    """The value as a values file holds it: a number for a numeric setting."""
    kind = chart_settings._pydantic_schema(field).get("type")
    return int(value) if kind == "integer" else float(value) if kind == "number" else value


@pytest.fixture(scope="module")
def everything_set(helm, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:  # noqa: ANN001, F811
    values: dict = {}
    for field in SHARED:
        group, key = pod_settings.chart_value(field).split(".")
        values.setdefault(group, {})[key] = _typed(field, sample_value(field))
    values["settings"]["profile"] = "local"  # the one the steps override: set, so the override shows
    path = tmp_path_factory.mktemp("values") / "everything.yaml"
    path.write_text(yaml.safe_dump(values))
    return _docs(helm, "--values", str(path))


def test_every_shared_setting_set_through_the_chart_reaches_every_step_pod(everything_set: list[dict]) -> None:
    data = one(everything_set, "ConfigMap", CONFIG_MAP)["data"]
    containers = _step_containers(everything_set)
    assert set(containers) == STEP_TEMPLATES
    config_maps = {CONFIG_MAP: data}
    missing = {}
    for name, container in containers.items():
        assert container["envFrom"] == [{"configMapRef": {"name": CONFIG_MAP}}], name
        seen = parse(pod_env(container, config_maps))
        for field in SHARED:
            env = pod_settings.env_name(field)
            wanted = pod_settings.STEP_OVERRIDES.get(env, sample_value(field))
            if str(getattr(seen, field)) != str(getattr(parse({env: wanted}), field)):
                missing.setdefault(name, []).append(f"{pod_settings.chart_value(field)} -> {env}")
    assert missing == {}, "settable in Settings, not through the chart to the pod"


def test_the_server_mounts_the_same_config_map(everything_set: list[dict]) -> None:
    (server,) = [c for c in one(everything_set, "Deployment")["spec"]["template"]["spec"]["containers"]
                 if c["name"] == "server"]
    assert server["envFrom"] == [{"configMapRef": {"name": CONFIG_MAP}}]
    data = one(everything_set, "ConfigMap", CONFIG_MAP)["data"]
    assert parse(data).dq_min_rows_ratio == float(sample_value("dq_min_rows_ratio"))


def test_helm_set_of_a_gate_threshold_and_the_duckdb_memory_reaches_the_step_pods(helm) -> None:  # noqa: ANN001, F811
    docs = _docs(helm, "--set", "settings.dqMinRowsRatio=0.35", "--set", "settings.duckdbMemoryLimit=2GB")
    config_maps = {CONFIG_MAP: one(docs, "ConfigMap", CONFIG_MAP)["data"]}
    for name, container in _step_containers(docs).items():
        seen = parse(pod_env(container, config_maps))
        assert (seen.dq_min_rows_ratio, seen.duckdb_memory_limit, seen.profile) == (0.35, "2GB", "gcp"), name


@pytest.mark.parametrize(("value", "complaint"), [
    ("settings.dqMinRowsRatio=1.5", "out of bounds for AIRTIME_DQ_MIN_ROWS_RATIO"),  # a string past the schema
    ("settings.dqMinRowsRatio=half", "settings/dqMinRowsRatio"),
    ("settings.dqHorizonDays=-1", "settings/dqHorizonDays"),
    ("settings.dqMinRowRatio=0.5", "dqMinRowRatio"),  # misspelled
])
def test_a_setting_the_pods_would_refuse_fails_the_render(helm, value: str, complaint: str) -> None:  # noqa: ANN001, F811
    result = helm("template", "airtime", str(CHART), "--set", value)
    assert result.returncode != 0
    assert complaint in result.stderr
