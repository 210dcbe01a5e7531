"""The daily DAG run in-process: ingest -> preprocess -> load -> verify.

Each step is skipped when its manifest matches its inputs, so running a date again
resumes at the first unfinished step (after a crash) or does nothing (when done).
Argo runs the same step functions, one pod each (see workflows/).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from airtime.errors import AirtimeError
from airtime.manifest import Manifest
from airtime.settings import Settings
from airtime.store import ObjectStore, open_store
from airtime.warehouse import RunRecord, Warehouse, open_warehouse

log = logging.getLogger(__name__)

STEPS = ("ingest", "preprocess", "load", "verify")


@dataclass
class Context:
    """What a step needs, wired once by the entry point."""

    settings: Settings
    run_date: dt.date
    artifacts: ObjectStore
    warehouse: Warehouse
    source: str  # the source location (folder or gs:// prefix) before the dt= lookup


@dataclass
class StepResult:
    step: str
    manifest: Manifest
    manifest_uri: str
    skipped: bool
    seconds: float = 0.0


@dataclass
class RunResult:
    run_date: dt.date
    steps: list[StepResult] = field(default_factory=list)
    record: RunRecord | None = None


def bundled_sample() -> Path:
    """The synthetic sample shipped in the package (what `make run` ingests)."""
    return Path(str(resources.files("airtime") / "sample_data"))


def artifact_location(settings: Settings) -> str:
    if settings.profile == "gcp":
        if not settings.artifact_bucket:
            from airtime.errors import ConfigError

            raise ConfigError("AIRTIME_ARTIFACT_BUCKET is required with the gcp profile")
        prefix = settings.artifact_prefix.strip("/")
        return f"gs://{settings.artifact_bucket}/{prefix}".rstrip("/")
    return str(settings.runs_root)


def make_context(settings: Settings, run_date: dt.date, source: str | None = None) -> Context:
    return Context(
        settings=settings,
        run_date=run_date,
        artifacts=open_store(artifact_location(settings)),
        warehouse=open_warehouse(settings),
        source=source or settings.source or str(bundled_sample()),
    )


def step_functions() -> dict[str, Callable[[Context], StepResult]]:
    from steps import ingest, load, preprocess, verify

    return {"ingest": ingest.run, "preprocess": preprocess.run, "load": load.run, "verify": verify.run}


def run_step(ctx: Context, step: str) -> StepResult:
    """One step, with its failure noted in the ledger (a published run stays published)."""
    started = time.monotonic()
    try:
        result = step_functions()[step](ctx)
    except AirtimeError as exc:
        try:
            ctx.warehouse.record_failure(ctx.run_date, step, str(exc))
        except AirtimeError as ledger_exc:  # the original failure matters more
            log.warning("could not record the failure in the ledger: %s", ledger_exc)
        raise
    result.seconds = time.monotonic() - started
    return result


def run_day(
    settings: Settings,
    run_date: dt.date,
    source: str | None = None,
    on_step: Callable[[str, StepResult | None], None] | None = None,
) -> RunResult:
    """Run (or resume) the whole DAG for one date. `on_step(step, None)` is called
    when a step starts and `on_step(step, result)` when it ends (CLI progress)."""
    ctx = make_context(settings, run_date, source)
    result = RunResult(run_date)
    for step in STEPS:
        if on_step:
            on_step(step, None)
        step_result = run_step(ctx, step)
        result.steps.append(step_result)
        if on_step:
            on_step(step, step_result)
    result.record = ctx.warehouse.run_record(run_date)
    return result


def today(settings: Settings) -> dt.date:
    """The default run date: today in the business timezone (not the machine's)."""
    from airtime.schedule import resolve_run_date

    return resolve_run_date(None, None, settings.timezone)
