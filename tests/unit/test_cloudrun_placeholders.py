"""The Cloud Run manifests' placeholders are filled in by whoever their comments say: Cloud
Build for service.yaml (its render step), the operator for gateway.yaml (docs/serverless.md),
whose ESPv2 image only exists after the Endpoints configuration is deployed."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLOUDRUN = ROOT / "deploy" / "cloudrun"
PLACEHOLDERS = ("PROJECT_ID", "ESPV2_IMAGE")


def build_scripts() -> str:
    return "\n".join(s.get("script", "") for s in yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["steps"])


def placeholders(text: str) -> set[str]:
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return {p for p in PLACEHOLDERS if re.search(rf"\b{p}\b", body)}


def test_cloud_build_fills_in_every_placeholder_of_the_service_it_ships() -> None:
    scripts = build_scripts()
    assert "deploy/cloudrun/service.yaml" in scripts
    for placeholder in placeholders((CLOUDRUN / "service.yaml").read_text()):
        assert f"s/{placeholder}/" in scripts, placeholder


def test_the_gateway_says_it_is_deployed_by_hand_and_cloud_build_leaves_it_alone() -> None:
    text = (CLOUDRUN / "gateway.yaml").read_text()
    assert placeholders(text) == {"PROJECT_ID", "ESPV2_IMAGE"}
    assert "deploy/cloudrun/gateway.yaml" not in build_scripts()
    assert "Deployed by hand, not by Cloud Build" in text
    assert "replaced at deploy time (cloudbuild.yaml)" not in text
