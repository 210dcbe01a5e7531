"""One list of the pods' settings (workflows/pod_settings.py), derived from airtime/settings.py:
every field is shared through the settings ConfigMap or left out by name with a reason; every
step pod mounts that ConfigMap and overrides only what it must; what an operator sets reaches
the pods; the chart's generated copy is current. The chart side, with helm, is
tests/integration/test_chart_settings.py."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from airtime.settings import Settings
from deploy import chart_settings
from workflows import pod_settings
from workflows.config import WorkflowConfig
from workflows.render import render

SHARED = pod_settings.shared_fields()
# values for the fields whose type says too little (the chart's schema patterns)
SAMPLES = {"source": "gs://sample-source/deliveries", "artifact_bucket": "sample-artifacts",
           # at least retention_days (35 by default, 4 as sampled): a setting of its own checks it
           "warehouse_retention_days": "40"}


@pytest.fixture(autouse=True)
def _no_settings_from_this_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings() also reads the environment: an AIRTIME_* of the shell running the tests
    # would count as set by the operator
    for name in [n for n in os.environ if n.startswith(pod_settings.ENV_PREFIX)]:
        monkeypatch.delenv(name)


def sample_value(field: str) -> str:
    """A value for the field that is valid and differs from its default, as an env var holds it."""
    if field in SAMPLES:
        return SAMPLES[field]
    spec = chart_settings._pydantic_schema(field)
    default = Settings.model_fields[field].default
    if "enum" in spec:
        return next(str(v) for v in reversed(spec["enum"]) if v != default)
    if spec.get("type") == "integer":
        low = spec.get("minimum", spec.get("exclusiveMinimum", 0))
        return str(next(v for v in range(int(low) + 3, int(low) + 10) if v != default))
    if spec.get("type") == "number":
        return "0.37" if spec.get("maximum", 2) >= 0.37 and spec.get("minimum", 0) <= 0.37 else "12.5"
    if spec.get("format") == "date":
        return "2001-02-03"
    if spec.get("format") == "time":
        return "06:45"
    return f"/tmp/sample-{pod_settings.camel(field)}" if spec.get("format") == "path" else f"sample-{field}"


def pod_env(container: dict, config_maps: dict[str, dict[str, str]]) -> dict[str, str]:
    """A container's environment as the kubelet builds it: each envFrom source in order, then
    env, which wins (the Container API's envFrom, argo-workflows v4.1.2 docs/fields.md:6621)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= config_maps[source["configMapRef"]["name"]]
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
    return env


def parse(env: dict[str, str]) -> Settings:
    """The settings a step parses from that environment (and nothing else of this process)."""
    prefix = pod_settings.ENV_PREFIX
    return Settings(**{k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)})


def test_every_settings_field_is_shared_or_left_out_by_name_with_a_reason() -> None:
    assert set(SHARED) | set(pod_settings.NOT_SHARED) == set(Settings.model_fields)
    assert not set(SHARED) & set(pod_settings.NOT_SHARED)
    assert all(reason.strip() for reason in pod_settings.NOT_SHARED.values())
    # the gate's thresholds and DuckDB's memory reach the pods, whatever fields are added
    assert {f for f in Settings.model_fields if f.startswith("dq_")} <= set(SHARED)
    assert "duckdb_memory_limit" in SHARED


def test_secrets_are_never_shared() -> None:
    for field in ("webhook_url", "tokens", "query_token", "query_token_file"):
        assert field in pod_settings.NOT_SHARED
    settings = Settings(webhook_url="https://hooks.example.com/T/B/secret", tokens="t0ken",
                        artifact_bucket="b", source="gs://s/d")
    data = WorkflowConfig.from_settings(settings).settings
    assert not {"AIRTIME_WEBHOOK_URL", "AIRTIME_TOKENS"} & set(data)
    assert "secret" not in str(data) and "t0ken" not in str(data)


@pytest.mark.parametrize("field", SHARED)
def test_each_shared_setting_survives_the_config_map(field: str) -> None:
    wanted = getattr(Settings(**{field: sample_value(field)}), field)
    assert wanted != Settings.model_fields[field].default
    data = pod_settings.config_map_data({field: wanted})
    assert getattr(parse(data), field) == wanted


def rendered(config: WorkflowConfig) -> tuple[dict[str, dict[str, str]], dict[str, dict]]:
    docs = render(config)
    config_maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    (template,) = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    containers = {t["name"]: t["container"] for t in template["spec"]["templates"] if "container" in t}
    return config_maps, containers


def test_every_pod_mounts_the_settings_config_map_and_overrides_only_the_profile() -> None:
    config = WorkflowConfig.example()
    config_maps, containers = rendered(config)
    assert list(config_maps) == ["airtime-daily-settings"]
    assert set(containers) == {"catchup", "ingest", "preprocess", "gate", "load", "verify", "notify"}
    for name, container in containers.items():
        assert container["envFrom"] == [{"configMapRef": {"name": "airtime-daily-settings"}}], name
        own = {v["name"] for v in container["env"] if v["name"].startswith(pod_settings.ENV_PREFIX)}
        assert own == set(pod_settings.STEP_OVERRIDES) | ({"AIRTIME_WEBHOOK_URL"} if name == "notify" else set())


def test_a_gate_threshold_the_operator_sets_reaches_every_step_pod() -> None:
    settings = Settings(artifact_bucket="b", source="gs://s/d", dq_min_rows_ratio=0.35,
                        duckdb_memory_limit="2GB", dq_earliest_date=dt.date(2000, 1, 1))
    config_maps, containers = rendered(WorkflowConfig.from_settings(settings))
    for name, container in containers.items():
        seen = parse(pod_env(container, config_maps))
        assert (seen.dq_min_rows_ratio, seen.duckdb_memory_limit, seen.dq_earliest_date) == (
            0.35, "2GB", dt.date(2000, 1, 1)), name
        assert seen.profile == "gcp" and seen.log_format == "json" and seen.artifact_bucket == "b"


def test_a_setting_left_alone_is_the_image_default_not_a_copy() -> None:
    data = WorkflowConfig.from_settings(Settings(artifact_bucket="b", source="gs://s/d")).settings
    assert data == {"AIRTIME_ARTIFACT_BUCKET": "b", "AIRTIME_LOG_FORMAT": "json", "AIRTIME_SOURCE": "gs://s/d"}


def test_chart_copy_of_the_list_and_of_its_schema_is_current() -> None:
    assert chart_settings.stale() == [], "run: python -m deploy.chart_settings"
