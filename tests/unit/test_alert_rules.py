"""The chart's alerting rules (charts/airtime/files/alert-rules*.yaml), checked and unit-tested
by promtool, every alert tested both ways, labelled, and linked to a runbook that exists.

promtool comes with Debian's `prometheus` package (.ci/install-monitoring-tools, run by
`make test` in CI); elsewhere its tests skip with the reason."""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata

import pytest
import yaml

from tests.conftest import ROOT, require

RULE_FILES = (ROOT / "charts" / "airtime" / "files" / "alert-rules.yaml",
              ROOT / "charts" / "airtime" / "files" / "alert-rules-global.yaml")
TESTS = ROOT / "tests" / "monitoring" / "alert_rules_test.yaml"
RUNBOOKS = ROOT / "docs" / "operations.md"
SEVERITIES = {"critical", "page", "ticket"}


def promtool() -> str:
    found = shutil.which("promtool")
    require(found is not None, "promtool is not installed (.ci/install-monitoring-tools: Debian's prometheus)")
    return found


def alerts() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation but `-` and `_`
    dropped, each space a `-` (github/cmark-gfm's anchor rule, as html-pipeline's TocFilter)."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            anchor, n = github_anchor(match.group(1)), 1
            while anchor in found:  # a repeated heading gets -1, -2...
                anchor, n = f"{github_anchor(match.group(1))}-{n}", n + 1
            found.add(anchor)
    return found


def test_promtool_checks_the_rule_files() -> None:
    done = subprocess.run([promtool(), "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    done = subprocess.run([promtool(), "test", "rules", str(TESTS)], capture_output=True, text=True, cwd=TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_stays_silent() -> None:
    cases = [case for test in yaml.safe_load(TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    names = {rule["alert"] for rule in alerts()}
    fires = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert names - fires == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested silent"
    assert (fires | silent) - names == set(), "tests of alerts that do not exist"


def test_the_tests_read_the_chart_rule_files() -> None:
    listed = {(TESTS.parent / f).resolve() for f in yaml.safe_load(TESTS.read_text())["rule_files"]}
    assert listed == {p.resolve() for p in RULE_FILES}


def test_every_alert_has_a_severity_and_a_runbook_section_that_exists() -> None:
    sections = anchors(RUNBOOKS.read_text())
    for rule in alerts():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        link = rule["annotations"]["runbook_url"]
        page, _, anchor = link.partition("#")
        assert page == "docs/operations.md", (rule["alert"], link)
        assert anchor in sections, f"{rule['alert']}: no heading of docs/operations.md has the anchor #{anchor}"


def test_verification_mismatch_and_damaged_state_are_the_only_critical_alerts() -> None:
    critical = {rule["alert"] for rule in alerts() if rule["labels"]["severity"] == "critical"}
    assert critical == {"AirtimeVerificationMismatchOrDamagedState"}


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Verification mismatch or damaged state (exit 4 or 9)", "verification-mismatch-or-damaged-state-exit-4-or-9"),
    ("Served run older than 26 h", "served-run-older-than-26-h"),
    ("`airtime accept`: a delivery's fate", "airtime-accept-a-deliverys-fate"),
])
def test_anchors_follow_githubs_rule(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor
