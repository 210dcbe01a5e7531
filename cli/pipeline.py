"""The commands that run the pipeline or change what it keeps: `run`, `backfill`, `accept`,
`verify`, `prune` and `sample-data`, with their progress lines."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import socket
from collections.abc import Iterator

from rich.console import Console

from airtime import retention, sample
from airtime.errors import ConfigError
from airtime.progress import Progress, watching
from airtime.resources import artifact_store, bundled_sample, open_store, open_warehouse, source_location
from airtime.schedule import today
from airtime.settings import Settings
from steps import gate, runner, verify
from steps.ingest import delivery_folder
from steps.scaffold import StepResult, make_context

# piped output (CI logs, `make run | tee`) gets a readable width instead of 80 columns
out = Console() if Console().is_terminal else Console(width=130)


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    run_date = args.date or today(settings.timezone)
    return _run_dates(settings, [run_date], args.source)


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    if args.end < args.start:
        raise ConfigError(f"--end {args.end} is before --start {args.start}")
    days = [args.start + dt.timedelta(days=i) for i in range((args.end - args.start).days + 1)]
    if args.max_bad_rows is not None:
        settings = settings.model_copy(update={"max_bad_rows": args.max_bad_rows})
    if not args.same_files:
        source = open_store(source_location(settings, args.source))  # refused first without one (gcp)
        missing = [day for day in days if not source.list(delivery_folder(day))]
        if missing and not args.skip_missing:
            # a day without its folder would ingest the root's files: one delivery under many dates
            raise ConfigError(_no_day_folders(source.uri(""), days, missing))
        for day in missing:
            out.print(f"[yellow]skip {day}[/yellow]: no delivery in {source.uri(delivery_folder(day))}")
        days = [day for day in days if day not in missing]
    return _run_dates(settings, days, args.source)


def _no_day_folders(source: str, days: list[dt.date], missing: list[dt.date]) -> str:
    which = "any of the dates" if len(missing) == len(days) else \
        f"{len(missing)} of the {len(days)} dates (" + ", ".join(map(str, missing[:5])) \
        + (", ..." if len(missing) > 5 else "") + ")"
    return (f"{source} has no dt=YYYY-MM-DD/ folder for {which} from {days[0]} to {days[-1]}; backfill"
            " reads each date's delivery from its own folder. Add the folders, pass --skip-missing to"
            " skip those dates, or --same-files if the files at the root are the delivery of every date")


@contextlib.contextmanager
def _watch(progress: Progress, what: str, every: float) -> Iterator[None]:
    """A live line on a terminal; elsewhere a printed line every `every` seconds."""
    if out.is_terminal:
        with out.status(f"  {what} ...") as spinner, \
                watching(progress, lambda snap: spinner.update(f"  {what}: {snap}"), 0.5):
            yield
    else:
        with watching(progress, lambda snap: out.print(f"  … {what}: {snap}"), every):
            yield


class _StepProgress:
    """While a step runs: on a terminal a live line (phase, rows, rows/s, elapsed), elsewhere
    a printed line every 10 s; when it ends, one line saying what it did."""

    def __init__(self, heartbeat_seconds: float) -> None:
        self.progress = Progress()
        self._every = heartbeat_seconds
        self._watch: contextlib.ExitStack | None = None

    def __call__(self, step: str, result: StepResult | None) -> None:
        if result is None:
            self._watch = contextlib.ExitStack()
            self._watch.enter_context(_watch(self.progress, step, self._every))
            return
        self.stop()
        note = "skipped, already done" if result.skipped else f"{result.seconds:.2f}s"
        rows = ", ".join(f"{name} {o.rows:,} rows" for name, o in result.manifest.outputs.items())
        if step == "load":
            rows = "raw_audience, raw_availability, forecast and the ledger row, in one transaction"
        elif step == "verify":
            rows = "counts and checksums match the manifests"
        elif step == "preprocess" and "history_delivery" in result.manifest.outputs:
            outputs = result.manifest.outputs
            kept, history = outputs["history"].rows, outputs["history"].rows + outputs["history_delivery"].rows
            rows = f"forecast {outputs['forecast'].rows:,} rows, history {history:,} rows ({kept:,} kept from before)"
        elif step == "gate":
            rows = f"delivery {result.manifest.extra.get('decision', 'passed')}"
        out.print(f"  [green]✓[/green] {step:<10} {note:<22} {rows}")

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None


def _run_dates(settings: Settings, days: list[dt.date], source: str | None) -> int:
    where = source_location(settings, source)  # refused before any work without a source (gcp)
    for run_date in days:
        out.print(f"[bold]run {run_date}[/bold] (profile {settings.profile}, source "
                  f"{'bundled sample' if where == str(bundled_sample()) else where})")
        progress = _StepProgress(settings.heartbeat_seconds)
        try:
            result = runner.run_day(settings, run_date, source, on_step=progress, progress=progress.progress)
        finally:
            progress.stop()
        record = result.record
        out.print(f"  run {run_date}: [bold green]{record.state}[/bold green]; forecast "
                  f"{record.forecast_rows:,} slots, {record.quarantined_rows} rows quarantined")
    return 0


def cmd_accept(settings: Settings, args: argparse.Namespace) -> int:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # a container user with no passwd entry
        user = "unknown"
    by = f"{user}@{socket.gethostname()}"
    ctx = make_context(settings, args.date, needs_source=False)
    ctx.generation, ctx.pinned = args.generation or gate.held_generation(ctx).generation, True
    uri = gate.accept(ctx, args.reason, by)
    out.print(f"accepted generation {ctx.gen} of {args.date} ({uri}); publishing exactly it")
    progress = _StepProgress(settings.heartbeat_seconds)
    try:
        result = runner.run_day(settings, args.date, on_step=progress, progress=progress.progress,
                                generation=ctx.gen)
    finally:
        progress.stop()
    out.print(f"  run {args.date} generation {ctx.gen}: [bold green]{result.record.state}[/bold green]")
    return 0


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    ctx = make_context(settings, args.date, needs_source=False)
    figures = verify.recheck(ctx)
    out.print(f"run {args.date} generation {ctx.gen}: the warehouse holds what was loaded ("
              + ", ".join(f"{table} {f.rows:,} rows" for table, f in figures.items())
              + ") and every artifact matches its manifest")
    return 0


def cmd_prune(settings: Settings, args: argparse.Namespace) -> int:
    store, warehouse = artifact_store(settings), open_warehouse(settings)
    removals = retention.plan_removals(store, warehouse, settings.retention_days,
                                       settings.warehouse_retention_days)
    for removal in removals:
        record = removal.record
        out.print(f"{'would remove' if args.dry_run else 'remove'} {record.run_date} generation"
                  f" {record.generation} ({removal.why}): {len(removal.keys)} objects"
                  + (" and its warehouse rows" if removal.rows else ""))
        if not args.dry_run:
            retention.remove(store, warehouse, removal)
    kept = f"published generations of the last {settings.retention_days} days kept"
    if settings.warehouse_retention_days:
        kept += f", their warehouse rows for {settings.warehouse_retention_days} days"
    out.print(f"{len(removals)} generation(s) {'to remove' if args.dry_run else 'removed'}; {kept}")
    return 0


def cmd_sample(settings: Settings, args: argparse.Namespace) -> int:
    end_date = args.end_date or sample.DEFAULT_END_DATE
    progress = Progress()
    progress.phase("writing audience rows")
    with _watch(progress, "sample-data", settings.heartbeat_seconds):
        audience, availability = sample.generate(args.out, rows=args.rows, seed=args.seed,
                                                 end_date=end_date, progress=progress)
    out.print(f"wrote {audience} and {availability}")
    day = sample.run_date_for(end_date)
    out.print(f"their delivery day: {day}  (airtime run --date {day} --source {args.out})")
    return 0

