"""The composition root: which object store and warehouse each profile gets.

Like dagster's `RESOURCES_LOCAL` / `RESOURCES_PROD`, this is the one module that knows
the implementations; everything else takes an `ObjectStore` or a `Warehouse`.

    profile  artifacts                              warehouse
    local    folder  <home>/artifacts               DuckDB file <home>/warehouse.duckdb
    gcp      gs://<artifact_bucket>/<prefix>        BigQuery dataset <bq_dataset>

Sources follow their URI, whatever the profile: `gs://...` on Cloud Storage, `s3://...` on
S3, else a folder. The Google and AWS clients are imported only when such a resource is
opened, so the local profile runs (and starts) without loading them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import ConfigError
from airtime.settings import Settings
from airtime.store import LocalStore, ObjectStore
from airtime.warehouse import Warehouse


def bundled_sample() -> Path:
    """The synthetic sample shipped in the package (what `make run` ingests)."""
    return Path(str(resources.files("airtime") / "sample_data"))


def open_store(location: str | Path) -> ObjectStore:
    """A store for a local folder, a `gs://bucket/prefix` or an `s3://bucket/prefix` URI."""
    text = str(location)
    if text.startswith("gs://"):
        from airtime.gcs_store import GcsStore  # lazy: keeps the Google clients optional locally

        return GcsStore.from_uri(text)
    if text.startswith("s3://"):
        from airtime.s3_store import S3Store  # lazy: keeps boto3 optional for local runs

        return S3Store.from_uri(text)
    return LocalStore(Path(text))


def artifact_location(settings: Settings) -> str:
    if settings.profile == "gcp":
        if not settings.artifact_bucket:
            raise ConfigError("AIRTIME_ARTIFACT_BUCKET is required with the gcp profile")
        prefix = settings.artifact_prefix.strip("/")
        return f"gs://{settings.artifact_bucket}/{prefix}".rstrip("/")
    return str(settings.runs_root)


def artifact_store(settings: Settings) -> ObjectStore:
    return open_store(artifact_location(settings))


def publication_store(settings: Settings) -> ObjectStore | None:
    """Where the publication marker is (airtime/publication.py): the artifact store, if
    this process is told where it is; else None, and the server polls the ledger itself."""
    if settings.profile == "gcp" and not settings.artifact_bucket:
        return None
    return artifact_store(settings)


def source_location(settings: Settings, override: str | None = None) -> str:
    """Where the day's files are: the command line, then AIRTIME_SOURCE; the bundled sample
    only on the local profile (a cloud warehouse must never receive synthetic data)."""
    if override or settings.source:
        return str(override or settings.source)
    if settings.profile != "local":
        raise ConfigError(f"no source on the {settings.profile} profile: give --source or set"
                          " AIRTIME_SOURCE (the bundled sample is for the local profile only)")
    return str(bundled_sample())


def open_warehouse(settings: Settings) -> Warehouse:
    if settings.profile == "gcp":
        from airtime.bigquery_warehouse import BigQueryWarehouse  # lazy: see the module docstring

        return BigQueryWarehouse.from_settings(settings)
    return DuckDBWarehouse(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit)
