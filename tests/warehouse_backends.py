"""Both warehouses behind one test face, and small run files in the pipeline's formats.

`python -m tests.warehouse_backends crash-load SPEC_JSON` loads a run with the
`load-before-commit` crash point armed, so a test can watch a process die mid-load.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from airtime import checksum
from airtime.schema import DATA_TABLES, TABLES
from airtime.warehouse import Figures, RunLoad, Warehouse

AUDIENCE = pa.schema([("signal", pa.string()), ("program_code", pa.string()),
                      ("exhibition_date", pa.date32()),
                      ("program_start_time", pa.timestamp("us", tz="UTC")),
                      ("average_audience", pa.float64())])
AVAILABILITY = pa.schema([("signal", pa.string()), ("program_code", pa.string()),
                          ("date", pa.date32()), ("available_time", pa.int32())])
FORECAST = pa.schema([("signal", pa.string()), ("program_code", pa.string()), ("date", pa.date32()),
                      ("weekday", pa.int8()), ("available_time", pa.int32()),
                      ("predicted_audience", pa.float64()), ("history_size", pa.int8())])


def write_run_files(folder: Path, run_date: dt.date, variant: int = 0, rows: int = 120) -> dict[str, Path]:
    """Parquet files as ingest/preprocess write them, with awkward values on purpose:
    non-ASCII codes, NULL predictions, values on a rounding edge, sub-millisecond times."""
    rng = random.Random(f"{run_date}-{variant}")
    folder.mkdir(parents=True, exist_ok=True)
    signals, codes = ["SP", "RJ", "MG", "NAC"], ["KVOB", "PIRV", "ÇÃO1", "A B", ""]
    audience, availability, forecast = [], [], []
    for i in range(rows):
        signal, code = signals[i % 4], f"{codes[i % 5]}{i // 20}"
        day = run_date - dt.timedelta(days=1 + i % 60)
        start = dt.datetime.combine(day, dt.time(20, i % 60, 7, 123456 + i), dt.UTC)
        audience.append((signal, code, day, start, round(rng.uniform(0, 2e6), 6) + 0.0005 * (i % 2)))
        slot = run_date + dt.timedelta(days=1 + i % 7)
        seconds = rng.randrange(0, 600)
        availability.append((signal, code, slot, seconds))
        history = i % 5
        prediction = None if history == 0 else rng.uniform(0, 1e6) + variant
        forecast.append((signal, code, slot, slot.weekday(), seconds, prediction, history))
    files = {}
    for table, schema, data in (("audience", AUDIENCE, audience),
                                ("availability", AVAILABILITY, availability),
                                ("forecast", FORECAST, forecast)):
        columns = list(zip(*data, strict=True))
        path = folder / f"{table}.parquet"
        pq.write_table(pa.table([pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)],
                                schema=schema), path)
        files[table] = path
    return files


def parquet_figures(files: dict[str, Path]) -> dict[str, Figures]:
    """What the manifests would say: DuckDB's figures of each file."""
    con = duckdb.connect()
    figures = {}
    for table in DATA_TABLES:
        rows, total = con.execute(checksum.duckdb_select(table, "read_parquet($path)"),
                                  {"path": str(files[table])}).fetchone()
        figures[table] = Figures(int(rows), int(total))
    return figures


def run_load(run_date: dt.date, files: dict[str, Path], digest: str = "digest-1") -> RunLoad:
    # one generation per digest: a test's second load with another digest is a new delivery
    return RunLoad(run_date=run_date, generation=digest, input_digest=digest, files=files,
                   figures=parquet_figures(files), started_at=dt.datetime.now(dt.UTC))


@dataclass
class Backend:
    """A warehouse plus what a test needs to reach around it (tamper, respawn)."""

    kind: str  # "duckdb" | "bigquery"
    spec: dict  # JSON-able: enough for another process to open the same warehouse

    def open(self) -> Warehouse:
        return open_spec(self.spec)

    def execute(self, sql: str) -> None:
        """Run DML behind the warehouse's back; `{forecast}` etc. name its tables."""
        names = {table.name: self._table(table.name) for table in TABLES}
        statement = sql.format(**names)
        if self.kind == "duckdb":
            con = duckdb.connect(self.spec["path"])
            try:
                con.execute(statement)
            finally:
                con.close()
        else:
            self.open().client.query(statement).result()

    def _table(self, name: str) -> str:
        if self.kind == "duckdb":
            return name
        return f"`{self.spec['project']}.{self.spec['dataset']}.{name}`"


def open_spec(spec: dict) -> Warehouse:
    if spec["kind"] == "duckdb":
        from airtime.duckdb_warehouse import DuckDBWarehouse

        return DuckDBWarehouse(Path(spec["path"]))
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from airtime.bigquery_warehouse import BigQueryWarehouse

    client = bigquery.Client(project=spec["project"], credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": spec["endpoint"]})
    return BigQueryWarehouse(client, spec["dataset"], maximum_bytes_billed=10**9)


def duckdb_backend(folder: Path) -> Backend:
    return Backend("duckdb", {"kind": "duckdb", "path": str(folder / "warehouse.duckdb")})


def bigquery_backend(endpoint: str, project: str) -> Backend:
    dataset = f"airtime_{uuid.uuid4().hex[:10]}"  # a fresh dataset per test
    return Backend("bigquery", {"kind": "bigquery", "endpoint": endpoint, "project": project,
                                "dataset": dataset})


def _crash_load(spec_json: str) -> None:
    from airtime import faults

    spec = json.loads(spec_json)
    run_date = dt.date.fromisoformat(spec["run_date"])
    files = {table: Path(path) for table, path in spec["files"].items()}
    faults.arm("load-before-commit")
    open_spec(spec["warehouse"]).load_run(run_load(run_date, files, spec["digest"]))
    sys.exit(0)  # not reached when the crash point fires


if __name__ == "__main__":
    if sys.argv[1:2] == ["crash-load"]:
        _crash_load(sys.argv[2])
