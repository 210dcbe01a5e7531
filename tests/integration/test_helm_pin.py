"""The pinned helm (.ci/install-tools; the one Cloud Build's deploy step gives Skaffold,
tests/unit/test_helm_pin.py) accepts every flag skaffold.yaml hands it, and is the binary the
chart tests run."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.integration.test_deploy_validation import HELM, ROOT, tool
from tests.unit.test_helm_pin import pinned_version


def skaffold_flags() -> dict[str, set[str]]:
    flags: dict[str, set[str]] = {}
    for doc in yaml.safe_load_all((ROOT / "skaffold.yaml").read_text()):
        for deploy in [doc.get("deploy", {})] + [p.get("deploy", {}) for p in doc.get("profiles", [])]:
            for verb, args in deploy.get("helm", {}).get("flags", {}).items():
                flags.setdefault(verb, set()).update(a.split("=")[0] for a in args if a.startswith("--"))
    return flags


def test_the_chart_tests_run_the_pinned_helm() -> None:
    out = subprocess.run([str(tool(HELM)), "version", "--short"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith(pinned_version())


@pytest.mark.parametrize("verb", ["install", "upgrade"])
def test_the_pinned_helm_knows_every_flag_skaffold_passes_it(verb) -> None:
    flags = skaffold_flags()[verb]
    assert "--rollback-on-failure" in flags  # Helm 4's --atomic
    usage = subprocess.run([str(tool(HELM)), verb, "--help"], capture_output=True, text=True, check=True).stdout
    known = {word.rstrip(",") for word in usage.split() if word.startswith("--")}
    assert flags <= known, flags - known
