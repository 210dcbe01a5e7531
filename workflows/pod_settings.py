"""The pods' settings: the one list of what reaches the step pods and the server.

Every field of `airtime.settings.Settings` is a setting the pods share through the settings
ConfigMap, mounted with `envFrom` by every step container of the WorkflowTemplate and by the
server's, unless `NOT_SHARED` below names it with the reason. The list is derived from the
model's fields, never written out: a field added to settings.py reaches the pods, the chart's
values (`settings.<camelCase>`, typed and bounded in values.schema.json) and the standalone
render without an edit here (deploy/chart_settings.py generates the chart's copy; a test
fails when it is stale).

A pod's own `env` wins over its `envFrom` ("Values defined by an Env with a duplicate key will
take precedence": the Container API, argo-workflows v4.1.2 docs/fields.md:6621); that is
how a step overrides one (`STEP_OVERRIDES`).
"""

from __future__ import annotations

from collections.abc import Mapping

from airtime.settings import Settings

ENV_PREFIX = str(Settings.model_config.get("env_prefix", "AIRTIME_"))

# Fields kept out of the ConfigMap, and why. Anything not named here is shared.
NOT_SHARED: dict[str, str] = {
    # secrets: never in a ConfigMap or in rendered YAML
    "webhook_url": "secret: notify reads it from the Secret workflow.webhookSecret (secretKeyRef)",
    "tokens": "secret: the server reads its bearer tokens from a mounted Secret (tokens.*)",
    "query_token": "a client's secret (`airtime query --server`), no pod's",
    "query_token_file": "a client's file (`airtime query --server`), no pod's",
    # per pod: each pod gets its own, from what starts it
    "home": "per pod: /tmp/airtime, under the pod's only writable path (the chart sets it)",
    "tokens_file": "per pod: where the server mounts the tokens Secret (tokens.mountPath, tokens.key)",
    "server_drain_seconds": "per pod: server.shutdown.drainSeconds, the server's grace period derives from it",
    "crash_at": "resilience drills (airtime/faults.py): one process of a test, never a deployment",
    "crash_once": "resilience drills, with crash_at",
    # the renderer's inputs (`airtime workflows render|apply`): they shape the Argo resources
    # themselves, the chart sets them from workflow.*, and no pod reads them
    "workflow_name": "shapes the Argo resources (chart: workflow.name)",
    "workflow_image": "shapes the Argo resources (chart: image.*)",
    "workflow_namespace": "shapes the Argo resources (chart: the release namespace)",
    "workflow_service_account": "shapes the Argo resources (chart: workflow.serviceAccount.name)",
    "workflow_schedule": "shapes the Argo resources (chart: workflow.schedule)",
    "workflow_webhook_secret": "shapes the Argo resources (chart: workflow.webhookSecret)",
    "workflow_ui_url": "shapes the Argo resources (chart: workflow.uiUrl)",
}

# Shared settings whose chart value is not `settings.<camelCase>`: the chart derives more
# from them (the container ports, the probes), so they sit with the server's values.
CHART_VALUES: dict[str, str] = {
    "server_port": "server.grpcPort",
    "metrics_port": "server.metricsPort",
    "server_backend": "server.backend",
    "reload_interval_seconds": "server.reloadIntervalSeconds",
}

# What every step container sets over the ConfigMap (its own `env`, which wins). The steps
# share their state only through the buckets and BigQuery: on the local profile each pod
# would write to its own emptyDir and lose it, whatever the release's settings.profile says
# (the server may run `local` in a throwaway cluster; the pipeline cannot).
STEP_OVERRIDES: dict[str, str] = {f"{ENV_PREFIX}PROFILE": "gcp"}

# What a standalone render (`airtime workflows render`) puts in its ConfigMap unless the
# settings say otherwise: containers log JSON for Cloud Logging, as the chart's default does.
POD_DEFAULTS: dict[str, str] = {f"{ENV_PREFIX}LOG_FORMAT": "json"}


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


def shared_fields() -> list[str]:
    """Every field of Settings the pods take from the ConfigMap, in the model's order."""
    unknown = set(NOT_SHARED) - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"NOT_SHARED names fields Settings does not have: {sorted(unknown)}")
    return [name for name in Settings.model_fields if name not in NOT_SHARED]


def chart_value(field: str) -> str:
    """The chart value that sets a shared field, as a dotted path."""
    return CHART_VALUES.get(field, "settings." + camel(field))


def env_value(value: object) -> str:
    """A setting's value as an environment variable holds it (pydantic parses it back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # dates in ISO form, paths as written


def config_map_data(values: Mapping[str, object]) -> dict[str, str]:
    """The ConfigMap's data for settings given as field -> value: `POD_DEFAULTS`, then each
    shared field given (None and "" left out, so the Settings default applies)."""
    shared = set(shared_fields())
    data = dict(POD_DEFAULTS)
    for field, value in values.items():
        if field in shared and value is not None and value != "":
            data[env_name(field)] = env_value(value)
    return dict(sorted(data.items()))


def explicit_values(settings: Settings) -> dict[str, object]:
    """The fields the settings were given (environment or arguments), not their defaults:
    what an operator chose is what the pods get; the rest is the image's own default."""
    return {field: getattr(settings, field) for field in settings.model_fields_set}

