"""The Cloud Monitoring JSON in deploy/monitoring/ parsed strictly into the API's own messages
(unknown fields, bad enum names and bad durations refused), with the required fields the parser
does not check checked here, every PromQL query through promtool, and every metric a query or an
SLO reads one the server exports (deploy/monitoring/METRICS.md) or one Google writes.

deploy/gcp/monitoring.py applies these files; its tests run in the Pulumi venv (tests/gcp_setup).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from google.cloud.monitoring_dashboard_v1.types import Dashboard
from google.cloud.monitoring_v3.types import AlertPolicy, Service, ServiceLevelObjective, UptimeCheckConfig
from google.protobuf import json_format

from grpc_server.metrics import LATENCY_BUCKETS

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
POLICIES = sorted((MONITORING / "policies").glob("*.json"))
OPERATIONS = ROOT / "docs" / "operations.md"

# Series Google writes, not airtime, each also listed in METRICS.md (named here too, so that what
# is allowed beyond airtime's own is read in one place):
# - `up`: GMP's managed collectors write it per scraped target, as prometheus.googleapis.com/up/gauge
#   (GoogleCloudPlatform/prometheus-engine, e2e/collector_test.go, waits for it on a PodMonitoring's
#   target);
# - Cloud Monitoring metrics by their PromQL names: the first `/` becomes `:`, the other `.` and `/`
#   become `_` (https://cloud.google.com/monitoring/promql/promql-mapping), here BigQuery's
#   bigquery.googleapis.com/query/scanned_bytes_billed (its metric list, cloud.google.com/monitoring/
#   api/metrics_gcp; the name is METRICS.md's, not checked against that list here).
GOOGLE_SERIES = {"up", "bigquery_googleapis_com:query_scanned_bytes_billed"}
# GMP stores a Prometheus metric NAME as prometheus.googleapis.com/NAME/KIND on the prometheus_target
# resource (https://cloud.google.com/stackdriver/docs/solutions/gke/kube-state-metrics, "Metric format")
GMP_TYPE = re.compile(r'metric\.type="prometheus\.googleapis\.com/([a-zA-Z_:][a-zA-Z0-9_:]*)/(gauge|counter|histogram)"')


def _parse(text: str, cls):
    return json_format.Parse(text, cls.pb(cls()))


def _slos() -> dict:
    return json.loads((MONITORING / "slos.json").read_text())


def _dashboard() -> dict:
    return json.loads((MONITORING / "dashboard.json").read_text())


def _exported_metrics() -> set[str]:
    """Every metric name METRICS.md lists (its first backticked word on a `- ` line: the server's
    metrics, the recording rules' and Google's), with the _bucket/_sum/_count series of its
    histograms."""
    names: set[str] = set()
    for line in (MONITORING / "METRICS.md").read_text().splitlines():
        match = re.match(r"- `([a-zA-Z_:][a-zA-Z0-9_:]*)` \|([^|]*)", line)
        if match:
            names.add(match.group(1))
            if match.group(2).strip().startswith("histogram"):
                names.update(match.group(1) + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


# --- strict parsing -------------------------------------------------------------------------

@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_alert_policy_parses_strictly(path):
    _parse(path.read_text(), AlertPolicy)


def test_slos_and_their_service_parse_strictly():
    slos = _slos()
    assert set(slos) == {"serviceId", "service", "objectives"}
    _parse(json.dumps(slos["service"]), Service)
    for objective in slos["objectives"].values():
        _parse(json.dumps(objective), ServiceLevelObjective)


def test_uptime_check_parses_strictly():
    _parse((MONITORING / "uptime.json").read_text(), UptimeCheckConfig)


def test_dashboard_parses_strictly():
    _parse((MONITORING / "dashboard.json").read_text(), Dashboard)


def _misspell(message: dict, field: str, wrong: str) -> str:
    """The JSON text with the first occurrence of field (as a key) renamed."""
    text = json.dumps(message)
    assert f'"{field}":' in text, field
    return text.replace(f'"{field}":', f'"{wrong}":', 1)


@pytest.mark.parametrize("field, wrong", [
    ("xyChart", "xyChrat"), ("prometheusQuery", "promethusQuery"), ("yPos", "ypos"), ("mosaicLayout", "mosaic_layot"),
])
def test_a_misspelt_dashboard_field_fails_to_parse(field, wrong):
    _parse(json.dumps(_dashboard()), Dashboard)  # the same text, spelt right, parses
    with pytest.raises(json_format.ParseError, match=wrong):
        _parse(_misspell(_dashboard(), field, wrong), Dashboard)


@pytest.mark.parametrize("field, wrong", [
    ("goal", "gaol"), ("distributionCut", "distributionCutt"), ("windowPeriod", "windowPeriode"),
])
def test_a_misspelt_slo_field_fails_to_parse(field, wrong):
    objectives = _slos()["objectives"]
    [objective] = [o for o in objectives.values() if f'"{field}":' in json.dumps(o)][:1]
    with pytest.raises(json_format.ParseError, match=wrong):
        _parse(_misspell(objective, field, wrong), ServiceLevelObjective)


@pytest.mark.parametrize("field, wrong", [
    ("conditionMatchedLog", "conditionMatchLog"), ("notificationRateLimit", "notificationRatelimit"),
])
def test_a_misspelt_policy_field_fails_to_parse(field, wrong):
    policy = json.loads((MONITORING / "policies" / "run-failed.json").read_text())
    with pytest.raises(json_format.ParseError, match=wrong):
        _parse(_misspell(policy, field, wrong), AlertPolicy)


def test_a_misspelt_uptime_check_field_fails_to_parse():
    check = json.loads((MONITORING / "uptime.json").read_text())
    with pytest.raises(json_format.ParseError, match="httpChek"):
        _parse(_misspell(check, "httpCheck", "httpChek"), UptimeCheckConfig)


def test_a_bad_enum_or_duration_fails_to_parse():
    policy = json.loads((MONITORING / "policies" / "run-failed.json").read_text())
    with pytest.raises(json_format.ParseError):
        _parse(json.dumps({**policy, "combiner": "EITHER"}), AlertPolicy)
    with pytest.raises(json_format.ParseError):
        _parse(json.dumps({**policy, "alertStrategy": {"autoClose": "1 day"}}), AlertPolicy)


# --- what the parser does not check ------------------------------------------------------------

def _seconds(duration: str) -> int:
    assert re.fullmatch(r"\d+s", duration), duration
    return int(duration[:-1])


@pytest.mark.parametrize("slo_id", list(_slos()["objectives"]))
def test_slo_has_goal_period_and_one_sli(slo_id):
    objective = _slos()["objectives"][slo_id]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,99}", slo_id)
    assert objective.get("displayName")
    assert 0 < objective["goal"] <= 0.999  # the API's bounds
    assert ("rollingPeriod" in objective) != ("calendarPeriod" in objective)
    if "rollingPeriod" in objective:  # "an integer multiple of 1 day no larger than 30 days"
        days, rest = divmod(_seconds(objective["rollingPeriod"]), 86400)
        assert rest == 0 and 1 <= days <= 30
    else:
        assert objective["calendarPeriod"] in {"DAY", "WEEK", "FORTNIGHT", "MONTH"}
    sli = objective["serviceLevelIndicator"]
    assert len(sli) == 1 and next(iter(sli)) in {"requestBased", "windowsBased"}
    if "requestBased" in sli:
        based = sli["requestBased"]
        assert len(based) == 1
        if "goodTotalRatio" in based:
            ratio = based["goodTotalRatio"]
            assert len(ratio) == 2 and "totalServiceFilter" in ratio
        else:
            cut = based["distributionCut"]
            assert cut["distributionFilter"]
            # a threshold between buckets would be interpolated: make it one the histogram has
            assert cut["range"]["max"] in LATENCY_BUCKETS
    else:
        windows = sli["windowsBased"]
        period = _seconds(windows["windowPeriod"])  # "an integer fraction of a day and at least 60s"
        assert period >= 60 and 86400 % period == 0
        assert len(windows) == 2


def test_slo_filters_read_metrics_the_server_exports():
    exported = _exported_metrics()
    read = set()
    for objective in _slos()["objectives"].values():
        found = GMP_TYPE.findall(json.dumps(objective).replace('\\"', '"'))
        assert found, objective["displayName"]
        read.update(name for name, _kind in found)
    assert read - exported == set()


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_policy_has_conditions_documentation_and_a_runbook(path):
    policy = json.loads(path.read_text())
    assert policy["displayName"].startswith("airtime: ")
    assert policy["combiner"] in {"OR", "AND"}
    assert policy["severity"] in {"CRITICAL", "ERROR", "WARNING"}
    assert policy["conditions"]
    for condition in policy["conditions"]:
        kinds = [key for key in condition if key.startswith("condition")]
        assert len(kinds) == 1 and condition["displayName"], condition
        if kinds == ["conditionMatchedLog"]:  # the API refuses a log-match policy without it
            assert _seconds(policy["alertStrategy"]["notificationRateLimit"]["period"]) >= 300
    documentation = policy["documentation"]
    assert documentation["mimeType"] == "text/markdown"
    assert re.search(r"\(docs/operations\.md#[a-z0-9-]+\)", documentation["content"])


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_runbook_link_resolves_to_a_section_of_operations_md():
    anchors = _anchors(OPERATIONS.read_text())
    for path in POLICIES:
        for anchor in re.findall(r"docs/operations\.md#([a-z0-9-]+)", path.read_text()):
            assert anchor in anchors, f"{path.name}: docs/operations.md#{anchor}"


def test_uptime_check_has_host_path_and_a_period_the_api_accepts():
    check = json.loads((MONITORING / "uptime.json").read_text())
    assert check["monitoredResource"]["type"] == "uptime_url"
    assert check["monitoredResource"]["labels"]["host"] == "${UPTIME_HOST}"  # filled by deploy/gcp/monitoring.py
    assert check["httpCheck"]["path"].startswith("/")
    assert _seconds(check["period"]) in {60, 300, 600, 900}
    assert _seconds(check["timeout"]) <= 60


def test_budget_uses_only_billing_budget_fields():
    # google-cloud-billing-budgets is not installed: its fields, checked by hand
    budget = json.loads((MONITORING / "budget.json").read_text())
    assert set(budget) <= {"displayName", "thresholdRules"}
    assert budget["thresholdRules"]
    for rule in budget["thresholdRules"]:
        assert set(rule) <= {"thresholdPercent", "spendBasis"}
        assert 0 < rule["thresholdPercent"] <= 10
        assert rule.get("spendBasis", "CURRENT_SPEND") in {"CURRENT_SPEND", "FORECASTED_SPEND"}


def _overlap(a: dict, b: dict) -> bool:
    return (a.get("xPos", 0) < b.get("xPos", 0) + b["width"] and b.get("xPos", 0) < a.get("xPos", 0) + a["width"]
            and a.get("yPos", 0) < b.get("yPos", 0) + b["height"] and b.get("yPos", 0) < a.get("yPos", 0) + a["height"])


def test_dashboard_tiles_fit_the_grid_without_overlapping():
    layout = _dashboard()["mosaicLayout"]
    tiles = layout["tiles"]
    for tile in tiles:
        assert tile.get("xPos", 0) + tile["width"] <= layout["columns"], tile["widget"]["title"]
        assert tile["widget"]["title"]
    for i, a in enumerate(tiles):
        for b in tiles[i + 1:]:
            assert not _overlap(a, b), (a["widget"]["title"], b["widget"]["title"])


# --- PromQL ----------------------------------------------------------------------------------

def _queries() -> list[tuple[str, str]]:
    """(where, query) for every PromQL query of the dashboard and the policies."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "prometheusQuery":
                    found.append((where, value))
                elif key == "conditionPrometheusQueryLanguage":
                    found.append((where, value["query"]))
                else:
                    walk(value, node.get("title", where) if isinstance(node.get("title"), str) else where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(_dashboard(), "dashboard.json")
    for path in POLICIES:
        walk(json.loads(path.read_text()), path.name)
    return found


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan"}


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query reads: identifiers that are not functions, keywords,
    label names (inside {} or a by/without/on/ignoring list), durations or strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name not in _KEYWORDS:
            names.add(name)
    return names


def test_metric_names_sees_through_functions_matchers_and_groupings():
    assert metric_names('histogram_quantile(0.99, sum by (method, le) (rate(a_bucket{x="y"}[5m])))') == {"a_bucket"}
    assert metric_names("(time() - max(b{namespace=\"airtime\"})) / 3600 > bool 1") == {"b"}
    assert metric_names("absent(up{namespace=\"airtime\"} == 1)") == {"up"}
    assert metric_names("sum(increase(bigquery_googleapis_com:query_scanned_bytes_billed[1d]))") == \
        {"bigquery_googleapis_com:query_scanned_bytes_billed"}


def test_there_are_queries_to_check():
    wheres = {where for where, _query in _queries()}
    assert len(_queries()) >= 20
    assert "metrics-absent.json" in wheres


def test_every_query_reads_metrics_that_exist():
    allowed = _exported_metrics() | GOOGLE_SERIES
    for where, query in _queries():
        unknown = metric_names(query) - allowed
        assert not unknown, f"{where}: {query} reads {sorted(unknown)}, not in METRICS.md"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian: prometheus)")
def test_every_query_is_valid_promql(tmp_path):
    # promtool checks PromQL where a rule file holds it: each query becomes a recording rule
    rules = {"groups": [{"name": "airtime-cloud-monitoring-queries", "rules": [
        {"record": f"airtime:query_{i}", "expr": query} for i, (_where, query) in enumerate(_queries())]}]}
    path = tmp_path / "queries.rules.json"  # JSON is YAML: promtool reads it
    path.write_text(json.dumps(rules))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian: prometheus)")
def test_promtool_refuses_a_broken_query(tmp_path):
    path = tmp_path / "broken.rules.json"
    path.write_text(json.dumps({"groups": [{"name": "g", "rules": [
        {"record": "airtime:broken", "expr": "sum by (method (rate(airtime_grpc_requests_total[5m]))"}]}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


# --- the same SLIs as the Prometheus burn-rate alerts ------------------------------------------

RULES = ROOT / "charts" / "airtime" / "files" / "alert-rules.yaml"


def _recorded(record: str) -> str:
    import yaml

    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("record") == record:
                return rule["expr"]
    raise AssertionError(f"{RULES.name} records no {record}")


@pytest.mark.skipif(not RULES.exists(), reason="charts/airtime/files/alert-rules.yaml not there yet")
def test_slos_count_as_bad_what_the_burn_rate_alerts_count():
    # Cloud Monitoring's SLOs cannot add two metrics, so gRPC and HTTP are an SLO each; the rules
    # add them. What counts as failed, and the latency threshold, must be the same in both.
    objectives = _slos()["objectives"]
    errors = _recorded("airtime:slo_request_errors:rate5m")
    [codes] = re.findall(r'code=~"([^"]+)"', errors)
    bad_grpc = objectives["grpc-availability"]["serviceLevelIndicator"]["requestBased"]["goodTotalRatio"]["badServiceFilter"]
    [one_of] = re.findall(r"metric\.labels\.code=one_of\(([^)]*)\)", bad_grpc)
    assert set(re.findall(r'"([A-Z_]+)"', one_of)) == set(codes.split("|"))
    [statuses] = re.findall(r'status=~"([^"]+)"', errors)
    bad_http = objectives["http-availability"]["serviceLevelIndicator"]["requestBased"]["goodTotalRatio"]["badServiceFilter"]
    assert f'monitoring.regex.full_match("{statuses}")' in bad_http
    thresholds = {float(le) for le in re.findall(r'le="([^"]+)"', _recorded("airtime:slo_latency_slow:rate5m"))}
    for slo_id in ("grpc-latency", "http-latency"):
        cut = objectives[slo_id]["serviceLevelIndicator"]["requestBased"]["distributionCut"]
        assert thresholds == {cut["range"]["max"]}, slo_id
