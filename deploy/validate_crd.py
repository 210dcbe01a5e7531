"""Validate manifests of custom kinds strictly against the CRDs that define them.

    python -m deploy.validate_crd MANIFEST.yaml --crd tests/data/schemas/knative/serving.knative.dev_services.yaml.gz

`kubernetes-validate` knows the built-in kinds only (a Knative Service or a Gateway gets a
warning, not a verdict), so the kinds the project ships beyond them (Cloud Run's Knative
Service, the Gateway API's Gateway and HTTPRoute) are checked here against the upstream CRDs
vendored in tests/data/schemas/ (their READMEs name tag, path and checksum). A CRD's
`openAPIV3Schema` is what the API server checks; it is made strict as the API server's
field validation is (`kubectl --validate=strict`): `additionalProperties: false` on every
object schema with `properties` and no `x-kubernetes-preserve-unknown-fields`, so a
misspelled field fails instead of being dropped. The schemas are OpenAPI v3 (JSON Schema
Draft 4 with extensions; `x-kubernetes-*` keywords are ignored, so int-or-string fields take
either). Exit 1 naming document, path and message for every error.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml


def strict(node: Any) -> None:
    """Refuse unknown fields wherever the schema lists its properties (in place)."""
    if isinstance(node, dict):
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)


def read_crd(path: Path) -> dict:
    data = path.read_bytes()
    return yaml.safe_load(gzip.decompress(data) if path.suffix == ".gz" else data)


def schemas(crd_paths: Iterable[Path]) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict schema, for every served version of the CRDs."""
    found = {}
    for path in crd_paths:
        crd = read_crd(path)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True) and "schema" in version:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                strict(schema)
                found[(f"{group}/{version['name']}", kind)] = schema
    return found


def errors(doc: dict, known: dict[tuple[str, str], dict]) -> list[str]:
    """Every error of one document: `path: message`; an unknown kind is one."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key not in known:
        return [f"no CRD given for {key[0]} {key[1]}"]
    validator = jsonschema.Draft4Validator(known[key])
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(doc)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.validate_crd", description=__doc__.split("\n")[0])
    parser.add_argument("manifests", nargs="+", type=Path)
    parser.add_argument("--crd", type=Path, action="append", required=True, help="a CRD file (.yaml or .yaml.gz)")
    args = parser.parse_args(argv)
    known = schemas(args.crd)
    failed = False
    for path in args.manifests:
        for i, doc in enumerate(d for d in yaml.safe_load_all(path.read_text()) if d):
            name = f"{path} document {i + 1} ({doc.get('kind')} {doc.get('metadata', {}).get('name')})"
            for error in errors(doc, known):
                failed = True
                sys.stderr.write(f"{name}: {error}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
