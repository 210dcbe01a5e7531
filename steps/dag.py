"""The daily DAG, declared once, as data: what `airtime run` runs in-process and what
workflows/daily.py renders as Argo tasks (one pod each).

    ingest -> preprocess -> gate -> load -> verify      (load reads ingest's outputs too)

Each step module declares its own `Step` (name, upstream steps, outputs type, work);
adding a step is writing its module and naming it here, in an order that runs every
step after its upstream ones.
"""

from __future__ import annotations

from typing import Any

from steps import gate, ingest, load, preprocess, verify
from steps.scaffold import Step

STEPS: tuple[Step[Any], ...] = (ingest.STEP, preprocess.STEP, gate.STEP, load.STEP, verify.STEP)


def _check(steps: tuple[Step[Any], ...]) -> None:
    seen: set[str] = set()
    for step in steps:
        late = [up.name for up in step.upstream if up.name not in seen]
        if late:
            raise ValueError(f"step {step.name} is declared before its upstream {', '.join(late)}")
        seen.add(step.name)


_check(STEPS)


def step_named(name: str) -> Step[Any]:
    for step in STEPS:
        if step.name == name:
            return step
    raise KeyError(name)
