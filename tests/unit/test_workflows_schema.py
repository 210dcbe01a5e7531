"""Every rendered Argo document validates strictly against the Argo v4.1.2 schemas vendored
in tests/data/schemas/argo (README there: upstream paths and checksums), so this runs in any
clone: the kind's definition selected, IntOrString/Quantity accepting numbers, and
`additionalProperties: false` injected so a misspelled field fails."""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from deploy.validate_crd import strict
from workflows.config import WorkflowConfig
from workflows.render import render

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "schemas" / "argo"
SCHEMA = SCHEMAS / "schema.json.gz"
PREFIX = "io.argoproj.workflow.v1alpha1."
INT_OR_STRING = ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", "io.k8s.apimachinery.pkg.api.resource.Quantity")


def read(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode()


@functools.cache
def _definitions() -> dict:
    definitions = copy.deepcopy(json.loads(read(SCHEMA))["definitions"])
    for name in INT_OR_STRING:
        # schema.json types these as string only; the API server takes both
        definitions[name] = {"type": ["integer", "number", "string"]}
    strict(definitions)
    return definitions


def validator(kind: str) -> jsonschema.Draft202012Validator:
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


def test_vendored_schemas_are_the_upstream_files_named_in_the_readme() -> None:
    table = dict(re.findall(r"\| `([\w.]+\.gz)` \| `[^`]+` \| `([0-9a-f]{64})` \|", (SCHEMAS / "README.md").read_text()))
    assert sorted(table) == sorted(p.name for p in SCHEMAS.glob("*.gz"))
    for name, digest in table.items():
        assert hashlib.sha256(gzip.decompress((SCHEMAS / name).read_bytes())).hexdigest() == digest, name


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
        ("WorkflowTemplate", ["spec", "templates", 1], "nodeSelecter"),
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


CRDS = {"WorkflowTemplate": "argoproj.io_workflowtemplates.yaml.gz", "CronWorkflow": "argoproj.io_cronworkflows.yaml.gz"}


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_rendered_document_is_valid_against_the_strict_crd_schema(kind: str) -> None:
    # the CRDs are what the API server itself checks: their openAPIV3Schema is Draft 4
    crd = yaml.safe_load(read(SCHEMAS / CRDS[kind]))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    strict(schema)
    (doc,) = [d for d in argo_documents() if d["kind"] == kind]
    assert [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(doc)] == []
    doc = copy.deepcopy(doc)
    doc["spec"]["bogus"] = 1
    assert list(jsonschema.Draft4Validator(schema).iter_errors(doc))
