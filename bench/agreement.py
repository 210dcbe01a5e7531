"""Whether two forecasts (Parquet files) hold the same slots and the same predictions: the
check both benchmarks make before they quote a ratio."""

from __future__ import annotations

from pathlib import Path


def agreement(ours: Path, theirs: Path, ours_name: str) -> dict:
    """Row counts of each side (`<ours_name>_rows`, `pandas_rows`), slots on one side only,
    slots that differ, and the largest relative difference of a prediction."""
    import duckdb  # here: the benchmarks' pandas workers import this module and must not load it

    row = duckdb.sql(f"""
        WITH d AS (SELECT * FROM read_parquet('{ours}')),
             p AS (SELECT signal, program_code, CAST(date AS DATE) AS date, weekday, available_time,
                          predicted_audience, history_size FROM read_parquet('{theirs}'))
        SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM p),
               count(*) FILTER (WHERE d.signal IS NULL OR p.signal IS NULL),
               count(*) FILTER (WHERE d.history_size IS DISTINCT FROM p.history_size
                                OR d.weekday IS DISTINCT FROM p.weekday
                                OR d.available_time IS DISTINCT FROM p.available_time
                                OR (d.predicted_audience IS NULL) <> (p.predicted_audience IS NULL)),
               coalesce(max(abs(d.predicted_audience - p.predicted_audience)
                            / greatest(abs(p.predicted_audience), 1e-300)), 0)
        FROM d FULL JOIN p USING (signal, program_code, date)
    """).fetchone()
    return {f"{ours_name}_rows": row[0], "pandas_rows": row[1], "unmatched": row[2], "different": row[3],
            "max_relative_difference": row[4]}
