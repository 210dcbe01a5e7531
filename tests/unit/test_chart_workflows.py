"""The chart's copy of the Argo resources (charts/airtime/files/workflows/) is generated from
workflows/ by `python -m deploy.chart_workflows`; hand edits and stale copies fail here."""

from __future__ import annotations

from pathlib import Path

import yaml

from deploy import chart_workflows


def test_checked_in_chart_workflows_match_a_fresh_render() -> None:
    assert chart_workflows.stale() == [], "run: python -m deploy.chart_workflows"


def test_drift_check_reports_an_edited_file(tmp_path: Path) -> None:
    chart_workflows.write(tmp_path)
    assert chart_workflows.stale(tmp_path) == []
    cron = tmp_path / "cronworkflow.yaml"
    cron.write_text(cron.read_text().replace("concurrencyPolicy: Forbid", "concurrencyPolicy: Allow"))
    (tmp_path / "leftover.yaml").write_text("kind: ConfigMap\n")
    assert chart_workflows.stale(tmp_path) == ["cronworkflow.yaml", "leftover.yaml"]


def test_chart_files_hold_only_placeholders_where_release_values_go() -> None:
    files = chart_workflows.files()
    assert sorted(files) == ["cronworkflow.yaml", "workflowtemplate.yaml"]
    template = yaml.safe_load(files["workflowtemplate.yaml"])
    images = {t["container"]["image"] for t in template["spec"]["templates"] if "container" in t}
    assert images == {"__AIRTIME_IMAGE__"}
    assert template["spec"]["serviceAccountName"] == "__AIRTIME_SERVICE_ACCOUNT__"
    # the example project of the golden files never leaks into the chart
    assert "example" not in files["workflowtemplate.yaml"] + files["cronworkflow.yaml"]
