"""Whether a delivery is plausible as a whole: the rules of the data-quality gate.

A delivery can be valid line by line and still wrong as a whole: half its rows missing, a
signal gone, every slot a year in the past, every available_time zero, an audience a million
times its program's usual. `judge` compares the day's delivery with a reference delivery
(the previous published one, or the published one of the same date) and `judge_alone`
looks at it by itself; each returns findings, and each finding names its rule, the numbers
and the setting that decides it (the reasons for the defaults: docs/operations.md).

| rule | holds when | setting |
|---|---|---|
| no-rows | a file keeps no valid row | - |
| past-slots | more of the slots than a share are dated before the delivery day | dq_max_past_slots_ratio |
| row-count | a file has far fewer rows than the reference's | dq_min_rows_ratio |
| vanished-signals | signals of the reference's availability or audience are gone | dq_max_vanished_signals |
| vanished-series | a share of its (signal, program) series are gone | dq_max_vanished_series_ratio |
| upcoming-slots | far fewer slots on or after the delivery day | dq_min_upcoming_slots_ratio |
| upcoming-span | they span far fewer days | dq_min_upcoming_span_ratio |
| available-time | a signal's (or the whole) upcoming available_time collapses | dq_min_available_time_ratio |
| rewritten-history | the audience rewrites much of what the history held | dq_max_rewritten_ratio |
| audience-outliers | new or changed audiences far outside their series (a new series: its signal; a new signal: the whole history) | dq_audience_outlier_mads, dq_audience_mad_floor, dq_max_audience_outliers |

The relations are SQL over typed Parquet (or registered frames); values are bound.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb

from airtime.forecast import CHANGED_SQL
from airtime.settings import Settings

# the settings the rules read: a gate decision is redone when one of them changes
SETTINGS = ("dq_min_rows_ratio", "dq_max_vanished_signals", "dq_max_vanished_series_ratio",
            "dq_max_rewritten_ratio", "dq_max_past_slots_ratio", "dq_min_upcoming_slots_ratio",
            "dq_min_upcoming_span_ratio", "dq_min_available_time_ratio", "dq_audience_outlier_mads",
            "dq_audience_mad_floor", "dq_max_audience_outliers")
REWRITE_MIN_ROWS = 20  # fewer rewritten rows than this is noise, not a rewritten history
SHOWN = 5  # outliers and signals a finding lists by name


@dataclass(frozen=True)
class Delivery:
    """One delivery as the rules read it: SQL relations of its typed files, its delivery
    day, and (for a reference) the history after it."""

    run_date: dt.date
    audience: str
    availability: str
    history: str | None = None
    # for a reference: the day's rows new or rewritten against its `history` (`held`), as
    # preprocess found them merging the day into it (forecast.delivery_changes_sql): the
    # join of the day's audience with `history` is not done again
    today_changes: str | None = None


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str  # the numbers, and the setting that decides

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class Slots:
    """What a delivery's availability offers as of its delivery day."""

    total: int
    past: int  # dated before the delivery day
    upcoming: int  # on or after it
    first: dt.date | None  # of the upcoming slots
    last: dt.date | None
    seconds: dict[str, int]  # upcoming available_time per signal of the file (0: none upcoming)

    @property
    def span_days(self) -> int:
        return (self.last - self.first).days + 1 if self.first and self.last else 0

    def figures(self) -> dict[str, object]:
        """For the gate's manifest: what an operator reads in `airtime runs`."""
        return {"slots": self.total, "past_slots": self.past, "upcoming_slots": self.upcoming,
                "upcoming_first": self.first.isoformat() if self.first else None,
                "upcoming_last": self.last.isoformat() if self.last else None,
                "upcoming_available_time": sum(self.seconds.values())}


def slots(con: duckdb.DuckDBPyConnection, delivery: Delivery) -> Slots:
    total, past, upcoming, first, last = con.execute(
        f"SELECT count(*), count(*) FILTER (date < $day), count(*) FILTER (date >= $day),"
        f" min(date) FILTER (date >= $day), max(date) FILTER (date >= $day) FROM {delivery.availability}",
        {"day": delivery.run_date}).fetchone()
    seconds = dict(con.execute(
        f"SELECT CAST(signal AS VARCHAR), CAST(coalesce(sum(available_time) FILTER (date >= $day), 0) AS BIGINT)"
        f" FROM {delivery.availability} GROUP BY ALL", {"day": delivery.run_date}).fetchall())
    return Slots(total, past, upcoming, first, last, seconds)


BY_ITSELF = "by itself"


def judge_delivery(con: duckdb.DuckDBPyConnection, settings: Settings, today: Delivery,
                   references: dict[str, Delivery]) -> tuple[dict[str, list[Finding]], Slots]:
    """Every rule: the findings by what they compare the delivery with (BY_ITSELF, then each
    reference by its description), and the day's slots."""
    measured = slots(con, today)
    found = {BY_ITSELF: judge_alone(con, settings, today, measured)}
    for where, reference in references.items():
        found[where] = judge(con, settings, today, reference, measured)
    return found, measured


def judge_alone(con: duckdb.DuckDBPyConnection, settings: Settings, today: Delivery,
                measured: Slots | None = None) -> list[Finding]:
    """The rules that need no reference: an empty file, a delivery of past slots."""
    found = [Finding("no-rows", f"{table} has no valid row")
             for table, relation in (("audience", today.audience), ("availability", today.availability))
             if _count(con, relation) == 0]
    now = measured or slots(con, today)
    if now.total and now.past / now.total > settings.dq_max_past_slots_ratio:
        found.append(Finding("past-slots", (
            f"{now.past:,} of the {now.total:,} slots ({now.past / now.total:.0%}) are dated before the delivery"
            f" day {today.run_date}, above AIRTIME_DQ_MAX_PAST_SLOTS_RATIO={settings.dq_max_past_slots_ratio}"
            " (a file delivered a few days late holds a few days of them; this is not this day's file)")))
    return found


def judge(con: duckdb.DuckDBPyConnection, settings: Settings, today: Delivery, reference: Delivery,
          measured: Slots | None = None) -> list[Finding]:
    """The rules that compare the day's delivery with a reference delivery."""
    now, before = measured or slots(con, today), slots(con, reference)
    found = _row_counts(con, settings, today, reference)
    for table in ("availability", "audience"):
        found += _vanished(con, settings, table, getattr(today, table), getattr(reference, table))
    found += _upcoming(settings, now, before)
    found += _available_time(settings, now, before)
    if reference.history is not None:
        with _fresh(con, today.audience, reference.history, reference.today_changes):
            found += _rewritten(con, settings, today.audience)
            found += _outliers(con, settings, reference.history)
    return found


@contextlib.contextmanager
def _fresh(con: duckdb.DuckDBPyConnection, today: str, history: str,
           changes: str | None = None) -> Iterator[None]:
    """Temporary table `plausibility_fresh`: the day's exhibitions the history does not hold
    with the same audience (usually a day's worth), `held` when it held the exhibition with
    another. From `changes` when there are (preprocess's merge joined them already);
    otherwise one join of the day's audience with the whole history, for both rules that
    need it."""
    if changes is not None:
        fresh = f"""SELECT CAST(signal AS VARCHAR) AS signal, CAST(program_code AS VARCHAR) AS program_code,
                   exhibition_date, average_audience, ln(1 + average_audience) AS l, held FROM {changes}"""
    else:
        changed = CHANGED_SQL.format(t="t.average_audience", h="h.average_audience")
        fresh = f"""SELECT CAST(t.signal AS VARCHAR) AS signal, CAST(t.program_code AS VARCHAR) AS program_code,
                   t.exhibition_date, t.average_audience, ln(1 + t.average_audience) AS l,
                   h.average_audience IS NOT NULL AS held
            FROM {today} t LEFT JOIN {history} h USING (signal, program_code, exhibition_date)
            WHERE h.average_audience IS NULL OR {changed}"""
    con.execute(f"CREATE OR REPLACE TEMP TABLE plausibility_fresh AS {fresh}")
    try:
        yield
    finally:
        con.execute("DROP TABLE IF EXISTS plausibility_fresh")


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]


def _row_counts(con: duckdb.DuckDBPyConnection, settings: Settings, today: Delivery,
                reference: Delivery) -> list[Finding]:
    found = []
    for table in ("audience", "availability"):
        rows, usual = _count(con, getattr(today, table)), _count(con, getattr(reference, table))
        if usual and rows < settings.dq_min_rows_ratio * usual:
            found.append(Finding("row-count", f"{table} has {rows:,} rows, {rows / usual:.0%} of the"
                                 f" {usual:,} of the delivery compared with"
                                 f" (below AIRTIME_DQ_MIN_ROWS_RATIO={settings.dq_min_rows_ratio})"))
    return found


def _vanished(con: duckdb.DuckDBPyConnection, settings: Settings, table: str, today: str,
              before: str) -> list[Finding]:
    signals = [s for (s,) in con.execute(
        f"SELECT DISTINCT CAST(signal AS VARCHAR) FROM {before}"
        f" EXCEPT SELECT DISTINCT CAST(signal AS VARCHAR) FROM {today} ORDER BY 1").fetchall()]
    found = []
    if len(signals) > settings.dq_max_vanished_signals:
        found.append(Finding("vanished-signals", f"signals with {table} before and none now: "
                             f"{', '.join(signals[:20])} (AIRTIME_DQ_MAX_VANISHED_SIGNALS="
                             f"{settings.dq_max_vanished_signals})"))
    series = "SELECT DISTINCT CAST(signal AS VARCHAR), CAST(program_code AS VARCHAR) FROM {}"
    gone, total = con.execute(
        f"SELECT (SELECT count(*) FROM ({series.format(before)} EXCEPT {series.format(today)})),"
        f" (SELECT count(*) FROM ({series.format(before)}))").fetchone()
    if total and gone / total > settings.dq_max_vanished_series_ratio:
        found.append(Finding("vanished-series", (
            f"{gone:,} of the {total:,} (signal, program) series of the delivery compared with have no {table}"
            f" now ({gone / total:.0%}, above AIRTIME_DQ_MAX_VANISHED_SERIES_RATIO="
            f"{settings.dq_max_vanished_series_ratio})")))
    return found


def _upcoming(settings: Settings, now: Slots, before: Slots) -> list[Finding]:
    found = []
    ratio = settings.dq_min_upcoming_slots_ratio
    if before.upcoming and now.upcoming < ratio * before.upcoming:
        found.append(Finding("upcoming-slots", (
            f"{now.upcoming:,} slots dated on or after the delivery day, {now.upcoming / before.upcoming:.0%}"
            f" of the {before.upcoming:,} the delivery compared with had on or after its own"
            f" (below AIRTIME_DQ_MIN_UPCOMING_SLOTS_RATIO={ratio})")))
    ratio = settings.dq_min_upcoming_span_ratio
    if now.upcoming and before.span_days and now.span_days < ratio * before.span_days:
        found.append(Finding("upcoming-span", (
            f"the upcoming slots span {now.span_days} days ({now.first} .. {now.last}),"
            f" {now.span_days / before.span_days:.0%} of the {before.span_days} days"
            f" ({before.first} .. {before.last}) of the delivery compared with"
            f" (below AIRTIME_DQ_MIN_UPCOMING_SPAN_RATIO={ratio})")))
    return found


def _available_time(settings: Settings, now: Slots, before: Slots) -> list[Finding]:
    """The whole delivery's upcoming available_time, and each signal's that is still in the
    file (a signal gone from it is vanished-signals)."""
    ratio = settings.dq_min_available_time_ratio
    totals = [("all signals", sum(now.seconds.values()), sum(before.seconds.values()))]
    totals += [(signal, now.seconds.get(signal, 0), seconds) for signal, seconds in sorted(before.seconds.items())
               if signal in now.seconds]
    low = [f"{name} {seconds:,} s of {usual:,} s ({seconds / usual:.0%})"
           for name, seconds, usual in totals if usual and seconds < ratio * usual]
    if not low:
        return []
    return [Finding("available-time", (
        "available_time of the upcoming slots against the delivery compared with: " + ", ".join(low[:SHOWN + 1])
        + (f" and {len(low) - SHOWN - 1} more" if len(low) > SHOWN + 1 else "")
        + f" (below AIRTIME_DQ_MIN_AVAILABLE_TIME_RATIO={ratio})"))]


def _rewritten(con: duckdb.DuckDBPyConnection, settings: Settings, today: str) -> list[Finding]:
    """Over `plausibility_fresh`: the exhibitions the history held are the day's rows but the
    new ones."""
    new, changed = con.execute(
        "SELECT count(*) FILTER (WHERE NOT held), count(*) FILTER (WHERE held) FROM plausibility_fresh").fetchone()
    overlap = _count(con, today) - new
    if changed >= REWRITE_MIN_ROWS and changed > settings.dq_max_rewritten_ratio * overlap:
        return [Finding("rewritten-history", (
            f"the audience rewrites {changed:,} of the {overlap:,} exhibitions the history already held"
            f" ({changed / overlap:.0%}, above AIRTIME_DQ_MAX_REWRITTEN_RATIO={settings.dq_max_rewritten_ratio})"))]
    return []


def _stats(keys: tuple[str, ...], rows: str) -> str:
    """Median and median absolute deviation of `l` per `keys` over the relation `rows`."""
    by = ", ".join(keys) or "true"
    join = f"USING ({', '.join(keys)})" if keys else "ON true"
    return f"""(WITH r AS MATERIALIZED ({rows}), m AS (SELECT {', '.join(keys + ('median(l) AS med',))} FROM r GROUP BY {by})
                SELECT {', '.join(keys + ('any_value(m.med) AS med', 'median(abs(r.l - m.med)) AS mad'))}
                FROM r JOIN m {join} GROUP BY {by})"""


NO_STATS = "(SELECT NULL::VARCHAR AS signal, NULL::VARCHAR AS program_code, NULL::DOUBLE AS med, NULL::DOUBLE AS mad)"


def _outlier_rows(con: duckdb.DuckDBPyConnection, settings: Settings, history: str) -> list[tuple]:
    """The day's exhibitions that are new or changed and lie more than k (floored) median
    absolute deviations of ln(1 + audience) from the median of their series in the history;
    for a series the history does not hold, of their signal's; for a signal it does not
    hold, of the whole history's. Logs, because audiences differ by orders of magnitude
    between programs and a unit mistake multiplies them; the median and its absolute
    deviation, because a few wild values do not move them.

    Over `plausibility_fresh` (the day's new or changed rows); a signal's or the whole
    history's statistics (millions of rows on a large day) are computed only when a row
    needs them."""
    try:
        past = (f"SELECT CAST(signal AS VARCHAR) AS signal, CAST(program_code AS VARCHAR) AS program_code,"
                f" ln(1 + average_audience) AS l FROM {history}")
        series = _stats(("signal", "program_code"),
                        f"SELECT * FROM ({past}) SEMI JOIN plausibility_fresh USING (signal, program_code)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE plausibility_series AS SELECT * FROM {series}")
        # the signals of rows from a series the history does not hold, and whether one is a new signal
        new_series = "SELECT DISTINCT signal FROM plausibility_fresh ANTI JOIN plausibility_series USING (signal, program_code)"
        signals, unknown = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE signal NOT IN (SELECT DISTINCT CAST(signal AS VARCHAR)"
            f" FROM {history})) FROM ({new_series})").fetchone()
        by_signal = _stats(("signal",), f"SELECT * FROM ({past}) SEMI JOIN ({new_series}) n USING (signal)") \
            if signals else NO_STATS
        overall = _stats((), f"SELECT l FROM ({past})") if unknown else NO_STATS
        return con.execute(f"""
            SELECT f.signal, f.program_code, f.exhibition_date, f.average_audience,
                   exp(coalesce(s.med, g.med, o.med)) - 1 AS typical, d.deviations,
                   CASE WHEN s.med IS NOT NULL THEN 'series' WHEN g.med IS NOT NULL THEN 'signal: a new series'
                        ELSE 'history: a new signal' END AS judged_by
            FROM plausibility_fresh f
            LEFT JOIN plausibility_series s USING (signal, program_code)
            LEFT JOIN (SELECT signal, med, mad FROM {by_signal}) g USING (signal)
            CROSS JOIN (SELECT med, mad FROM {overall}) o,
            LATERAL (SELECT abs(f.l - coalesce(s.med, g.med, o.med))
                            / greatest(coalesce(s.mad, g.mad, o.mad), $floor) AS deviations) d
            WHERE d.deviations > $k
            ORDER BY d.deviations DESC, f.signal, f.program_code, f.exhibition_date""",
            {"k": settings.dq_audience_outlier_mads, "floor": settings.dq_audience_mad_floor}).fetchall()
    finally:
        con.execute("DROP TABLE IF EXISTS plausibility_series")


def _outliers(con: duckdb.DuckDBPyConnection, settings: Settings, history: str) -> list[Finding]:
    k, floor = settings.dq_audience_outlier_mads, settings.dq_audience_mad_floor
    rows = _outlier_rows(con, settings, history)
    if len(rows) <= settings.dq_max_audience_outliers:
        return []
    shown = "; ".join(
        f"{signal}/{program} {day} {value:,.0f} ({deviations:.1f} deviations from the {typical:,.0f}"
        f" typical of its {judged_by})"
        for signal, program, day, value, typical, deviations, judged_by in rows[:SHOWN])
    return [Finding("audience-outliers", (
        f"{len(rows):,} exhibitions have an audience more than {k:g} median absolute deviations of"
        f" ln(1 + audience) (each at least {floor:g}) from their series' median in the history: {shown}"
        + (f"; and {len(rows) - SHOWN:,} more" if len(rows) > SHOWN else "")
        + f" (AIRTIME_DQ_AUDIENCE_OUTLIER_MADS={k:g}, AIRTIME_DQ_AUDIENCE_MAD_FLOOR={floor:g},"
        f" AIRTIME_DQ_MAX_AUDIENCE_OUTLIERS={settings.dq_max_audience_outliers})"))]
