"""What the rendered Argo resources depend on, gathered from the settings once.

A frozen value object so `render()` is a pure function of it: the golden files use
`WorkflowConfig.example()`, the commands use `WorkflowConfig.from_settings(settings)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airtime.errors import ConfigError
from airtime.settings import Settings
from workflows.pod_settings import config_map_data, explicit_values


@dataclass(frozen=True)
class StepResources:
    """Autopilot bills requests and sets limits equal to them: ask for what the step uses."""

    cpu: str = "500m"
    memory: str = "1Gi"
    ephemeral_storage: str = "1Gi"
    # the pod's /tmp (an emptyDir, where all its scratch goes) may hold this much before the
    # kubelet evicts the pod; empty: the whole ephemeral_storage (workflows/daily.py, _scratch)
    scratch: str = ""

    @property
    def scratch_size(self) -> str:
        return self.scratch or self.ephemeral_storage


@dataclass(frozen=True)
class WorkflowConfig:
    name: str
    namespace: str
    image: str
    service_account: str
    schedules: tuple[str, ...]
    timezone: str  # the CronWorkflow's; the pods read AIRTIME_TIMEZONE from `settings`
    webhook_secret: str
    ui_url: str
    # The settings ConfigMap every step mounts (envFrom): its name, and the data a standalone
    # render writes into it (env name -> value, workflows/pod_settings.py). The chart renders
    # with no data: its own ConfigMap, shared with the server, is the one mounted.
    settings: dict[str, str] = field(default_factory=dict)
    settings_config_map: str = ""  # empty: "<name>-settings"
    retry_limit: int = 4
    workflow_deadline_seconds: int = 4 * 3600
    step_deadline_seconds: int = 3600
    # keep a failed workflow long enough to `argo retry` it after a weekend
    ttl_after_success_seconds: int = 3 * 24 * 3600
    ttl_after_failure_seconds: int = 7 * 24 * 3600
    resources: dict[str, StepResources] = field(default_factory=dict)
    # Spot Pods for the templates that have a retryStrategy (catchup and the steps): a
    # preempted step exits 143/137 or loses its pod, and the retry redoes it safely (each
    # step skips itself when its manifest already matches its inputs). The exit handler
    # stays on standard nodes: an alert is not retried.
    spot: bool = True

    def resources_for(self, step: str) -> StepResources:
        return self.resources.get(step, StepResources())

    @property
    def settings_config_map_name(self) -> str:
        return self.settings_config_map or f"{self.name}-settings"

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkflowConfig:
        missing = [
            env
            for env, value in (
                ("AIRTIME_ARTIFACT_BUCKET", settings.artifact_bucket),
                ("AIRTIME_SOURCE", settings.source),
            )
            if not value
        ]
        if missing:
            raise ConfigError("rendering the workflows needs " + ", ".join(missing))
        assert settings.artifact_bucket and settings.source  # narrowed above
        if not settings.source.startswith("gs://"):
            raise ConfigError(f"AIRTIME_SOURCE must be a gs:// URI for the cluster, got {settings.source!r}")
        return cls(
            name=settings.workflow_name,
            namespace=settings.workflow_namespace,
            image=settings.workflow_image,
            service_account=settings.workflow_service_account,
            schedules=tuple(s.strip() for s in settings.workflow_schedule.split(",") if s.strip()),
            timezone=settings.timezone,
            webhook_secret=settings.workflow_webhook_secret,
            ui_url=settings.workflow_ui_url.rstrip("/"),
            # what the operator set, every pipeline setting alike (the gate's thresholds too)
            settings=config_map_data(explicit_values(settings)),
            resources=DEFAULT_RESOURCES,
        )

    @classmethod
    def example(cls) -> WorkflowConfig:
        """A fixed configuration: what the golden files are rendered from."""
        return cls(
            name="airtime-daily",
            namespace="airtime",
            image="us-docker.pkg.dev/example-project/airtime/airtime:0.1.0",
            service_account="airtime-pipeline",
            schedules=("0 6 * * *",),
            timezone="America/Sao_Paulo",
            webhook_secret="airtime-webhook",
            ui_url="https://argo.example.com",
            settings=config_map_data({
                "artifact_bucket": "example-airtime-artifacts",
                "source": "gs://example-airtime-source/deliveries",
                "gcp_project": "example-project",
                "timezone": "America/Sao_Paulo",
                "catchup_days": 7,
            }),
            resources=DEFAULT_RESOURCES,
        )


# Peak RSS measured with /usr/bin/time -v on the local profile (docs/operations-argo.md,
# "Pod sizes", `make bench` and `python -m bench.day --rows 50000000`): DuckDB holds at most
# Settings.duckdb_memory_limit (512MB) and spills the rest to the step's scratch folder, so
# memory is bounded, not flat: a step grows toward that limit plus the process (~0.2-0.4 GiB)
# as the day grows. Each step alone, the most of a first and a next day (the history merged),
# at 50M audience rows: ingest 831 MiB, preprocess 842, gate 805, load 710, verify 693, the
# whole day in one process (catchup) 1087 (at 10M: 800, 746, 751, 441, 377, catchup 1198).
# Limits = requests on Autopilot, so a peak above the request is an OOM kill (137, retried,
# and killed again): these give >= 1.3x headroom over those peaks (verify's old 512Mi, enough
# at 10M, would have been killed at 50M; the gate had the 1Gi default and no DuckDB limit;
# catchup's 1536Mi left 1.28x over a 10M next day; ingest refusing a bad last line: 891 MiB at
# 50M). Ephemeral storage holds what a step
# fetches (the source CSVs: 624 MiB at 10M rows, 3.1 GiB at 50M), writes (Parquet, ~170 MiB
# per 10M rows) and spills (a next day at 10M: preprocess 609 MB, gate 399 MB; at 50M 4.2 and
# 3.6 GB): sized here for a 10M-row day; scale it with the day (WorkflowConfig.resources).
# CPU is unchanged (not measured on pods): a step runs slower on 0.5 vCPU than on the 2-core
# machine of the table, inside its deadline (step_deadline_seconds).
DEFAULT_RESOURCES = {
    "catchup": StepResources(cpu="500m", memory="1792Mi", ephemeral_storage="3Gi"),
    "ingest": StepResources(cpu="500m", memory="1280Mi", ephemeral_storage="2Gi"),
    "preprocess": StepResources(cpu="500m", memory="1280Mi", ephemeral_storage="2Gi"),
    "gate": StepResources(cpu="500m", memory="1280Mi", ephemeral_storage="2Gi"),
    "load": StepResources(cpu="250m", memory="1Gi", ephemeral_storage="1Gi"),
    "verify": StepResources(cpu="250m", memory="1Gi", ephemeral_storage="1Gi"),
    "notify": StepResources(cpu="250m", memory="256Mi", ephemeral_storage="100Mi"),
}
