"""The warehouse on BigQuery (gcp profile), with DuckDBWarehouse's semantics.

A load stages each Parquet file in its own staging table (a load job whose id is the
run date plus the file's content digest: a retried step finds its job instead of
loading again), then replaces the run's rows and its ledger row in ONE multi-statement
transaction, so a crash leaves either the previous state or the new one, never a mix.
Every query is parameterized, capped by `maximum_bytes_billed`, and filtered on the
`run_date` partition (the data tables require that filter).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_RETRY

from airtime import checksum, faults
from airtime.bigquery_schema import (
    DATASET_DESCRIPTION,
    LABELS,
    RUN_COLUMNS,
    STAGING_EXPIRY,
    TABLE_DEFINITIONS,
    staging_schema,
)
from airtime.errors import ConfigError, StorageError, SupersededError
from airtime.schema import ATTEMPTS, DATA_TABLES, FORECAST, GENERATION, TableKey
from airtime.settings import Settings
from airtime.warehouse import (
    FAILED,
    LEGACY,
    LOADED,
    PRUNED,
    PUBLISHED,
    SUPERSEDED,
    Attempt,
    Figures,
    LedgerReads,
    RunLoad,
    RunRecord,
    SlotFilter,
    attempt_of,
    check_expirable,
    filter_clauses,
    generation_of_row,
    ledger_row,
    record_of,
    superseded_message,
)

log = logging.getLogger(__name__)

RETRY_TIMEOUT_SECONDS = 300.0
_PROJECT = re.compile(r"^[a-z][a-z0-9.:-]{0,62}[a-z0-9]$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _param(name: str, value: object) -> bigquery.ScalarQueryParameter:
    kind = {dt.datetime: "TIMESTAMP", dt.date: "DATE", int: "INT64", str: "STRING"}[type(value)]
    return bigquery.ScalarQueryParameter(name, kind, value)


class BigQueryWarehouse(LedgerReads):
    PARAM_MARK = "@"

    def __init__(self, client: bigquery.Client, dataset: str, *, project: str | None = None,
                 location: str = "US", maximum_bytes_billed: int = 10 * 1024**3,
                 retry_timeout: float = RETRY_TIMEOUT_SECONDS) -> None:
        self.client = client
        # transient API faults are retried for a while, then surface as StorageError (exit 5)
        # and the orchestrator retries the step. Failed query jobs are not re-run here: the
        # client's job retry has a fixed 10-minute budget that would hide an outage.
        self._retry = DEFAULT_RETRY.with_timeout(retry_timeout)
        self.project = project or client.project
        self.dataset = dataset
        self.location = location
        self.maximum_bytes_billed = maximum_bytes_billed
        # identifiers cannot be query parameters: accept only valid names
        if not self.project or not _PROJECT.match(self.project):
            raise ConfigError(f"invalid Google Cloud project id {self.project!r}")
        if not _DATASET.match(dataset):
            raise ConfigError(f"invalid BigQuery dataset name {dataset!r} (letters, digits, _)")
        self._ensured = False

    @classmethod
    def from_settings(cls, settings: Settings) -> BigQueryWarehouse:
        options, credentials = None, None
        if settings.bq_api_endpoint:
            options = {"api_endpoint": settings.bq_api_endpoint}
            if settings.bq_api_endpoint.startswith("http://"):
                if not settings.gcp_project:  # else the client would go looking for one
                    raise ConfigError("AIRTIME_GCP_PROJECT is required with an emulator endpoint")
                credentials = AnonymousCredentials()
        try:
            client = bigquery.Client(project=settings.gcp_project, location=settings.bq_location,
                                     credentials=credentials, client_options=options)
        except (auth_exceptions.DefaultCredentialsError, OSError) as exc:
            raise ConfigError(
                "no Google credentials for BigQuery: run `gcloud auth application-default login`"
                f" or use Workload Identity, and set AIRTIME_GCP_PROJECT ({exc})"
            ) from exc
        return cls(client, settings.bq_dataset, project=settings.gcp_project,
                   location=settings.bq_location,
                   maximum_bytes_billed=settings.bq_maximum_bytes_billed)

    # -- plumbing ---------------------------------------------------------------------

    def _table(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    def _sql_table(self, name: str) -> str:
        return f"`{self._table(name)}`"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Every client or job failure becomes a StorageError saying what failed."""
        try:
            yield
        except api_exceptions.Forbidden as exc:
            raise StorageError(f"BigQuery {what}: permission denied in {self.project}.{self.dataset}"
                               f" (the service account needs BigQuery roles there): {exc}") from exc
        except api_exceptions.NotFound as exc:
            raise StorageError(f"BigQuery {what}: not found in {self.project}.{self.dataset}: "
                               f"{exc}") from exc
        except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError,
                OSError, TimeoutError) as exc:
            raise StorageError(f"BigQuery {what}: {exc}") from exc

    def _query(self, sql: str, params: dict[str, object] | None = None, *, what: str,
               extra: Sequence[bigquery.ScalarQueryParameter] = ()) -> bigquery.QueryJob:
        config = bigquery.QueryJobConfig(
            query_parameters=[_param(k, v) for k, v in (params or {}).items()] + list(extra),
            maximum_bytes_billed=self.maximum_bytes_billed,
            labels=LABELS,
        )
        with self._errors(what):
            job = self.client.query(sql, job_config=config, location=self.location,
                                    retry=self._retry, job_retry=None)
            job.result(retry=self._retry)
        return job

    def ensure_schema(self) -> None:
        """Create the dataset and tables if missing (idempotent; once per instance)."""
        if self._ensured:
            return
        with self._errors("create dataset and tables"):
            # look before creating: with least privilege (dataEditor on the dataset only),
            # creating an existing dataset is refused (403) rather than a harmless 409
            try:
                self.client.get_dataset(f"{self.project}.{self.dataset}", retry=self._retry)
            except api_exceptions.NotFound:
                dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
                dataset.location = self.location
                dataset.description = DATASET_DESCRIPTION
                dataset.labels = LABELS
                self.client.create_dataset(dataset, exists_ok=True, retry=self._retry)
            for definition in TABLE_DEFINITIONS:
                table = self.client.create_table(definition.table(self._table(definition.name)),
                                                 exists_ok=True, retry=self._retry)
                self._add_generation(table)
        self._ensured = True

    def _add_generation(self, table: bigquery.Table) -> None:
        """A table created before generations gains the nullable `generation` column; its
        rows keep NULL there, which every query reads as the LEGACY generation. BigQuery adds
        a column to an existing table only as NULLABLE (or REPEATED), at the end, with NULL
        in the existing rows (https://cloud.google.com/bigquery/docs/managing-table-schemas,
        "Add an empty column"), hence the COALESCE in every generation predicate."""
        if table.schema and all(field.name != GENERATION.name for field in table.schema):
            table.schema = [*table.schema, bigquery.SchemaField(GENERATION.name, "STRING", mode="NULLABLE",
                                                                description=GENERATION.description)]
            self.client.update_table(table, ["schema"], retry=self._retry)
            log.info("table %s: added the generation column (existing rows: legacy)", table.table_id)

    # -- writes -----------------------------------------------------------------------

    def _stage(self, run_date: dt.date, table: str, path: Path) -> str:
        """Load one Parquet file into its staging table; return the table id.

        The job id is deterministic (dataset, table, run date, content digest): a retried
        step submitting the same load gets Conflict and waits for the job already there.
        That job only counts if its staging table still holds the file's rows: a step
        killed mid-upload can leave a job with nothing loaded, and a committed run drops
        its staging tables; either way the file is loaded again under a fresh job id."""
        digest = _sha256(path)[:20]
        stem = f"{table}_{run_date:%Y%m%d}_{digest}"
        staging_id = self._table(f"_staging_{stem}")
        job_id = f"airtime_load_{self.dataset}_{stem}"  # job ids are project-wide
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=staging_schema(table),
            labels=LABELS,
        )
        what = f"load of {path.name} into {staging_id}"
        with self._errors(what):
            staging = bigquery.Table(staging_id, schema=staging_schema(table))
            staging.expires = _now() + STAGING_EXPIRY  # a crashed load's leftovers go away
            self.client.create_table(staging, exists_ok=True, retry=self._retry)
            try:
                job = self._submit_load(path, staging_id, job_id, config)
            except api_exceptions.Conflict:
                log.info("load job %s exists (a retried step): waiting for it", job_id)
                if self._earlier_load_holds(job_id, staging_id, pq.ParquetFile(path).metadata.num_rows):
                    return staging_id
                job = self._submit_load(path, staging_id, f"{job_id}_{time.time_ns()}", config)
            job.result(retry=self._retry)
        return staging_id

    def _earlier_load_holds(self, job_id: str, staging_id: str, rows: int) -> bool:
        """Whether the earlier job `job_id` succeeded and its staging table holds `rows`."""
        try:
            self.client.get_job(job_id, location=self.location, retry=self._retry).result(retry=self._retry)
        except api_exceptions.GoogleAPICallError as exc:
            log.warning("earlier load job %s failed (%s): loading again", job_id, exc)
            return False
        job = self._query(f"SELECT COUNT(*) AS n FROM `{staging_id}`", what=f"row count of {staging_id}")
        found = next(iter(job.result(retry=self._retry)))["n"]
        if found != rows:
            log.warning("earlier load job %s left %s rows in %s, not %s: loading again",
                        job_id, found, staging_id, rows)
        return found == rows

    def _submit_load(self, path: Path, staging_id: str, job_id: str,
                     config: bigquery.LoadJobConfig) -> bigquery.LoadJob:
        with Path(path).open("rb") as fh:
            return self.client.load_table_from_file(fh, staging_id, job_id=job_id,
                                                    job_config=config, location=self.location)

    def load_run(self, load: RunLoad) -> None:
        self.ensure_schema()
        staged = {key: self._stage(load.run_date, key, load.files[key]) for key in DATA_TABLES}
        faults.crash_point("load-before-commit")
        statements = ["BEGIN TRANSACTION;"]
        for key, table in DATA_TABLES.items():
            name, columns = table.name, ", ".join(table.names)
            statements.append(f"DELETE FROM {self._sql_table(name)} WHERE run_date = @run_date"
                              f" AND {generation_of_row('@')};")
            statements.append(f"INSERT INTO {self._sql_table(name)} (run_date, generation, {columns})"
                              f" SELECT @run_date, @generation, {columns} FROM `{staged[key]}`;")
        row = {name: value for name, value in ledger_row(load, _now()).items() if value is not None}
        statements.append(_REPLACE_LEDGER_ROW.format(
            runs=self._sql_table("runs"), columns=", ".join(row),
            values=", ".join(f"@{name}" for name in row)))
        statements.append("COMMIT TRANSACTION;")
        self._query("\n".join(statements), row, what=f"load transaction of run {load.run_date}")
        for staging_id in staged.values():
            with contextlib.suppress(api_exceptions.GoogleAPIError):  # expiry cleans up anyway
                self.client.delete_table(staging_id, not_found_ok=True, retry=self._retry)

    def publish(self, run_date: dt.date, generation: str, input_digest: str) -> None:
        self.ensure_schema()
        params = {"run_date": run_date, "generation": generation}
        runs = self._sql_table("runs")
        records = self.generations(run_date)
        mine = [r for r in records if r.generation == generation
                and r.input_digest == input_digest and r.state in (LOADED, PUBLISHED)]
        if not mine:
            raise StorageError(
                f"cannot publish run {run_date} generation {generation}: the ledger has no loaded"
                f" generation with digest {input_digest[:12]} (loaded by another attempt?)")
        later = [r for r in records if r.state == PUBLISHED and r.generation != generation
                 and r.loaded_at and mine[0].loaded_at and r.loaded_at > mine[0].loaded_at]
        if later:
            raise SupersededError(superseded_message(run_date, generation, later[0].generation,
                                                     later[0].loaded_at))
        # the generation published now, if another: it is superseded and its rows go with the
        # switch (named here, not by a subquery: the emulator plans those slowly)
        previous = [r.generation for r in records if r.state == PUBLISHED and r.generation != generation]
        statements = [
            "BEGIN TRANSACTION;",
            f"UPDATE {runs} SET state = @superseded WHERE run_date = @run_date AND state = @published"
            f" AND NOT {generation_of_row('@')};",
            f"UPDATE {runs} SET state = @published, published_at = @now, failed_step = NULL, error = NULL"
            f" WHERE run_date = @run_date AND {generation_of_row('@')} AND input_digest = @digest"
            " AND state IN (@loaded, @published);",
        ]
        for table in DATA_TABLES.values() if previous else ():
            statements.append(f"DELETE FROM {self._sql_table(table.name)} WHERE run_date = @run_date"
                              f" AND COALESCE(generation, '{LEGACY}') = @previous;")
        statements.append("COMMIT TRANSACTION;")
        self._query("\n".join(statements),
                    {**params, "published": PUBLISHED, "superseded": SUPERSEDED, "loaded": LOADED,
                     "now": _now(), "digest": input_digest, **({"previous": previous[0]} if previous else {})},
                    what=f"publish of run {run_date} generation {generation}")

    def record_failure(self, run_date: dt.date, generation: str, step: str, message: str, *,
                       state: str = FAILED, demote: bool = False) -> None:
        self.ensure_schema()
        self._query(
            _MERGE_FAILED.format(runs=self._sql_table("runs")),
            # `published`: the state a failure leaves alone, none when demoting
            {"run_date": run_date, "generation": generation, "failed": state,
             "published": "" if demote else PUBLISHED, "now": _now(), "step": step, "error": message[:2000]},
            what=f"ledger update of run {run_date}",
        )

    def remove_generation(self, run_date: dt.date, generation: str) -> None:
        self.ensure_schema()
        record = self.generation_record(run_date, generation)
        if record is not None and record.state == PUBLISHED:
            raise StorageError(f"run {run_date} generation {generation} is published: not removed")
        self._query(self._drop_generation_sql(), {"run_date": run_date, "generation": generation, "pruned": PRUNED},
                    what=f"removal of run {run_date} generation {generation}")

    def _drop_generation_sql(self, only_if: str = "") -> str:
        """One transaction: the generation's rows out of every data table, then its ledger row
        marked pruned (`only_if`: a further condition on that row's update)."""
        statements = ["BEGIN TRANSACTION;"]
        for table in DATA_TABLES.values():
            statements.append(f"DELETE FROM {self._sql_table(table.name)} WHERE run_date = @run_date"
                              f" AND {generation_of_row('@')};")
        statements.append(f"UPDATE {self._sql_table('runs')} SET state = @pruned WHERE run_date = @run_date"
                          f" AND {generation_of_row('@')}{only_if};")
        statements.append("COMMIT TRANSACTION;")
        return "\n".join(statements)

    def expire_generation(self, run_date: dt.date, generation: str) -> None:
        # A separate operation, not a looser remove_generation: removing a published
        # generation takes its date away from every reader, which only retention may decide,
        # and only for a date older than another published one. Each DELETE names the date's
        # partition (run_date), so it reads and rewrites that partition alone.
        self.ensure_schema()
        record = self.generation_record(run_date, generation)
        if record is not None and record.state == PRUNED:
            return  # a prune killed after this: done
        newest = self.latest_published()
        check_expirable(run_date, generation, record and record.state, newest and newest.run_date)
        # the ledger row only while still published: a publish of the date in between
        # superseded it (and removed its rows itself)
        self._query(self._drop_generation_sql(only_if=" AND state = @published"),
                    {"run_date": run_date, "generation": generation, "pruned": PRUNED, "published": PUBLISHED},
                    what=f"expiry of run {run_date} generation {generation}")

    def start_attempt(self, attempt: Attempt) -> None:
        self.ensure_schema()
        row = {k: v for k, v in dataclasses.asdict(attempt).items() if v is not None}
        self._query(f"INSERT INTO {self._sql_table('attempts')} ({', '.join(row)})"
                    f" VALUES ({', '.join('@' + name for name in row)})", row,
                    what=f"attempt record of {attempt.step} {attempt.run_date}")

    def end_attempt(self, attempt_id: str, state: str, ended_at: dt.datetime, error: str | None = None) -> None:
        self.ensure_schema()
        self._query(f"UPDATE {self._sql_table('attempts')} SET state = @state, ended_at = @ended_at,"
                    " error = @error WHERE attempt_id = @attempt_id",
                    {"attempt_id": attempt_id, "state": state, "ended_at": ended_at},
                    extra=[bigquery.ScalarQueryParameter("error", "STRING", error)],
                    what=f"attempt record {attempt_id}")

    def attempts(self, run_date: dt.date | None = None) -> list[Attempt]:
        where, params = ("WHERE run_date = @run_date", {"run_date": run_date}) if run_date else ("", {})
        sql = (f"SELECT {', '.join(ATTEMPTS.names)} FROM {self._sql_table('attempts')} {where}"
               " ORDER BY started_at DESC")
        try:
            job = self._query(sql, params, what="attempts read")
        except StorageError as exc:
            if isinstance(exc.__cause__, api_exceptions.NotFound):  # nothing run yet
                return []
            raise
        with self._errors("attempts read"):
            return [attempt_of(row) for row in job.result(retry=self._retry)]

    # -- reads ------------------------------------------------------------------------

    def figures(self, run_date: dt.date, generation: str,
                versions: Mapping[TableKey, int] | None = None) -> dict[str, Figures]:
        # one job for the three tables: each SELECT reads only the run's partition
        parts = [
            f"SELECT '{key}' AS kind, * FROM (" + checksum.bigquery_select(
                key, self._sql_table(table.name), f"WHERE run_date = @run_date AND {generation_of_row('@')}",
                (versions or {}).get(key, checksum.CURRENT)) + ")"
            for key, table in DATA_TABLES.items()
        ]
        job = self._query(" UNION ALL ".join(parts), {"run_date": run_date, "generation": generation},
                          what=f"figures of run {run_date}")
        with self._errors(f"figures of run {run_date}"):
            rows = {row["kind"]: row for row in job.result(retry=self._retry)}
        return {key: Figures(rows=int(rows[key]["rows"]), checksum=int(rows[key]["checksum"]))
                for key in DATA_TABLES}

    def _records(self, where: str = "", params: dict[str, object] | None = None) -> list[RunRecord]:
        sql = (f"SELECT {RUN_COLUMNS} FROM {self._sql_table('runs')} {where}"
               " ORDER BY run_date DESC")
        try:
            job = self._query(sql, params, what="ledger read")
        except StorageError as exc:
            # nothing loaded yet (no dataset or ledger): an empty ledger, as DuckDB's
            if isinstance(exc.__cause__, api_exceptions.NotFound):
                return []
            raise
        with self._errors("ledger read"):
            return [record_of(row) for row in job.result(retry=self._retry)]

    def read_forecast(self, run_date: dt.date, where: SlotFilter | None = None,
                      generation: str | None = None) -> pa.Table:
        clauses, params = filter_clauses(run_date, where, "@", generation, runs=self._sql_table("runs"))
        job = self._query(
            f"SELECT {', '.join(FORECAST.names)} FROM {self._sql_table('forecast')}"
            f" WHERE {' AND '.join(clauses)} ORDER BY signal, program_code, date",
            params, what=f"forecast read of run {run_date}")
        with self._errors(f"forecast read of run {run_date}"):
            # the REST path: no BigQuery Storage client (the emulator has none we rely on)
            table = job.result(retry=self._retry).to_arrow(create_bqstorage_client=False)
        return table.select(FORECAST.names).cast(FORECAST.arrow_schema)


# The ledger row is replaced (as DuckDB's INSERT OR REPLACE does) by DELETE + INSERT inside
# the load transaction: local-bigquery cannot run MERGE inside a transaction, and both
# statements are as atomic there as a MERGE would be, on either engine.
_REPLACE_LEDGER_ROW = """DELETE FROM {runs} WHERE run_date = @run_date AND COALESCE(generation, 'legacy') = @generation;
INSERT INTO {runs} ({columns}) VALUES ({values});"""

# a failure never demotes a published run: the served data stays what verify approved
_MERGE_FAILED = """MERGE {runs} AS r
USING (SELECT @run_date AS run_date, @generation AS generation) AS s
  ON r.run_date = s.run_date AND COALESCE(r.generation, 'legacy') = s.generation
WHEN MATCHED THEN UPDATE SET failed_step = @step, error = @error,
  state = IF(r.state = @published, r.state, @failed)
WHEN NOT MATCHED THEN INSERT (run_date, generation, state, input_digest, started_at, failed_step, error)
  VALUES (@run_date, @generation, @failed, '', @now, @step, @error)"""

