"""Catch-up: the first task of every scheduled run.

Argo starts only the latest missed run after downtime. So each run first brings the
earlier days up to date: within `settings.catchup_days` before the run date, every day
that has a delivery (`<source>/dt=YYYY-MM-DD/`) but no published run is run, oldest
first, because a day's forecast uses the history every earlier run delivered.
It stops at the first day that fails (exit code of that failure): running later days
over a hole in the history would publish forecasts that silently miss it.

It also hands the DAG the run date the steps agree on (from the cron's scheduled time, in the
business timezone), and logs a digest of that day's source files (written to --emit-digest
too): which delivery the run saw. Nothing keys a cache on it: the templates have no Argo
memoization, and each step's manifest records its inputs' identity itself (steps/scaffold.py,
docs/operations-argo.md).

    python -m steps.catchup --date D | --scheduled-time T [--emit-date P] [--emit-digest P]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from airtime import entrypoint, logs
from airtime.progress import Progress, heartbeat
from airtime.resources import open_store, open_warehouse, source_location
from airtime.schedule import resolve_run_date
from airtime.settings import Settings
from airtime.store import ObjectStore
from airtime.warehouse import PUBLISHED, Warehouse
from steps import runner
from steps.ingest import day_prefix, delivery_folder

log = logging.getLogger(__name__)

STEP = "catchup"
NO_FILES = "none"  # digest of a day without files: ingest then fails with a clear InputError


@dataclass
class CatchupResult:
    run_date: dt.date
    input_digest: str
    caught_up: list[dt.date] = field(default_factory=list)


def day_keys(source: ObjectStore, day: dt.date) -> list[str]:
    """The files of a day's delivery, found the way ingest finds them: directly under
    `dt=D/` when that folder exists, else directly under the root."""
    prefix = day_prefix(source, day)
    return sorted(k for k in source.list(prefix) if "/" not in k[len(prefix):])


def input_digest(source: ObjectStore, day: dt.date) -> str:
    keys = day_keys(source, day)
    if not keys:
        return NO_FILES
    text = "\n".join(f"{key}={source.identity(key)}" for key in keys)
    # 16 hex digits: collision-safe for one day's deliveries, short enough for a memo key
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def missed_days(settings: Settings, run_date: dt.date, source: ObjectStore, warehouse: Warehouse) -> list[dt.date]:
    """Earlier days within the look-back that have a delivery and no published run."""
    missed = []
    for back in range(settings.catchup_days, 0, -1):
        day = run_date - dt.timedelta(days=back)
        if not source.list(delivery_folder(day)):
            continue
        record = warehouse.run_record(day)
        if record is None or record.state != PUBLISHED:
            missed.append(day)
    return missed


RunDay = Callable[[Settings, dt.date, str], object]


def run(settings: Settings, run_date: dt.date, source_uri: str, warehouse: Warehouse, run_day: RunDay) -> CatchupResult:
    source = open_store(source_uri)
    result = CatchupResult(run_date, input_digest(source, run_date))
    for day in missed_days(settings, run_date, source, warehouse):
        log.info("catching up %s before %s", day, run_date)
        with logs.bound(run_date=day.isoformat()):
            run_day(settings, day, source_uri)
        result.caught_up.append(day)
    return result


def _emit(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m steps.catchup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", default="", help="run date YYYY-MM-DD (wins over --scheduled-time)")
    parser.add_argument("--scheduled-time", default="", help="the cron's scheduled time, RFC 3339")
    parser.add_argument("--source", help="source folder, gs:// or s3:// prefix (default: AIRTIME_SOURCE)")
    parser.add_argument("--emit-date", type=Path, help="write the resolved run date here (Argo output)")
    parser.add_argument("--emit-digest", type=Path, help="write the day's input digest here (Argo output)")

    def body(settings: Settings, args: argparse.Namespace) -> int:
        logs.bind(step=STEP)
        run_date = resolve_run_date(args.date, args.scheduled_time, settings.timezone)
        logs.bind(run_date=run_date.isoformat())
        source_uri = source_location(settings, args.source)
        progress = Progress()

        def run_day(settings: Settings, day: dt.date, source: str) -> object:
            return runner.run_day(settings, day, source, progress=progress)

        with heartbeat(progress, log, "catch-up", settings.heartbeat_seconds):  # whole days: the log hears every 10 s
            result = run(settings, run_date, source_uri, open_warehouse(settings), run_day)
        _emit(args.emit_date, run_date.isoformat())
        _emit(args.emit_digest, result.input_digest)
        log.info("run date %s, input digest %s, caught up %d earlier day(s): %s", run_date, result.input_digest,
                 len(result.caught_up), ", ".join(map(str, result.caught_up)) or "none")
        return 0

    def report(exc: Exception) -> None:
        log.error("catch-up failed: %s", exc)

    return entrypoint.run(parser, body, argv, report=report)


if __name__ == "__main__":
    sys.exit(main())
