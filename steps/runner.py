"""The daily DAG run in-process (`airtime run`): every step of steps/dag.py in order.

Each step is skipped when its manifest matches its inputs, so running a date again
resumes at the first unfinished step (after a crash) or does nothing (when done).
Argo runs the same steps, one pod each (workflows/daily.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from airtime import logs
from airtime.progress import Progress
from airtime.settings import Settings
from airtime.warehouse import RunRecord
from steps.dag import STEPS
from steps.scaffold import StepResult, make_context, run_step


@dataclass
class RunResult:
    run_date: dt.date
    steps: list[StepResult] = field(default_factory=list)
    record: RunRecord | None = None


OnStep = Callable[[str, StepResult | None], None]


def run_day(settings: Settings, run_date: dt.date, source: str | None = None,
            on_step: OnStep | None = None, progress: Progress | None = None,
            generation: str | None = None) -> RunResult:
    """Run (or resume) the whole DAG for one date. `on_step(step, None)` is called when a
    step starts and `on_step(step, result)` when it ends; `progress` is what the running
    step reports (CLI progress). `generation` finishes exactly that generation (pinned:
    its finished steps are final, the source is not read again), as `airtime accept` does."""
    ctx = make_context(settings, run_date, source, progress, needs_source=generation is None)
    if generation is not None:
        ctx.generation, ctx.pinned = generation, True
    result = RunResult(run_date)
    # the ledger operations between steps share a connection (each step's work releases it)
    with ctx.warehouse.session():
        for step in STEPS:
            with logs.bound(run_date=run_date.isoformat(), step=step.name):
                if on_step:
                    on_step(step.name, None)
                step_result = run_step(step, ctx)
                result.steps.append(step_result)
                if on_step:
                    on_step(step.name, step_result)
        result.record = ctx.warehouse.generation_record(run_date, ctx.gen)
    return result
