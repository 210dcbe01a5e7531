"""Write the Argo resources of a rendered release into one file each, for the bucket.

    python -m deploy.split_manifests rendered.yaml OUT_DIR

Cloud Build uploads these after validation: the exact specs that were deployed, by
revision, so an operator can diff or resubmit them without the chart. The settings ConfigMap
the WorkflowTemplate's pods mount (envFrom) goes with them: what the steps ran with is part
of what was deployed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

KINDS = ("WorkflowTemplate", "CronWorkflow")


def split(manifests: str, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = [doc for doc in yaml.safe_load_all(manifests) if doc]
    argo = [doc for doc in docs if doc.get("kind") in KINDS]
    found = sorted(doc["kind"].lower() for doc in argo)
    if found != sorted(k.lower() for k in KINDS):
        raise SystemExit(f"expected one {' and one '.join(KINDS)} in the release, found {found}")
    mounted = {source["configMapRef"]["name"] for doc in argo if doc["kind"] == "WorkflowTemplate"
               for t in doc.get("spec", {}).get("templates", []) for source in t.get("container", {}).get("envFrom", [])
               if "configMapRef" in source}
    settings = [doc for doc in docs if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] in mounted]
    if len(settings) != len(mounted):
        raise SystemExit(f"the WorkflowTemplate mounts ConfigMaps the release lacks: {sorted(mounted)}")
    paths = []
    for doc in argo + settings:
        path = out_dir / f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.split_manifests", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifests", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    for path in split(args.manifests.read_text(), args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
