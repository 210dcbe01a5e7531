"""Every rendered Argo document validates strictly against the Argo v4 schemas in
../shared/schemas/argo: the kind's definition selected, IntOrString/Quantity accepting
numbers, and `additionalProperties: false` injected so a misspelled field fails."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import pytest

from tests.conftest import SHARED, require_shared
from workflows.config import WorkflowConfig
from workflows.render import render

SCHEMA = SHARED / "schemas" / "argo" / "schema.json"
PREFIX = "io.argoproj.workflow.v1alpha1."
INT_OR_STRING = ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", "io.k8s.apimachinery.pkg.api.resource.Quantity")


def _strict(node: Any) -> None:
    if isinstance(node, dict):
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)


@functools.cache
def _definitions() -> dict:
    definitions = copy.deepcopy(json.loads(SCHEMA.read_text())["definitions"])
    for name in INT_OR_STRING:
        # schema.json types these as string only; the API server takes both
        definitions[name] = {"type": ["integer", "number", "string"]}
    _strict(definitions)
    return definitions


def validator(kind: str):
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/definitions/{PREFIX}{kind}",
        "definitions": _definitions(),
    }
    return jsonschema.Draft202012Validator(schema)


def errors(doc: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(doc["kind"]).iter_errors(doc)
    ]


@pytest.fixture(autouse=True)
def _schemas_present() -> None:
    require_shared(SCHEMA, "the Argo schemas")


def argo_documents() -> list[dict]:
    return [d for d in render(WorkflowConfig.example()) if d["apiVersion"].startswith("argoproj.io/")]


def test_renders_a_workflow_template_and_a_cron_workflow() -> None:
    assert sorted(d["kind"] for d in argo_documents()) == ["CronWorkflow", "WorkflowTemplate"]


@pytest.mark.parametrize("kind", ["WorkflowTemplate", "CronWorkflow"])
def test_rendered_document_is_valid_against_the_strict_argo_schema(kind: str) -> None:
    (doc,) = [d for d in argo_documents() if d["kind"] == kind]
    assert errors(doc) == []


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("WorkflowTemplate", ["spec"], "onExitt"),
        ("WorkflowTemplate", ["spec", "templates", 1], "retryStrategyy"),
        ("WorkflowTemplate", ["spec", "templates", 1, "container"], "imagePullPolice"),
        ("WorkflowTemplate", ["spec", "templates", 1, "memoize"], "max_age"),
        ("CronWorkflow", ["spec"], "schedule"),  # removed in Argo v4
        ("CronWorkflow", ["spec"], "timeZone"),
    ],
)
def test_unknown_field_fails_validation(kind: str, path: list, field: str) -> None:
    (doc,) = [copy.deepcopy(d) for d in argo_documents() if d["kind"] == kind]
    node = doc
    for key in path:
        node = node[key]
    node[field] = "x"
    assert any(field in e for e in errors(doc)), errors(doc)


def test_wrong_type_fails_validation() -> None:
    (doc,) = [copy.deepcopy(d) for d in argo_documents() if d["kind"] == "CronWorkflow"]
    doc["spec"]["schedules"] = "0 6 * * *"  # a string where Argo v4 wants a list
    assert errors(doc)


def test_missing_required_memoize_max_age_fails_validation() -> None:
    (doc,) = [copy.deepcopy(d) for d in argo_documents() if d["kind"] == "WorkflowTemplate"]
    memoized = [t for t in doc["spec"]["templates"] if "memoize" in t]
    del memoized[0]["memoize"]["maxAge"]
    assert any("maxAge" in e for e in errors(doc))


def test_memo_cache_config_map_is_a_plain_labelled_config_map() -> None:
    (cm,) = [d for d in render(WorkflowConfig.example()) if d["kind"] == "ConfigMap"]
    assert cm["apiVersion"] == "v1"
    assert set(cm) == {"apiVersion", "kind", "metadata"}  # Argo owns the data
    assert cm["metadata"]["labels"]["workflows.argoproj.io/configmap-type"] == "Cache"


CRDS = {"WorkflowTemplate": "argoproj.io_workflowtemplates.yaml", "CronWorkflow": "argoproj.io_cronworkflows.yaml"}


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_rendered_document_is_valid_against_the_strict_crd_schema(kind: str) -> None:
    # the CRDs are what the API server itself checks: their openAPIV3Schema is Draft 4
    jsonschema = pytest.importorskip("jsonschema")
    yaml = pytest.importorskip("yaml")
    crd = yaml.safe_load((SCHEMA.parent / CRDS[kind]).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    _strict(schema)
    (doc,) = [d for d in argo_documents() if d["kind"] == kind]
    assert [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(doc)] == []
    doc = copy.deepcopy(doc)
    doc["spec"]["bogus"] = 1
    assert list(jsonschema.Draft4Validator(schema).iter_errors(doc))
