"""The REST baseline the gRPC service is measured against: FastAPI + pandas, the way
public solutions of this challenge typically serve the forecast (whole frame in memory,
boolean masks per request, JSON rows).

`python -m bench.rest_baseline --home DIR --port P` serves the latest published run of
the DuckDB warehouse in DIR.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from pathlib import Path

import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException

from airtime.duckdb_warehouse import DuckDBWarehouse


def create_app(frame: pd.DataFrame, run_date: dt.date) -> FastAPI:
    app = FastAPI()
    frame = frame.assign(date=pd.to_datetime(frame["date"]))

    def rows(selected: pd.DataFrame) -> list[dict]:
        out = selected.assign(date=selected["date"].dt.strftime("%Y-%m-%d")).to_dict(orient="records")
        for row in out:
            if isinstance(row["predicted_audience"], float) and math.isnan(row["predicted_audience"]):
                row["predicted_audience"] = None
        return out

    @app.get("/program")
    def program(program_code: str, date: dt.date, signal: str | None = None) -> dict:
        mask = (frame["program_code"] == program_code) & (frame["date"] == pd.Timestamp(date))
        if signal:
            mask &= frame["signal"] == signal
        selected = frame[mask]
        if selected.empty and not (frame["program_code"] == program_code).any():
            raise HTTPException(404, f"program {program_code} not found")
        return {"run_date": run_date.isoformat(), "slots": rows(selected)}

    @app.get("/period")
    def period(start: dt.date, end: dt.date, page_size: int = 1000, offset: int = 0) -> dict:
        mask = (frame["date"] >= pd.Timestamp(start)) & (frame["date"] <= pd.Timestamp(end))
        selected = frame[mask]
        return {"run_date": run_date.isoformat(), "total_size": len(selected),
                "slots": rows(selected.iloc[offset : offset + page_size])}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    warehouse = DuckDBWarehouse(args.home / "warehouse.duckdb")
    run = warehouse.latest_published()
    assert run is not None, "nothing published"
    frame = warehouse.read_forecast(run.run_date).to_pandas()
    uvicorn.run(create_app(frame, run.run_date), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
