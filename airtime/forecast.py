"""The one business rule, in DuckDB SQL (README.md, first section: the forecast of a slot).

For each slot (signal, program_code, date D): the median audience of the 4 most recent
exhibitions of the same signal and program, strictly before D, on D's weekday.

Computed without a fan-out join: at every exhibition, `lag` gives it and its 3 same-weekday
predecessors and their median is taken with least/greatest (exact: the middle value, or the
mean of the two middle ones); an ASOF join then picks, per slot, the latest exhibition
strictly before D. That is one sort of the history, O(n log n), which is what keeps the
10M-row benchmark in memory and fast: DuckDB's windowed `median()` over the same 4-row frame
gives the same numbers but was ~5x slower at 10M rows (bench/preprocess.py).
"""

from __future__ import annotations

HISTORY_DEPTH = 4


def merged_history_sql(previous: str | None, audience: str) -> str:
    """History after a delivery: one row per (signal, program_code, exhibition_date),
    the latest delivery wins. Takes `$run_date` as the delivery date of `audience`.

    The delivery replaces whatever earlier runs held for its keys, so an anti join does it
    (cheap: the hash table is built on the day's delivery, not on the whole history). It
    relies on what ingest guarantees: one row per key within a delivery. Rows an earlier
    attempt of the same run date (or a later date) delivered are not history up to this one."""
    fresh = (
        f"SELECT signal, program_code, exhibition_date, program_start_time, average_audience,"
        f" CAST($run_date AS DATE) AS delivered_on FROM {audience}"
    )
    if previous is None:
        return fresh
    return f"""
        {fresh}
        UNION ALL
        SELECT p.signal, p.program_code, p.exhibition_date, p.program_start_time,
               p.average_audience, p.delivered_on
        FROM {previous} p
        ANTI JOIN {audience} a USING (signal, program_code, exhibition_date)
        WHERE p.delivered_on < CAST($run_date AS DATE)
    """


def forecast_sql(history: str, availability: str) -> str:
    """Forecast rows for every slot of `availability` (left join: none is dropped)."""
    assert HISTORY_DEPTH == 4, "the median below is written out for up to 4 values"
    return f"""
        WITH slots AS (SELECT signal, program_code, date, available_time, isodow(date) AS dow
                       FROM {availability}),
        first_slot AS (SELECT signal, program_code, dow, min(date) AS first_date FROM slots GROUP BY ALL),
        recent AS (
            SELECT signal, program_code, isodow(exhibition_date) AS dow, exhibition_date,
                   row_number() OVER same_weekday AS n,
                   lead(exhibition_date) OVER same_weekday AS next_date,
                   average_audience AS a0,
                   lag(average_audience, 1) OVER same_weekday AS a1,
                   lag(average_audience, 2) OVER same_weekday AS a2,
                   lag(average_audience, 3) OVER same_weekday AS a3
            FROM {history}
            WINDOW same_weekday AS (
                PARTITION BY signal, program_code, isodow(exhibition_date) ORDER BY exhibition_date)
        ),
        candidates AS (
            -- the ASOF join below picks, per slot on D, the latest exhibition before D; an
            -- exhibition followed (same weekday) by another before the group's first slot is
            -- never that one. Dropping those leaves about one row per group to join: without
            -- it, the ASOF join sorted the whole history a second time.
            SELECT r.* FROM recent r
            JOIN first_slot f ON r.signal = f.signal AND r.program_code = f.program_code AND r.dow = f.dow
            WHERE r.next_date IS NULL OR r.next_date >= f.first_date
        ),
        rolling AS (
            -- median of the last min(n, 4): of 4, the two middle values are the larger of
            -- the pair minima and the smaller of the pair maxima; of 3, the middle one
            SELECT signal, program_code, dow, exhibition_date,
                   CASE
                       WHEN n >= 4 THEN (greatest(least(a0, a1), least(a2, a3))
                                         + least(greatest(a0, a1), greatest(a2, a3))) / 2
                       WHEN n = 3 THEN greatest(least(a0, a1), least(greatest(a0, a1), a2))
                       WHEN n = 2 THEN (a0 + a1) / 2
                       ELSE a0
                   END AS predicted_audience,
                   least(n, {HISTORY_DEPTH}) AS history_size
            FROM candidates
        )
        SELECT s.signal, s.program_code, s.date,
               CAST(s.dow - 1 AS TINYINT) AS weekday,
               CAST(s.available_time AS INTEGER) AS available_time,
               CAST(r.predicted_audience AS DOUBLE) AS predicted_audience,
               CAST(coalesce(r.history_size, 0) AS TINYINT) AS history_size
        FROM slots s
        ASOF LEFT JOIN rolling r
          ON s.signal = r.signal AND s.program_code = r.program_code AND s.dow = r.dow
         AND s.date > r.exhibition_date
        ORDER BY s.signal, s.program_code, s.date
    """
