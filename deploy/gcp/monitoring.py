"""Cloud Monitoring for airtime, applied from the JSON in deploy/monitoring/.

The JSON files are the API's own messages (`google.monitoring.v3` AlertPolicy, ServiceLevelObjective,
UptimeCheckConfig; `google.monitoring.dashboard.v1` Dashboard), parsed strictly into those protos by
tests/unit/test_monitoring_json.py in the project's environment. This module only turns them into
pulumi_gcp resources: the dashboard JSON goes through as it is, the others become the provider's
arguments (the API's camelCase fields in snake_case, which is how pulumi_gcp names them).

Self-contained on purpose: the Pulumi venv (protobuf < 7) cannot import the project (protobuf >= 7),
so nothing here imports from it; the JSON is read by path.

Placeholders `${UPTIME_HOST}` and `${UPTIME_CHECK_ID}` in the JSON are filled here; any other `${...}`
(e.g. `${log.extracted_label.step}` in a policy's documentation) is Cloud Monitoring's own and is left
alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_gcp as gcp

MONITORING_DIR = Path(__file__).resolve().parent.parent / "monitoring"

# map-valued fields: their keys are data (label names), never field names to convert
_MAP_FIELDS = frozenset({"labels", "userLabels", "labelExtractors"})
_PLACEHOLDER = re.compile(r"\$\{(UPTIME_HOST|UPTIME_CHECK_ID)\}")
_SECRET_VERSION = re.compile(r"^(projects/[^/]+/secrets/[^/]+)(?:/versions/([^/]+))?$")
_DAY_SECONDS = 86400


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def to_provider_args(message: Any) -> Any:
    """An API message as JSON (camelCase) -> pulumi_gcp's argument names (snake_case)."""
    if isinstance(message, dict):
        return {_snake(key): value if key in _MAP_FIELDS else to_provider_args(value)
                for key, value in message.items()}
    if isinstance(message, list):
        return [to_provider_args(item) for item in message]
    return message


def _fill(message: Any, values: dict[str, pulumi.Input[str]]) -> Any:
    """Replace our placeholders in every string of message; strings that hold one become Outputs."""
    if isinstance(message, dict):
        return {key: _fill(value, values) for key, value in message.items()}
    if isinstance(message, list):
        return [_fill(item, values) for item in message]
    if isinstance(message, str) and _PLACEHOLDER.search(message):
        names = sorted(set(_PLACEHOLDER.findall(message)))
        missing = [name for name in names if name not in values]
        if missing:
            raise ValueError(f"no value for ${{{missing[0]}}} in {message!r}")
        return pulumi.Output.all(*(values[name] for name in names)).apply(
            lambda resolved, text=message, names=names: _PLACEHOLDER.sub(
                lambda match: str(dict(zip(names, resolved, strict=True))[match.group(1)]), text))
    return message


def _placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def _read(path: Path) -> tuple[str, dict]:
    text = path.read_text()
    return text, json.loads(text)


def slo_args(slo_id: str, objective: dict) -> dict:
    """A ServiceLevelObjective's JSON -> gcp.monitoring.Slo's arguments (service left out)."""
    for field in ("goal", "serviceLevelIndicator"):
        if field not in objective:
            raise ValueError(f"slos.json: objective {slo_id} has no {field}")
    if ("rollingPeriod" in objective) == ("calendarPeriod" in objective):
        raise ValueError(f"slos.json: objective {slo_id} needs exactly one of rollingPeriod, calendarPeriod")
    sli = objective["serviceLevelIndicator"]
    kinds = {"basicSli": "basic_sli", "requestBased": "request_based_sli", "windowsBased": "windows_based_sli"}
    if len(sli) != 1 or next(iter(sli)) not in kinds:
        raise ValueError(f"slos.json: objective {slo_id} needs exactly one of {sorted(kinds)}")
    kind = next(iter(sli))
    args: dict[str, Any] = {
        "slo_id": slo_id,
        "display_name": objective.get("displayName"),
        "goal": objective["goal"],
        kinds[kind]: to_provider_args(sli[kind]),
        "user_labels": objective.get("userLabels"),
    }
    if "rollingPeriod" in objective:
        seconds = int(objective["rollingPeriod"].removesuffix("s"))
        if seconds % _DAY_SECONDS:
            raise ValueError(f"slos.json: objective {slo_id}: rollingPeriod is not whole days")
        args["rolling_period_days"] = seconds // _DAY_SECONDS
    else:
        args["calendar_period"] = objective["calendarPeriod"]
    return args


def _money(amount: float) -> dict:
    """An amount in the billing account's currency as google.type.Money's units and nanos."""
    units = int(amount)
    return {"units": str(units), "nanos": round((amount - units) * 1e9)}


def _secret_ref(name: str) -> tuple[str, str]:
    match = _SECRET_VERSION.match(name)
    if match is None:
        raise ValueError(f"notification_webhook_secret_version {name!r} is not "
                         "projects/PROJECT/secrets/SECRET[/versions/VERSION]")
    return match.group(1), match.group(2) or "latest"


def _webhook_channel(project: str, secret_version: pulumi.Input[str],
                     opts: pulumi.ResourceOptions) -> gcp.monitoring.NotificationChannel:
    ref = pulumi.Output.from_input(secret_version).apply(_secret_ref)
    secret = gcp.secretmanager.get_secret_version_output(
        secret=ref.apply(lambda pair: pair[0]), version=ref.apply(lambda pair: pair[1]),
        opts=pulumi.InvokeOptions(parent=opts.parent, provider=opts.provider))
    # the URL is a credential: kept secret in the state, never in stack config
    url = pulumi.Output.secret(secret.secret_data)
    return gcp.monitoring.NotificationChannel(
        "airtime-alerts-webhook", project=project, type="webhook_tokenauth",
        display_name="airtime alerts (webhook)",
        description="Cloud Monitoring's webhook JSON to the URL in Secret Manager",
        labels={"url": url}, opts=opts)


def create_monitoring(project: str, *, notification_webhook_secret_version: pulumi.Input[str] | None,
                      billing_account: str | None, budget_amount: float | None,
                      uptime_host: str | None = None,
                      opts: pulumi.ResourceOptions | None = None) -> dict:
    """Create airtime's SLOs, alert policies, dashboard, notification channel, uptime check and
    budget in project. Returns the resources by kind.

    notification_webhook_secret_version: Secret Manager secret (or version) whose data is the URL
    the webhook channel posts to (projects/P/secrets/S[/versions/V], latest when no version); None
    creates no channel and the policies notify no one.
    billing_account, budget_amount: a monthly budget on this project, only when both are set.
    uptime_host: the API's public host name (the Gateway's); None when the API is not exposed:
    no uptime check and no policy that reads one.
    """
    opts = opts or pulumi.ResourceOptions()
    created: dict[str, Any] = {"channels": [], "slos": {}, "policies": {}, "uptime_check": None, "budget": None}

    if notification_webhook_secret_version is not None:
        created["channels"].append(_webhook_channel(project, notification_webhook_secret_version, opts))
    channel_ids = [channel.name for channel in created["channels"]]  # projects/P/notificationChannels/ID

    _, slos = _read(MONITORING_DIR / "slos.json")
    service = gcp.monitoring.CustomService(
        "airtime-service", project=project, service_id=slos["serviceId"],
        display_name=slos["service"].get("displayName"), user_labels=slos["service"].get("userLabels"),
        opts=opts)
    created["service"] = service
    for slo_id, objective in slos["objectives"].items():
        created["slos"][slo_id] = gcp.monitoring.Slo(
            f"airtime-slo-{slo_id}", project=project, service=service.service_id,
            **slo_args(slo_id, objective), opts=opts)

    values: dict[str, pulumi.Input[str]] = {}
    if uptime_host is not None:
        _, check = _read(MONITORING_DIR / "uptime.json")
        values["UPTIME_HOST"] = uptime_host
        created["uptime_check"] = gcp.monitoring.UptimeCheckConfig(
            "airtime-uptime-freshness", project=project, **to_provider_args(_fill(check, values)), opts=opts)
        values["UPTIME_CHECK_ID"] = created["uptime_check"].uptime_check_id

    for path in sorted((MONITORING_DIR / "policies").glob("*.json")):
        text, policy = _read(path)
        if not _placeholders(text) <= values.keys():
            continue  # reads an uptime check that was not created
        args = to_provider_args(_fill(policy, values))
        args["notification_channels"] = channel_ids
        created["policies"][path.stem] = gcp.monitoring.AlertPolicy(
            f"airtime-policy-{path.stem}", project=project, **args, opts=opts)

    dashboard_json, _ = _read(MONITORING_DIR / "dashboard.json")
    created["dashboard"] = gcp.monitoring.Dashboard(
        "airtime-dashboard", project=project, dashboard_json=dashboard_json, opts=opts)

    if billing_account and budget_amount:
        _, budget = _read(MONITORING_DIR / "budget.json")
        number = gcp.organizations.get_project_output(
            project_id=project, opts=pulumi.InvokeOptions(parent=opts.parent, provider=opts.provider)).number
        created["budget"] = gcp.billing.Budget(
            "airtime-budget", billing_account=billing_account, display_name=budget["displayName"],
            budget_filter={"projects": [number.apply(lambda n: f"projects/{n}")], "calendar_period": "MONTH"},
            amount={"specified_amount": _money(budget_amount)},
            threshold_rules=to_provider_args(budget["thresholdRules"]),
            all_updates_rule={"monitoring_notification_channels": channel_ids},
            opts=opts)
    return created
