"""What the pipeline's steps know, as gauges the query server exports (deploy/monitoring/METRICS.md).

A step pod lives for seconds, too short for a scrape; what it learns it writes to the ledger
(the `runs` row of its generation, its `attempts` row), which outlives it. The server already
reads that ledger to know what to serve, so it is the one place that turns the ledger into
metrics: every `ledger_metrics_seconds` a thread reads the `runs` ledger and the latest run
date's attempts, and a scrape only reads the facts of the last read from memory (the probe
port answers on the event loop). Log-based metrics over the steps' JSON lines would count
events (a line per failure), not state (is a held delivery still waiting?), would need one
definition per fact kept in step with the log's wording, and are not scraped by GMP rules.

No run date or generation is a label: "the latest run" is the newest run date in the ledger,
its published generation if it has one, else its newest (what `airtime runs` shows first).
The deadline gauges are computed at each scrape from the settings and the clock, because
PromQL has no time zones: `timezone` (zoneinfo, daylight saving included) turns "07:00 in Sao
Paulo, today" into a Unix time the alert compares with `time()`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from airtime.schema import DATA_TABLES
from airtime.warehouse import (
    FAILED,
    HELD,
    LOADED,
    PRUNED,
    PUBLISHED,
    SUPERSEDED,
    Attempt,
    RunRecord,
    Warehouse,
    exit_code_of,
)

log = logging.getLogger(__name__)

STATES = (LOADED, PUBLISHED, SUPERSEDED, HELD, FAILED, PRUNED)
# the exit codes airtime/errors.py gives out; each is a `failing_runs` series, 0 when none
EXIT_CODES = tuple(range(1, 11))
# failures of the run dates this many days before the newest one still count
FAILING_WINDOW_DAYS = 7


def day_seconds(day: dt.date) -> float:
    """A date as the Unix time of its midnight UTC (as airtime_served_run_date_seconds)."""
    return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()


@dataclass(frozen=True)
class LedgerFacts:
    """What one read of the ledger says; every metric below comes from one of these."""

    read_at: float
    published_run_date: dt.date | None = None
    published_at: dt.datetime | None = None
    run_date: dt.date | None = None
    state: str | None = None
    exit_code: int = 0
    failing: dict[int, int] = field(default_factory=dict)
    held: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    quarantined_rows: int = 0
    step_seconds: dict[str, float] = field(default_factory=dict)
    step_attempts: dict[str, int] = field(default_factory=dict)
    step_failed: dict[str, bool] = field(default_factory=dict)


def _latest_of_each_date(records: list[RunRecord]) -> dict[dt.date, RunRecord]:
    """records newest first: each date's published generation, else its newest."""
    chosen: dict[dt.date, RunRecord] = {}
    for record in records:
        if record.run_date not in chosen or (record.state == PUBLISHED and chosen[record.run_date].state != PUBLISHED):
            chosen[record.run_date] = record
    return chosen


def _pending_holds(records: list[RunRecord]) -> int:
    """Held generations no published generation of their date came after: each waits for
    `airtime accept` or a new delivery."""
    stamp = dt.datetime.min.replace(tzinfo=dt.UTC)
    published = {r.run_date: r.started_at or stamp for r in records if r.state == PUBLISHED}
    return sum(1 for r in records if r.state == HELD
               and (r.run_date not in published or published[r.run_date] < (r.started_at or stamp)))


def facts_of(records: list[RunRecord], attempts: list[Attempt], read_at: float) -> LedgerFacts:
    """The facts of a ledger (`records` newest first, as Warehouse.ledger() returns them) and
    of the attempts of its newest run date."""
    by_date = _latest_of_each_date(records)
    if not by_date:
        return LedgerFacts(read_at=read_at)
    newest = max(by_date)
    latest = by_date[newest]
    published = [r for r in records if r.state == PUBLISHED]  # newest first
    since = newest - dt.timedelta(days=FAILING_WINDOW_DAYS)
    failing = Counter(exit_code_of(r.error) for day, r in by_date.items() if day >= since and r.error)
    mine = sorted((a for a in attempts if a.run_date == newest), key=lambda a: a.started_at)
    last = {a.step: a for a in mine}  # each step's latest attempt
    ended = {a.step: a for a in mine if a.ended_at is not None}  # and its latest that ended
    return LedgerFacts(
        read_at=read_at,
        published_run_date=published[0].run_date if published else None,
        published_at=published[0].published_at if published else None,
        run_date=newest,
        state=latest.state,
        exit_code=exit_code_of(latest.error),
        failing=dict(failing),
        held=_pending_holds(records),
        rows={table: getattr(latest, f"{table}_rows") for table in DATA_TABLES},
        quarantined_rows=latest.quarantined_rows,
        step_seconds={step: (a.ended_at - a.started_at).total_seconds() for step, a in ended.items()},
        step_attempts=dict(Counter(a.step for a in mine)),
        step_failed={step: a.state == FAILED for step, a in last.items()},
    )


class LedgerMetrics(Collector):
    """The pipeline's gauges from the ledger, plus the deadline's and the BigQuery budget's
    from the settings. `refresh()` reads the ledger (on the poller's thread); `collect()`
    (a scrape, on the event loop) reads memory only."""

    def __init__(self, warehouse: Warehouse | None, *, timezone: str, deadline: dt.time,
                 interval: float, bytes_billed_limit: int) -> None:
        self._warehouse = warehouse
        self._zone = ZoneInfo(timezone)
        self._deadline = deadline
        self._interval = interval
        self._bytes_billed_limit = bytes_billed_limit
        self._facts: LedgerFacts | None = None  # swapped whole: a scrape sees one read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, registry: CollectorRegistry) -> LedgerMetrics:
        registry.register(self)
        return self

    def refresh(self) -> LedgerFacts:
        """Read the ledger now (blocking I/O: never on the event loop)."""
        assert self._warehouse is not None, "no ledger to read"
        records = self._warehouse.ledger()
        newest = max((r.run_date for r in records), default=None)
        attempts = self._warehouse.attempts(newest) if newest is not None else []
        self._facts = facts_of(records, attempts, time.time())
        return self._facts

    def start(self) -> None:
        if self._warehouse is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="ledger-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the last read stays exported, its time says how old
                log.warning("reading the ledger for metrics failed; exporting the previous read", exc_info=True)
            self._stop.wait(self._interval)

    def deadline(self, now: dt.datetime) -> tuple[dt.date, dt.datetime]:
        """The run date due today (today in the business zone) and its deadline."""
        today = now.astimezone(self._zone).date()
        return today, dt.datetime.combine(today, self._deadline, self._zone)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # collect() reads memory: registering need not call it

    def collect(self) -> Iterator[GaugeMetricFamily]:
        due, deadline = self.deadline(dt.datetime.now(dt.UTC))
        yield _gauge("airtime_publish_deadline_seconds",
                     "Unix time of today's publication deadline (publish_deadline in timezone)", deadline.timestamp())
        yield _gauge("airtime_due_run_date_seconds",
                     "Run date due by today's deadline (today in the business timezone), midnight UTC",
                     day_seconds(due))
        yield _gauge("airtime_bigquery_bytes_billed_limit_bytes",
                     "Bytes billed per 24 h above which AirtimeBigQueryBytesBilledHigh fires (setting)",
                     self._bytes_billed_limit)
        facts = self._facts
        if facts is None:
            return
        # AirtimeForecastNotPublishedByDeadline's condition as a 0/1 series, for the freshness
        # SLO (deploy/monitoring/slos.json), whose filter cannot compare with time()
        late = dt.datetime.now(dt.UTC) >= deadline and (facts.published_run_date is None
                                                        or facts.published_run_date < due)
        yield _gauge("airtime_forecast_late",
                     "1 while today's deadline has passed and today's run is not published", float(late))
        yield from _facts_metrics(facts)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labelled(name: str, documentation: str, label: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _facts_metrics(facts: LedgerFacts) -> Iterator[GaugeMetricFamily]:
    yield _gauge("airtime_ledger_read_seconds", "Unix time of the last successful ledger read", facts.read_at)
    # 0 when nothing is published: "due > published" still compares, and fires
    yield _gauge("airtime_ledger_published_run_date_seconds",
                 "Run date of the latest published run (midnight UTC); 0 when none",
                 day_seconds(facts.published_run_date) if facts.published_run_date else 0)
    yield _gauge("airtime_ledger_published_at_seconds", "When the latest published run was published; 0 when none",
                 facts.published_at.timestamp() if facts.published_at else 0)
    yield _labelled("airtime_ledger_failing_runs",
                    f"Run dates of the last {FAILING_WINDOW_DAYS} days whose record carries a failure, by exit code",
                    "exit_code", {str(code): facts.failing.get(code, 0) for code in sorted({*EXIT_CODES, *facts.failing})})
    yield _gauge("airtime_ledger_held_deliveries", "Deliveries held by the gate, waiting for `airtime accept`",
                 facts.held)
    if facts.run_date is None:
        return
    yield _gauge("airtime_ledger_run_date_seconds", "Newest run date in the ledger (midnight UTC)",
                 day_seconds(facts.run_date))
    yield _labelled("airtime_ledger_run_state", "State of the latest run: 1 on its state", "state",
                    {state: float(state == facts.state) for state in sorted({*STATES, facts.state or LOADED})})
    yield _gauge("airtime_ledger_run_exit_code", "Exit code of the failure recorded on the latest run; 0 when none",
                 facts.exit_code)
    yield _labelled("airtime_ledger_run_rows", "Rows of the latest run, by table", "table", facts.rows)
    yield _gauge("airtime_ledger_run_quarantined_rows", "Bad input rows ingest set aside for the latest run",
                 facts.quarantined_rows)
    yield _labelled("airtime_ledger_step_seconds", "Duration of each step's latest ended attempt (latest run)",
                    "step", facts.step_seconds)
    yield _labelled("airtime_ledger_step_attempts", "Attempts of each step for the latest run date", "step",
                    facts.step_attempts)
    yield _labelled("airtime_ledger_step_failed", "Whether each step's latest attempt failed (latest run)", "step",
                    {step: float(failed) for step, failed in facts.step_failed.items()})
