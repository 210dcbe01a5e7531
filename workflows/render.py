"""Render the Argo resources to plain dicts and YAML files (one file per resource).

`python -m workflows.render --golden` regenerates the checked-in golden files from
`WorkflowConfig.example()`; `python -m workflows.render --out DIR` renders from the
AIRTIME_* settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from workflows.config import WorkflowConfig
from workflows.daily import cron_workflow, memo_cache, workflow_template

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "tests" / "golden" / "workflows"


def render(config: WorkflowConfig) -> list[dict]:
    """The resources in apply order: the template before the cron that refers to it."""
    return [
        memo_cache(config),
        workflow_template(config).to_dict(),
        cron_workflow(config).to_dict(),
    ]


def file_name(doc: dict) -> str:
    return f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"


def dump(doc: dict) -> str:
    # keys in the order Hera emits them (apiVersion, kind, metadata, spec); long
    # strings unwrapped so the golden diff shows one changed line per change
    return yaml.safe_dump(doc, sort_keys=False, width=10_000, default_flow_style=False)


def write(config: WorkflowConfig, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in render(config):
        path = out_dir / file_name(doc)
        path.write_text(dump(doc))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workflows.render", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--golden", action="store_true", help=f"regenerate {GOLDEN_DIR}")
    group.add_argument("--out", type=Path, help="render from the AIRTIME_* settings into this folder")
    args = parser.parse_args(argv)
    if args.golden:
        for stale in GOLDEN_DIR.glob("*.yaml"):
            stale.unlink()
        paths = write(WorkflowConfig.example(), GOLDEN_DIR)
    else:
        from airtime.settings import Settings

        paths = write(WorkflowConfig.from_settings(Settings()), args.out)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
