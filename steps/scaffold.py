"""The one step scaffold: what every pipeline step does around its own work.

A step is declared as data (`Step`): its name, the steps it reads (`upstream`), the type
of what it writes (a dataclass, stored in its manifest), and `plan`, which names the
identity of its inputs and returns the work still to do. `run_step` then, for every step:

0. names the generation it works in (airtime/generation.py): from the delivery's identity
   (the DAG's first step's plan) and the date's previous published generation;
1. reads the upstream manifests of that generation, typed (a missing one is
   UpstreamMissingError: exit 8, never retried, because only running the upstream step
   first can help);
2. skips the step when its manifest was written for these very inputs, its outputs are
   still there and `still_done` agrees, which is how a re-run after a crash resumes at the
   first unfinished step;
3. otherwise does the work, writes the manifest last, and passes the crash point
   `after-<step>` (airtime/faults.py);
4. notes a failure in the ledger, on the generation's own row (a published generation
   stays published, and another generation's failure never touches it).

A published generation is frozen: a step whose manifest it holds is done, whatever its
plan would say now (only settings such as the gate's thresholds can change within one
generation), so nothing ever writes into a generation later days read. `airtime accept`
works on a pinned generation the same way, without looking at the source again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import socket
import time
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from airtime import faults
from airtime.errors import AirtimeError, DeliveryHeldError, UpstreamMissingError
from airtime.generation import generation_id
from airtime.manifest import Manifest, Output, digest_of, manifest_key, read_manifest, write_manifest
from airtime.progress import Progress
from airtime.resources import artifact_store, open_warehouse, source_location
from airtime.schema import TableKey
from airtime.settings import Settings
from airtime.store import ObjectStore
from airtime.warehouse import (
    FAILED,
    HELD,
    PUBLISHED,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    SUPERSEDED,
    Attempt,
    Figures,
    RunRecord,
    Warehouse,
    failure_message,
)

log = logging.getLogger(__name__)

O = TypeVar("O")  # noqa: E741 - a step's outputs type


@dataclass
class Context:
    """What a step needs, wired once by the entry point."""

    settings: Settings
    run_date: dt.date
    artifacts: ObjectStore
    warehouse: Warehouse
    source: str  # the source location (folder, gs:// or s3:// prefix) before the dt= lookup
    progress: Progress = field(default_factory=Progress)  # what the running step reports
    # the generation worked in: named by the first step that needs it (`name_generation`),
    # or given (`pinned`: `airtime accept` finishes exactly the held generation)
    generation: str | None = None
    pinned: bool = False
    _figures: dict[tuple, dict[TableKey, Figures]] = field(default_factory=dict, repr=False)
    _previous: list[RunRecord | None] = field(default_factory=list, repr=False)
    _frozen: bool | None = field(default=None, repr=False)

    @property
    def gen(self) -> str:
        """The generation, once named (every step names it before it reads or writes)."""
        if self.generation is None:
            raise RuntimeError("the generation is named by run_step before any step works")
        return self.generation

    def previous(self) -> RunRecord | None:
        """The latest published generation of an earlier date: what this day builds on
        (its history, the delivery the gate compares with). Asked once per context."""
        if not self._previous:
            self._previous.append(self.warehouse.published_before(self.run_date))
        return self._previous[0]

    def frozen(self) -> bool:
        """Whether the generation was published (or pinned): its manifests are final."""
        if self._frozen is None:
            record = self.warehouse.generation_record(self.run_date, self.gen)
            self._frozen = self.pinned or (record is not None and record.state in (PUBLISHED, SUPERSEDED))
        return self._frozen

    def figures(self, versions: Mapping[TableKey, int] | None = None) -> dict[TableKey, Figures]:
        """The warehouse's row counts and checksums of the generation (each table's checksum
        in the version `versions` names), read once per context (load's and verify's skip
        checks of one `airtime run` ask the same question) until a load changes them
        (`forget_figures`)."""
        key = tuple(sorted((versions or {}).items()))
        if key not in self._figures:
            self._figures[key] = self.warehouse.figures(self.run_date, self.gen, versions)
        return self._figures[key]

    def forget_figures(self) -> None:
        self._figures.clear()
        self._frozen = None  # a load or publish may change the generation's state too


def make_context(settings: Settings, run_date: dt.date, source: str | None = None,
                 progress: Progress | None = None, *, needs_source: bool = True) -> Context:
    """`needs_source=False`: the context of a command that works on stored generations only
    (accept, verify), which must not fail for want of a source location."""
    # first: a missing source fails before any cloud call
    source = source_location(settings, source) if needs_source else str(source or settings.source or "")
    return Context(settings=settings, run_date=run_date, artifacts=artifact_store(settings),
                   warehouse=open_warehouse(settings), source=source, progress=progress or Progress())


@dataclass(frozen=True)
class Planned(Generic[O]):
    """A step's plan for one date: the identity of what it reads, and the work to do if
    its manifest was not written for exactly that."""

    inputs: dict[str, str]
    work: Callable[[], O]


class Upstream:
    """The outputs of the steps a step reads, looked up by their type."""

    def __init__(self, outputs: dict[type, object]) -> None:
        self._outputs = outputs

    def __getitem__(self, kind: type[O]) -> O:
        return typing.cast(O, self._outputs[kind])


@dataclass(frozen=True)
class Step(Generic[O]):
    name: str
    upstream: tuple[Step[Any], ...]
    writes: type[O]  # a dataclass: Output fields go to the manifest's outputs, the rest to extra
    plan: Callable[[Context, Upstream], Planned[O]]
    # a step whose effect lives outside its manifest (the warehouse) checks it is still there
    still_done: Callable[[Context, O], bool] = lambda ctx, outputs: True


@dataclass
class StepResult:
    step: str
    manifest: Manifest
    manifest_uri: str
    skipped: bool
    seconds: float = 0.0


# -- typed manifests --------------------------------------------------------------------

def to_manifest(step: Step[O], ctx: Context, inputs: dict[str, str], outputs: O) -> Manifest:
    manifest = Manifest(step=step.name, run_date=ctx.run_date, inputs=inputs, generation=ctx.gen)
    for f in dataclasses.fields(step.writes):
        value = getattr(outputs, f.name)
        if isinstance(value, Output):
            manifest.outputs[f.name] = value
        else:
            manifest.extra[f.name] = value
    return manifest


def from_manifest(kind: type[O], manifest: Manifest) -> O | None:
    """The manifest's outputs as `kind`, or None when it lacks a field without a default
    (written by an older version: the step is then done again)."""
    values = {}
    for f in dataclasses.fields(kind):
        if f.name in manifest.outputs:
            values[f.name] = manifest.outputs[f.name]
        elif f.name in manifest.extra:
            values[f.name] = manifest.extra[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            return None
    return kind(**values)


def read_outputs(step: Step[O], ctx: Context, record: RunRecord | None = None) -> O | None:
    """The step's outputs in the context's generation, or in the generation `record` names
    (say the previous published day's)."""
    run_date, generation = (record.run_date, record.generation) if record else (ctx.run_date, ctx.gen)
    manifest = read_manifest(ctx.artifacts, run_date, generation, step.name)
    return None if manifest is None else from_manifest(step.writes, manifest)


# -- naming the generation ------------------------------------------------------------------

NO_DELIVERY = "no-delivery"  # the ledger row of a failure before the delivery could be identified


def delivery_step(step: Step[Any]) -> Step[Any]:
    """The DAG's first step above `step`: the one that reads the delivery (ingest)."""
    while step.upstream:
        step = step.upstream[0]
    return step


def name_generation(step: Step[Any], ctx: Context) -> str:
    """The generation of the context's delivery: named from the delivery step's inputs
    (the source files' identities and its settings) and the previous published day."""
    if ctx.generation is None:
        delivery = delivery_step(step).plan(ctx, Upstream({})).inputs
        ctx.generation = generation_id(delivery, ctx.previous())
    return ctx.generation


# -- running one step ---------------------------------------------------------------------

def _upstream(step: Step[Any], ctx: Context, seen: dict[str, object] | None = None) -> Upstream:
    """The outputs of the steps `step` reads, each checked to be current: written for the
    inputs its own plan names now. A stale one (say a re-delivered file was ingested again
    but preprocess was not run after it) is as missing as one never run: reading it would
    mix two deliveries."""
    seen = {} if seen is None else seen  # one check per step within one call
    found, missing, stale = {}, [], []
    for up in step.upstream:
        if up.name not in seen:
            seen[up.name] = _current(up, ctx, seen)
        outputs = seen[up.name]
        if outputs is None:
            missing.append(up.name)
        elif outputs is _STALE:
            stale.append(up.name)
        found[up.writes] = outputs
    if missing or stale:
        names = missing + stale
        verb = "has" if len(names) == 1 else "have"
        why = "not finished" if not stale else "not run since their inputs changed" if not missing \
            else "not finished, or not run since their inputs changed,"
        raise UpstreamMissingError(
            f"{step.name} {ctx.run_date}: {', '.join(names)} {verb} {why} for this date;"
            f" run it first (or the whole day: airtime run --date {ctx.run_date})")
    return Upstream(found)


_STALE = object()


def _current(step: Step[Any], ctx: Context, seen: dict[str, object]) -> object:
    """The step's outputs for the date; None if it never finished, _STALE if its inputs
    changed since (its own upstream missing or stale counts as stale)."""
    manifest = read_manifest(ctx.artifacts, ctx.run_date, ctx.gen, step.name)
    if manifest is None:
        return None
    outputs = from_manifest(step.writes, manifest)
    if outputs is not None and ctx.frozen():
        return outputs
    try:
        plan = step.plan(ctx, _upstream(step, ctx, seen))
    except UpstreamMissingError:
        return _STALE
    if outputs is None or manifest.input_digest != digest_of(plan.inputs):
        return _STALE
    return outputs


def _do(step: Step[O], ctx: Context) -> StepResult:
    key = manifest_key(ctx.run_date, ctx.gen, step.name)
    done = read_manifest(ctx.artifacts, ctx.run_date, ctx.gen, step.name)
    if done is not None and ctx.frozen() and _still_done(step, ctx, done):
        return StepResult(step.name, done, ctx.artifacts.uri(key), True)
    plan = step.plan(ctx, _upstream(step, ctx))
    if done is not None and done.input_digest == digest_of(plan.inputs) and _still_done(step, ctx, done):
        return StepResult(step.name, done, ctx.artifacts.uri(key), True)
    ctx.warehouse.release()  # the work takes a while: other processes may use the warehouse meanwhile
    manifest = to_manifest(step, ctx, plan.inputs, plan.work())
    uri = write_manifest(ctx.artifacts, manifest)
    faults.crash_point(f"after-{step.name}")
    return StepResult(step.name, manifest, uri, False)


def _still_done(step: Step[O], ctx: Context, done: Manifest) -> bool:
    outputs = from_manifest(step.writes, done)
    # an output removed since (by hand, by a lifecycle rule) is made again, not trusted
    present = all(ctx.artifacts.exists(out.key) for out in done.outputs.values())
    return outputs is not None and present and step.still_done(ctx, outputs)


def run_step(step: Step[Any], ctx: Context) -> StepResult:
    """One step, skipped when done. The attempt is recorded before the work starts (a
    killed one stays `running`), and a failure is noted in the ledger."""
    started = time.monotonic()
    ctx.progress.restart(step.name)
    attempt = Attempt(uuid.uuid4().hex, ctx.run_date, step.name, RUNNING, _now(), host=socket.gethostname())
    ctx.warehouse.start_attempt(attempt)
    try:
        name_generation(step, ctx)
        result = _do(step, ctx)
    except AirtimeError as exc:
        _record_failure(ctx, step, attempt, str(exc), exc.exit_code, held=isinstance(exc, DeliveryHeldError))
        raise
    except Exception as exc:  # a bug: still say in the ledger that the attempt ended
        _record_failure(ctx, step, attempt, f"{type(exc).__name__}: {exc}", 1)  # Python's exit code
        raise
    ctx.warehouse.end_attempt(attempt.attempt_id, SKIPPED if result.skipped else SUCCEEDED, _now())
    result.seconds = time.monotonic() - started
    return result


def _record_failure(ctx: Context, step: Step[Any], attempt: Attempt, message: str, exit_code: int,
                    held: bool = False) -> None:
    """`held`: the gate refused the delivery, which waits for `airtime accept`. The ledger's
    note starts with the exit code (failure_message): what the server's metrics read."""
    state = HELD if held else FAILED
    try:
        ctx.warehouse.end_attempt(attempt.attempt_id, FAILED, _now(), message)
        ctx.warehouse.record_failure(ctx.run_date, ctx.generation or NO_DELIVERY, step.name,
                                     failure_message(exit_code, message), state=state)
    except AirtimeError as ledger_exc:  # the original failure matters more
        log.warning("could not record the failure in the ledger: %s", ledger_exc)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
