"""The chart's Managed Prometheus objects (templates/rules.yaml, templates/podmonitoring.yaml):
valid against the upstream CRDs made strict (tests/data/schemas/gmp), and the rules they carry
are exactly the files promtool tests (tests/unit/test_alert_rules.py)."""

from __future__ import annotations

import yaml

from deploy import validate_crd
from tests.conftest import ROOT
from tests.integration.test_deploy_validation import CHART, helm, template  # noqa: F401 - the helm fixture
from tests.unit.test_alert_rules import RULE_FILES

GMP = ROOT / "tests" / "data" / "schemas" / "gmp"
CRDS = validate_crd.schemas(sorted(GMP.glob("*.yaml.gz")))


def gmp_docs(rendered: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(rendered) if d and d["apiVersion"].startswith("monitoring.googleapis.com/")]


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs}


def test_rules_global_rules_and_pod_monitoring_are_valid_against_the_strict_crds(helm) -> None:  # noqa: F811
    docs = by_kind(gmp_docs(template(helm)))
    assert set(docs) == {"Rules", "GlobalRules", "PodMonitoring"}
    for kind, doc in docs.items():
        assert validate_crd.errors(doc, CRDS) == [], kind
    assert docs["Rules"]["metadata"]["namespace"] == "airtime"
    assert "namespace" not in docs["GlobalRules"]["metadata"]  # cluster-scoped


def test_the_rendered_groups_are_the_files_promtool_tests(helm) -> None:  # noqa: F811
    docs = by_kind(gmp_docs(template(helm)))
    rules, cost = (yaml.safe_load(path.read_text()) for path in RULE_FILES)
    assert docs["Rules"]["spec"] == rules
    assert docs["GlobalRules"]["spec"] == cost


def test_a_misspelt_rule_field_is_refused(helm) -> None:  # noqa: F811
    rules = by_kind(gmp_docs(template(helm)))["Rules"]
    rules["spec"]["groups"][0]["rules"][0]["anotations"] = rules["spec"]["groups"][0]["rules"][0].pop("annotations")
    found = validate_crd.errors(rules, CRDS)
    assert found and "anotations" in found[0]


def test_runbook_links_become_absolute_with_a_base_url(helm) -> None:  # noqa: F811
    docs = gmp_docs(template(helm, "--set", "monitoring.runbookBaseUrl=https://github.com/ORG/airtime/blob/main/"))
    links = [rule["annotations"]["runbook_url"] for doc in docs if doc["kind"].endswith("Rules")
             for group in doc["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
    assert links and all(link.startswith("https://github.com/ORG/airtime/blob/main/docs/operations.md#")
                         for link in links)


def test_the_dev_profile_renders_no_managed_prometheus_object(helm) -> None:  # noqa: F811
    assert gmp_docs(template(helm, "-f", str(CHART / "values-dev.yaml"))) == []
