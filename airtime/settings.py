"""The one settings object, read from `AIRTIME_*` environment variables.

Parsed once at each entry point and passed down; nothing below reads os.environ.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
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
    # -- off a terminal, a long step logs how far it got this often
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    # -- resilience drills: die like `kill -9` at this point (see airtime/faults.py)
    crash_at: str | None = None
    # -- with crash_at: fire only while this marker file does not exist yet
    crash_once: Path | None = None
    # -- data-quality gate (steps/gate.py), against the latest earlier published delivery
    #    and the published one of the same date (airtime/plausibility.py; the reason for each
    #    default is in docs/operations.md, "A delivery held by the data-quality gate"):
    #    hold a file with fewer rows than this share of the previous one's
    dq_min_rows_ratio: float = Field(default=0.5, ge=0, le=1)
    # -- hold when more signals than this have no availability, or no audience, any more
    dq_max_vanished_signals: int = Field(default=0, ge=0)
    # -- hold when a larger share of the (signal, program) series has no availability, or
    #    no audience, any more
    dq_max_vanished_series_ratio: float = Field(default=0.3, ge=0, le=1)
    # -- hold when the audience rewrites a larger share of the exhibitions history already held
    dq_max_rewritten_ratio: float = Field(default=0.1, ge=0, le=1)
    # -- hold when a larger share of the slots is dated before the delivery day (a file
    #    delivered a day late holds a day of them: 3% of a five-week file)
    dq_max_past_slots_ratio: float = Field(default=0.5, ge=0, le=1)
    # -- hold when the upcoming slots (dated on or after the delivery day) are fewer than this
    #    share of the previous delivery's upcoming slots (a day later, a file loses one day of
    #    slots and usually gains one: the real files a week apart keep 87%)
    dq_min_upcoming_slots_ratio: float = Field(default=0.7, ge=0, le=1)
    # -- hold when they span (first to last date) fewer days than this share of its span
    dq_min_upcoming_span_ratio: float = Field(default=0.5, ge=0, le=1)
    # -- hold when the available_time of a signal's upcoming slots, or of all of them, falls
    #    below this share of the previous delivery's (as the upcoming slots do)
    dq_min_available_time_ratio: float = Field(default=0.7, ge=0, le=1)
    # -- hold when more exhibitions than dq_max_audience_outliers have an audience further from
    #    their series' median than this many median absolute deviations (of ln(1 + audience),
    #    the deviation taken as at least dq_audience_mad_floor; a new series is measured
    #    against its signal, a new signal against the whole history). In the real files the
    #    furthest exhibition from the rest of its series is 8.8 deviations out.
    dq_audience_outlier_mads: float = Field(default=15.0, gt=0)
    dq_audience_mad_floor: float = Field(default=0.25, gt=0)
    dq_max_audience_outliers: int = Field(default=0, ge=0)
    # -- rules of time (ingest): no delivered date before this (0001-01-01 is a placeholder,
    #    not a broadcast), ...
    dq_earliest_date: dt.date = dt.date(1990, 1, 1)
    # -- ... nor more than this many days after the delivery day (ad time is sold a season or
    #    a year ahead; one slot on 9999-12-31 made the server's snapshot 121 MB larger)
    dq_horizon_days: int = Field(default=730, ge=0)
    # -- days before the run date that a scheduled run also brings up to date (steps/catchup.py)
    catchup_days: int = Field(default=7, ge=0)
    # -- `airtime prune`: artifacts of published generations whose date is more than this many
    #    days before the newest published date are removed (the one the oldest kept day
    #    builds on stays); at least catchup_days, so a catch-up never misses what it reads
    retention_days: int = Field(default=35, ge=1)
    # -- `airtime prune` also removes the warehouse rows of published generations whose date
    #    is more than this many days before the newest published date (the one the oldest
    #    kept day builds on stays; their ledger rows say `pruned`); 0 = keep every published
    #    date's rows. When set, at least retention_days
    warehouse_retention_days: int = Field(default=0, ge=0)
    # -- memory a DuckDB connection of a step (ingest, preprocess, the local warehouse) may
    #    hold before it spills to the step's scratch folder: a day of any size then fits its
    #    pod, only slower. Keep it 400 MiB or more under the pod's memory (Python and Arrow come on
    #    top; docs/operations-argo.md, "Pod sizes"). DuckDB syntax: "512MB", "2GB".
    duckdb_memory_limit: str = "512MB"

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
    # -- threads answering warehouse-backend requests (they wait on queries; default 16);
    #    the snapshot backend answers on the server's event loop and uses none
    server_threads: int | None = Field(default=None, ge=1)
    # -- how often the server reads the publication marker (airtime/publication.py)
    reload_interval_seconds: float = 30.0
    # -- how often it also asks the ledger itself, marker or not (one warehouse query)
    ledger_check_seconds: float = Field(default=3600.0, gt=0)
    # -- how often it reads the ledger for the pipeline's metrics (grpc_server/ledger_metrics.py;
    #    on BigQuery two small queries each time, at least 10 MB billed each)
    ledger_metrics_seconds: float = Field(default=300.0, gt=0)
    # -- the day's forecast is due by this time of day, in `timezone` (alert
    #    AirtimeForecastNotPublishedByDeadline; the server exports it as a Unix time)
    publish_deadline: dt.time = dt.time(7, 0)
    # -- alert (AirtimeBigQueryBytesBilledHigh) when the project's queries bill more than this
    #    many bytes in 24 h; the server exports it beside its other metrics
    bq_bytes_billed_alert_per_day: int = Field(default=100 * 1024**3, ge=0)
    max_range_days: int = 366
    max_page_size: int = 10_000
    default_page_size: int = 1_000
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tokens_file: Path | None = None
    tokens: str | None = None  # comma-separated bearer tokens
    # -- calls served at once, all connections together (past it: RESOURCE_EXHAUSTED);
    #    each open stream holds at most ~100 KB (one chunk plus the HTTP/2 window)
    server_max_concurrent_calls: int = Field(default=1000, ge=1)
    # -- concurrent streams per HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS)
    server_max_streams_per_connection: int = Field(default=100, ge=1)
    # -- a StreamSlots reader that takes no message for this long is dropped
    server_stream_idle_seconds: float = Field(default=30.0, gt=0)
    # -- connections are closed (GOAWAY) after this age, so clients reconnect and a
    #    Service spreads them over new replicas; then calls get the grace to finish
    server_max_connection_age_seconds: float = Field(default=300.0, gt=0)
    server_max_connection_age_grace_seconds: float = Field(default=30.0, ge=0)
    # -- a call's request message must arrive within this after its headers (a unary
    #    request is a few dozen bytes sent with them), else DEADLINE_EXCEEDED
    server_receive_seconds: float = Field(default=10.0, gt=0)
    # -- calls still waiting for their request message, all clients together; past it the
    #    oldest waiting call is dropped (RESOURCE_EXHAUSTED), never a call being answered
    server_max_waiting_calls: int = Field(default=1000, ge=1)
    # -- a new connection must finish its TLS and HTTP/2 preface within this
    server_handshake_seconds: float = Field(default=10.0, gt=0)
    # -- SIGTERM to exit, whatever clients do: readiness fails at once, both ports stop
    #    taking calls, running ones get the rest; keep it below the pod's
    #    terminationGracePeriodSeconds minus its preStop delay (the chart derives them)
    server_drain_seconds: float = Field(default=10.0, gt=0)

    # query client (`airtime query --server`): the bearer token it sends. `--token` puts it on
    # the command line, where every local user reads it in the process list; these do not
    # (the environment and the file are the caller's own). Default: the first of `tokens`
    query_token: str | None = None
    # -- a file holding it (its first line that is not blank or a `#` comment)
    query_token_file: Path | None = None

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

    @field_validator("warehouse_retention_days")
    @classmethod
    def _warehouse_keeps_what_the_store_keeps(cls, days: int, info: ValidationInfo) -> int:
        # the ledger marks an expired generation pruned: past that nothing removes its
        # artifacts, and a later day can no longer build on them
        retention = info.data.get("retention_days")
        if retention is not None and 0 < days < retention:
            raise ValueError(f"below AIRTIME_RETENTION_DAYS ({retention}): set it to {retention} or more,"
                             " or 0 to keep every published date's warehouse rows")
        return days

    @property
    def runs_root(self) -> Path:
        return self.home / "artifacts"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"
