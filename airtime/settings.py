"""The one settings object, read from `AIRTIME_*` environment variables.

Parsed once at each entry point and passed down; nothing below reads os.environ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIRTIME_", extra="ignore")

    # -- which backends: "local" (folder + DuckDB file) or "gcp" (GCS + BigQuery)
    profile: Literal["local", "gcp"] = "local"
    # -- local state folder: artifacts under runs/, the DuckDB warehouse file
    home: Path = Path(".airtime")
    # -- where the day's two files are; a folder or gs://bucket/prefix. A `dt=YYYY-MM-DD`
    #    child of it, when present, holds that day's delivery.
    source: str | None = None
    # -- business timezone: "today" and scheduled run dates are taken in it
    timezone: str = "America/Sao_Paulo"
    # -- bad rows tolerated per run (quarantined, counted in the ledger); 0 = strict
    max_bad_rows: int = Field(default=0, ge=0)
    # -- log lines: "text" for a terminal, "json" (Cloud Logging fields) in containers
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # -- resilience drills: die like `kill -9` at this point (see airtime/faults.py)
    crash_at: str | None = None
    # -- with crash_at: fire only while this marker file does not exist yet
    crash_once: Path | None = None
    # -- days before the run date that a scheduled run also brings up to date (steps/catchup.py)
    catchup_days: int = Field(default=7, ge=0)

    # gcp profile
    gcp_project: str | None = None
    artifact_bucket: str | None = None
    artifact_prefix: str = ""
    bq_dataset: str = "airtime"
    bq_location: str = "US"
    bq_maximum_bytes_billed: int = 10 * 1024**3
    # -- BigQuery REST endpoint override (an emulator such as local-bigquery); a plain
    #    http:// endpoint is only ever an emulator, so no credentials are sent to it
    bq_api_endpoint: str | None = None

    # query service
    server_port: int = 50051
    # -- Prometheus /metrics over HTTP (0 = off); 9464, not Prometheus's own 9090
    metrics_port: int = 9464
    server_backend: Literal["snapshot", "warehouse"] = "snapshot"
    # -- request threads; default 4 for the snapshot backend (fewer threads, lower p99 under
    #    the GIL), 16 for the warehouse backend (requests wait on queries)
    server_threads: int | None = Field(default=None, ge=1)
    # -- how often the server reads the publication marker (airtime/publication.py)
    reload_interval_seconds: float = 30.0
    # -- how often it also asks the ledger itself, marker or not (one warehouse query)
    ledger_check_seconds: float = Field(default=3600.0, gt=0)
    max_range_days: int = 366
    max_page_size: int = 10_000
    default_page_size: int = 1_000
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tokens_file: Path | None = None
    tokens: str | None = None  # comma-separated bearer tokens

    # alerts
    webhook_url: str | None = None
    webhook_format: Literal["slack", "google_chat"] = "slack"

    # Argo workflows (`airtime workflows render|apply`; see workflows/)
    # -- name of the WorkflowTemplate and CronWorkflow
    workflow_name: str = "airtime-daily"
    # -- container image the steps run in (the project's image, pinned by digest in prod)
    workflow_image: str = "airtime:latest"
    workflow_namespace: str = "airtime"
    # -- Kubernetes service account bound to a Google one through Workload Identity
    workflow_service_account: str = "airtime-pipeline"
    # -- cron schedules, comma-separated, in `timezone`
    workflow_schedule: str = "0 6 * * *"
    # -- Secret (key `url`) holding the webhook URL, so it never lands in the YAML
    workflow_webhook_secret: str = "airtime-webhook"
    # -- Argo UI base URL for the link in alerts, e.g. https://argo.example.com
    workflow_ui_url: str = "https://argo.example.com"

    @property
    def runs_root(self) -> Path:
        return self.home / "artifacts"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"
