"""deploy/gcp/monitoring.py under Pulumi's mocks: every JSON in deploy/monitoring/ becomes its
resource, the webhook channel's URL comes from Secret Manager, the budget and the uptime check
only when configured.

Runs in the Pulumi venv, not the project's:
    /work/venv-gcp/bin/python -m pytest tests/gcp_setup --confcutdir=tests/gcp_setup
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pulumi
import pytest

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
PROJECT = "airtime-dev-1234"
SECRET = f"projects/{PROJECT}/secrets/airtime-alerts-webhook"
WEBHOOK_URL = "https://alerts.example.com/hook?token=s3cret"
PROJECT_NUMBER = "123456789012"
CHANNEL = f"projects/{PROJECT}/notificationChannels/42"


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        outputs = dict(args.inputs)
        if args.typ == "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
            outputs["uptimeCheckId"] = "airtime-api-check-0a1b2c"
        if args.typ == "gcp:monitoring/notificationChannel:NotificationChannel":
            outputs["name"] = CHANNEL
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append(args)
        if args.token == "gcp:secretmanager/getSecretVersion:getSecretVersion":
            return {**args.args, "secretData": WEBHOOK_URL, "name": f"{args.args['secret']}/versions/3"}
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": args.args["projectId"], "number": PROJECT_NUMBER}
        raise AssertionError(f"unexpected invoke {args.token}")


@pytest.fixture
def mocks():
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="airtime", stack="dev", preview=False)
    yield mocks


def _monitoring():
    # imported after set_mocks, as the Pulumi program would be
    from deploy.gcp import monitoring
    return monitoring


def _of_type(mocks: Mocks, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
    return [resource for resource in mocks.resources if resource.typ == "gcp:" + typ]


def _full(mocks, **overrides):
    kwargs = {"notification_webhook_secret_version": SECRET, "billing_account": "0A1B2C-3D4E5F-6A7B8C",
              "budget_amount": 150.5, "uptime_host": "api.airtime.example.com"}
    kwargs.update(overrides)
    return _monitoring().create_monitoring(PROJECT, **kwargs)


def _secret_value(value):
    """A secret input as the engine receives it: wrapped with Pulumi's secret signature."""
    from pulumi.runtime import rpc
    assert isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig, value  # noqa: SLF001
    return value["value"]


def _settled(outputs):
    """Wait for every resource the program registered (the mocks see them as they resolve)."""
    return pulumi.Output.all(*outputs)


@pulumi.runtime.test
def test_every_policy_slo_and_the_dashboard_become_resources(mocks):
    created = _full(mocks)

    def check(_):
        policies = {r.name for r in _of_type(mocks, "monitoring/alertPolicy:AlertPolicy")}
        assert policies == {f"airtime-policy-{p.stem}" for p in (MONITORING / "policies").glob("*.json")}
        slos = json.loads((MONITORING / "slos.json").read_text())
        assert {r.inputs["sloId"] for r in _of_type(mocks, "monitoring/slo:Slo")} == set(slos["objectives"])
        [service] = _of_type(mocks, "monitoring/customService:CustomService")
        assert service.inputs["serviceId"] == slos["serviceId"]
        [dashboard] = _of_type(mocks, "monitoring/dashboard:Dashboard")
        assert json.loads(dashboard.inputs["dashboardJson"]) == json.loads((MONITORING / "dashboard.json").read_text())
        assert len(_of_type(mocks, "monitoring/uptimeCheckConfig:UptimeCheckConfig")) == 1
        assert all(r.inputs["project"] == PROJECT for r in mocks.resources if r.typ != "gcp:billing/budget:Budget")

    return _settled([created["dashboard"].id, *(p.id for p in created["policies"].values()),
                     *(s.id for s in created["slos"].values())]).apply(check)


@pulumi.runtime.test
def test_slo_arguments_follow_the_json(mocks):
    created = _full(mocks)
    objectives = json.loads((MONITORING / "slos.json").read_text())["objectives"]

    def check(_):
        by_id = {r.inputs["sloId"]: r.inputs for r in _of_type(mocks, "monitoring/slo:Slo")}
        for slo_id, objective in objectives.items():
            inputs = by_id[slo_id]
            assert inputs["goal"] == objective["goal"]
            assert inputs["rollingPeriodDays"] * 86400 == int(objective["rollingPeriod"].removesuffix("s"))
            assert inputs["service"] == "airtime"
        assert by_id["freshness"]["windowsBasedSli"]["windowPeriod"] == "86400s"
        cut = by_id["grpc-latency"]["requestBasedSli"]["distributionCut"]
        assert cut["range"]["max"] == objectives["grpc-latency"]["serviceLevelIndicator"]["requestBased"]["distributionCut"]["range"]["max"]
        assert "airtime_grpc_request_seconds/histogram" in cut["distributionFilter"]

    return _settled([s.id for s in created["slos"].values()]).apply(check)


@pulumi.runtime.test
def test_the_webhook_channel_reads_its_url_from_secret_manager(mocks):
    created = _full(mocks)

    def check(_):
        [invoke] = [c for c in mocks.calls if c.token == "gcp:secretmanager/getSecretVersion:getSecretVersion"]
        assert invoke.args["secret"] == SECRET
        assert invoke.args["version"] == "latest"
        [channel] = _of_type(mocks, "monitoring/notificationChannel:NotificationChannel")
        assert channel.inputs["type"] == "webhook_tokenauth"
        assert _secret_value(channel.inputs["labels"]) == {"url": WEBHOOK_URL}
        for policy in _of_type(mocks, "monitoring/alertPolicy:AlertPolicy"):
            assert policy.inputs["notificationChannels"] == [CHANNEL]

    channel = created["channels"][0]
    return _settled([channel.id, *(p.id for p in created["policies"].values())]).apply(check)


@pulumi.runtime.test
def test_the_channel_url_stays_a_secret_in_the_state(mocks):
    channel = _full(mocks)["channels"][0]

    async def check():
        assert await channel.labels.is_secret()

    return asyncio.ensure_future(check())


@pulumi.runtime.test
def test_a_pinned_secret_version_is_read_as_pinned(mocks):
    created = _full(mocks, notification_webhook_secret_version=f"{SECRET}/versions/7")

    def check(_):
        [invoke] = [c for c in mocks.calls if c.token == "gcp:secretmanager/getSecretVersion:getSecretVersion"]
        assert (invoke.args["secret"], invoke.args["version"]) == (SECRET, "7")

    return created["channels"][0].id.apply(check)


def test_a_malformed_secret_name_is_refused():
    monitoring = _monitoring()
    with pytest.raises(ValueError, match="projects/PROJECT/secrets/SECRET"):
        monitoring._secret_ref("airtime-alerts-webhook")  # noqa: SLF001


@pulumi.runtime.test
def test_no_secret_no_channel_and_policies_notify_no_one(mocks):
    created = _full(mocks, notification_webhook_secret_version=None)

    def check(_):
        assert not _of_type(mocks, "monitoring/notificationChannel:NotificationChannel")
        assert not [c for c in mocks.calls if c.token.startswith("gcp:secretmanager")]
        for policy in _of_type(mocks, "monitoring/alertPolicy:AlertPolicy"):
            assert not policy.inputs.get("notificationChannels")

    return _settled([p.id for p in created["policies"].values()]).apply(check)


@pulumi.runtime.test
def test_the_budget_covers_this_project_and_notifies_the_channel(mocks):
    created = _full(mocks)
    thresholds = json.loads((MONITORING / "budget.json").read_text())["thresholdRules"]

    def check(_):
        [budget] = _of_type(mocks, "billing/budget:Budget")
        inputs = budget.inputs
        assert inputs["billingAccount"] == "0A1B2C-3D4E5F-6A7B8C"
        assert inputs["budgetFilter"]["projects"] == [f"projects/{PROJECT_NUMBER}"]
        assert inputs["amount"]["specifiedAmount"] == {"units": "150", "nanos": 500000000}
        assert [rule["thresholdPercent"] for rule in inputs["thresholdRules"]] == \
            [rule["thresholdPercent"] for rule in thresholds]
        assert inputs["allUpdatesRule"]["monitoringNotificationChannels"] == [CHANNEL]

    return created["budget"].id.apply(check)


@pytest.mark.parametrize("billing_account, amount", [(None, 150.0), ("0A1B2C-3D4E5F-6A7B8C", None)])
def test_no_budget_without_a_billing_account_and_an_amount(mocks, billing_account, amount):
    @pulumi.runtime.test
    def run():
        created = _full(mocks, billing_account=billing_account, budget_amount=amount)
        assert created["budget"] is None

        def check(_):
            assert not _of_type(mocks, "billing/budget:Budget")
            assert not [c for c in mocks.calls if c.token == "gcp:organizations/getProject:getProject"]

        return created["dashboard"].id.apply(check)

    run()


@pulumi.runtime.test
def test_the_uptime_check_and_its_policy_read_the_host_and_the_check_id(mocks):
    created = _full(mocks)

    def check(_):
        [uptime] = _of_type(mocks, "monitoring/uptimeCheckConfig:UptimeCheckConfig")
        assert uptime.inputs["monitoredResource"]["labels"] == {"host": "api.airtime.example.com"}
        assert uptime.inputs["httpCheck"]["path"] == "/v1/freshness"
        [policy] = [r for r in _of_type(mocks, "monitoring/alertPolicy:AlertPolicy") if r.name == "airtime-policy-api-uptime"]
        condition = policy.inputs["conditions"][0]["conditionThreshold"]
        assert 'metric.labels.check_id="airtime-api-check-0a1b2c"' in condition["filter"]
        assert "${" not in json.dumps(uptime.inputs)

    return _settled([created["uptime_check"].id, created["policies"]["api-uptime"].id]).apply(check)


@pulumi.runtime.test
def test_without_a_public_host_no_uptime_check_and_no_policy_reading_one(mocks):
    created = _full(mocks, uptime_host=None)
    assert created["uptime_check"] is None
    assert "api-uptime" not in created["policies"]

    def check(_):
        assert not _of_type(mocks, "monitoring/uptimeCheckConfig:UptimeCheckConfig")

    return created["dashboard"].id.apply(check)


@pulumi.runtime.test
def test_log_based_policy_keeps_its_label_names_and_cloud_monitoring_variables(mocks):
    created = _full(mocks)

    def check(_):
        [policy] = [r for r in _of_type(mocks, "monitoring/alertPolicy:AlertPolicy") if r.name == "airtime-policy-run-failed"]
        log = policy.inputs["conditions"][0]["conditionMatchedLog"]
        assert set(log["labelExtractors"]) == {"run_date", "step", "workflow"}
        assert policy.inputs["alertStrategy"]["notificationRateLimit"]["period"] == "300s"
        assert "${log.extracted_label.step}" in policy.inputs["documentation"]["content"]

    return created["policies"]["run-failed"].id.apply(check)


def test_provider_args_convert_field_names_but_not_map_keys():
    monitoring = _monitoring()
    converted = monitoring.to_provider_args(
        {"conditionPrometheusQueryLanguage": {"evaluationInterval": "60s", "labels": {"severityLevel": "x"}},
         "userLabels": {"camelKey": "v"}})
    assert converted == {"condition_prometheus_query_language": {"evaluation_interval": "60s",
                                                                 "labels": {"severityLevel": "x"}},
                         "user_labels": {"camelKey": "v"}}


@pytest.mark.parametrize("broken, message", [
    ({"goal": 0.99, "serviceLevelIndicator": {"requestBased": {}}}, "exactly one of rollingPeriod"),
    ({"rollingPeriod": "86400s", "serviceLevelIndicator": {"requestBased": {}}}, "no goal"),
    ({"goal": 0.99, "rollingPeriod": "90000s", "serviceLevelIndicator": {"requestBased": {}}}, "whole days"),
    ({"goal": 0.99, "rollingPeriod": "86400s", "serviceLevelIndicator": {}}, "exactly one of"),
])
def test_an_incomplete_slo_is_refused_before_any_resource(broken, message):
    with pytest.raises(ValueError, match=message):
        _monitoring().slo_args("broken", broken)


def _unknown_arguments(args: dict, cls: type, where: str = "") -> list[str]:
    """Keys of args (nested dicts and lists of them too) that cls, a pulumi_gcp *Args class, does
    not take. The SDK refuses an unknown keyword of a resource, but a nested dict's keys reach the
    provider unchecked: a field name converted wrongly would only fail at `pulumi preview`."""
    import inspect

    module = inspect.getmodule(cls)
    parameters = inspect.signature(cls.__init__).parameters
    unknown = []
    for key, value in args.items():
        if key not in parameters:
            unknown.append(f"{where}{key}")
            continue
        annotation = str(parameters[key].annotation)
        nested = re.search(r"'(\w+Args)'", annotation)
        if nested is None or "Mapping[" in annotation:
            continue
        nested_cls = getattr(module, nested.group(1))
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                unknown += _unknown_arguments(item, nested_cls, f"{where}{key}.")
    return unknown


@pytest.mark.parametrize("path", sorted((MONITORING / "policies").glob("*.json")), ids=lambda p: p.name)
def test_policy_json_converts_to_arguments_the_provider_takes(path):
    import pulumi_gcp as gcp

    args = _monitoring().to_provider_args(json.loads(path.read_text()))
    assert _unknown_arguments(args, gcp.monitoring.AlertPolicyArgs) == []


def test_slo_and_uptime_json_convert_to_arguments_the_provider_takes():
    import pulumi_gcp as gcp

    monitoring = _monitoring()
    for slo_id, objective in json.loads((MONITORING / "slos.json").read_text())["objectives"].items():
        args = {k: v for k, v in monitoring.slo_args(slo_id, objective).items() if v is not None}
        assert _unknown_arguments({**args, "service": "s"}, gcp.monitoring.SloArgs) == [], slo_id
    check = monitoring.to_provider_args(json.loads((MONITORING / "uptime.json").read_text()))
    assert _unknown_arguments(check, gcp.monitoring.UptimeCheckConfigArgs) == []


def test_the_argument_check_catches_a_wrong_name():
    import pulumi_gcp as gcp

    args = {"display_name": "x", "conditions": [{"display_name": "c", "condition_threshold": {"filtre": "f"}}]}
    assert _unknown_arguments(args, gcp.monitoring.AlertPolicyArgs) == ["conditions.condition_threshold.filtre"]


def test_every_json_in_deploy_monitoring_is_read_by_the_module():
    # a new file there that create_monitoring does not read would silently never be applied
    found = {str(p.relative_to(MONITORING)) for p in MONITORING.rglob("*.json")}
    read = {"slos.json", "dashboard.json", "uptime.json", "budget.json"} | \
        {f"policies/{p.name}" for p in (MONITORING / "policies").glob("*.json")}
    assert found == read
