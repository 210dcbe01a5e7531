"""The daily job as Argo resources: a WorkflowTemplate holding the DAG and a CronWorkflow
starting it every day.

    catchup -> ingest -> preprocess -> gate -> load -> verify    (the steps: steps/dag.py)
    onExit: notify (on failure)

`catchup` goes first: it turns the cron's scheduled time into the run date in the
business timezone, brings earlier missed days up to date, and hands the run date to the
steps. The steps and their dependencies are generated from steps/dag.py, the declaration
`airtime run` runs too: each step is one pod running `python -m steps.<step>`, and what it
passes on is the URI of the manifest it wrote to the artifact bucket, never data.

No template `memoize`: resuming is the steps' own job (each skips itself when its manifest
was written for exactly its current inputs, steps/scaffold.py) and Argo's `retry` and
`resubmit --memoized` reuse the succeeded nodes; docs/operations-argo.md says why.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    DAG,
    ConfigMapEnvFrom,
    Container,
    CronWorkflow,
    Env,
    Parameter,
    RetryStrategy,
    Task,
    WorkflowTemplate,
)
from hera.workflows import models as m

from airtime.errors import NOT_RETRIED_EXIT_CODES
from steps.dag import STEPS
from steps.scaffold import Step
from workflows.config import WorkflowConfig
from workflows.pod_settings import STEP_OVERRIDES

OUTPUTS = "/tmp/outputs"
APP_LABELS = {"app.kubernetes.io/name": "airtime", "app.kubernetes.io/component": "pipeline"}

# Exit codes that mean "retrying cannot help" come from the errors themselves
# (airtime/errors.py: bad settings, bad input, failed verification, an upstream step not
# run...). Everything else is retried: storage/warehouse faults (5), but also 1 (an
# unexpected exception, often a network error deep in a client library), 137/143 (OOM
# kill, node preemption on Autopilot) and pods that never got an exit code. A deny-list
# fails safe when a new transient failure mode appears; an allow-list of 5 alone would
# leave the day failed on the first preempted node.
RETRY_EXPRESSION = "!(lastRetry.exitCode in [" + ", ".join(f'"{c}"' for c in NOT_RETRIED_EXIT_CODES) + "])"


def _retry(config: WorkflowConfig) -> RetryStrategy:
    # retryPolicy Always: pod-level errors (eviction, deleted pod) are retried too, not only
    # non-zero exits; the expression then vetoes the deterministic failures.
    # No backoff.maxDuration: Argo counts it from the FIRST attempt's start and fails the node
    # once it has passed (argo-workflows v4.1.2 workflow/controller/operator.go:1079-1093), and
    # makes it every retry pod's deadline too (operator.go:1146-1147, the pod's ARGO_DEADLINE
    # in workflowpod.go:993-1002, enforced by the wait container). With `1h`, a catch-up
    # preempted after an hour was never retried, and a retry started at minute 55 had 5
    # minutes. The bounds are instead: the limit; each attempt's own activeDeadlineSeconds (a
    # step's 1 h, catchup's the workflow's), which every pod gets afresh; and the workflow's
    # activeDeadlineSeconds, which cuts every pod's deadline to what is left of it
    # (workflowpod.go:449-467) and stops the retries once passed (operator.go:1066-1075).
    return RetryStrategy(
        limit=config.retry_limit,
        retry_policy="Always",
        expression=RETRY_EXPRESSION,
        backoff=m.Backoff(duration="30s", factor=m.IntOrString(root=2), cap="10m"),
    )


def _env_from(config: WorkflowConfig) -> list[ConfigMapEnvFrom]:
    """The settings every pod shares: the settings ConfigMap, whole (workflows/pod_settings.py
    says which fields it holds). A template's `container` is a Kubernetes Container, copied
    into the pod as it is, envFrom included (argo-workflows v4.1.2
    pkg/apis/workflow/v1alpha1/workflow_types.go:737, workflow/controller/operator.go:3378);
    Hera writes it from `env_from` (examples/workflows/misc/env_from.py). Not optional: a step
    without its settings would run on defaults; its container does not start until the
    ConfigMap exists (CreateContainerConfigError) instead."""
    return [ConfigMapEnvFrom(name=config.settings_config_map_name)]


def _env() -> list[Env]:
    """What each step sets over the ConfigMap (a container's env wins over its envFrom)."""
    values = {
        **STEP_OVERRIDES,
        # a read-only root filesystem: no .pyc files, and logs leave the pod at once
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    return [Env(name=k, value=v) for k, v in values.items()]


def _webhook_env(config: WorkflowConfig) -> list[m.EnvVar]:
    secret = m.SecretKeySelector(name=config.webhook_secret, key="url", optional=True)
    return [m.EnvVar(name="AIRTIME_WEBHOOK_URL", value_from=m.EnvVarSource(secret_key_ref=secret))]


def _resources(config: WorkflowConfig, step: str) -> m.ResourceRequirements:
    r = config.resources_for(step)
    amounts = {
        "cpu": m.Quantity(root=r.cpu),
        "memory": m.Quantity(root=r.memory),
        "ephemeral-storage": m.Quantity(root=r.ephemeral_storage),
    }
    # Autopilot forces limits = requests; saying so keeps `kubectl diff` quiet
    return m.ResourceRequirements(requests=amounts, limits=dict(amounts))


def _scratch(config: WorkflowConfig, step: str) -> list[m.Volume]:
    """The pod's /tmp, where all its scratch goes (fetched sources, Parquet on its way out,
    DuckDB's spill): an emptyDir as large as the step's ephemeral-storage (or its own `scratch`),
    declared on the step's template so each step gets its own size. Argo looks a mount's volume
    up in the template's `volumes` before the workflow's (argo-workflows v4.1.2
    workflow/controller/workflowpod.go:1453-1464). The kubelet evicts a pod whose emptyDir
    outgrows its sizeLimit, or whose pod-wide use (emptyDirs, logs, writable layers) outgrows
    the sum of its containers' ephemeral-storage limits, the step's plus Argo's init and wait
    ones (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
    #local-ephemeral-storage): a Failed node with the kubelet's message for its message
    (operator.go:1786-1788) and no exit code ("-1" to the retry expression), or the main
    container's 137 when the kubelet reports it (ContainerStatusUnknown on GKE,
    kubernetes/kubernetes#122160; Argo's getExitCode, operator.go:1711): retried either way,
    and evicted again.
    One `1Gi` for every step used to cap them all, whatever their ephemeral-storage said."""
    size = m.Quantity(root=config.resources_for(step).scratch_size)
    return [m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource(size_limit=size))]


def _container_security() -> m.SecurityContext:
    return m.SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=m.Capabilities(drop=["ALL"]),
    )


def _pod_security() -> m.PodSecurityContext:
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=10001,
        run_as_group=10001,
        fs_group=10001,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


# GKE Autopilot schedules a Pod that selects this label on Spot capacity and adds the
# matching toleration itself; on preemption the Pod gets at most 25 s of grace
# (https://cloud.google.com/kubernetes-engine/docs/how-to/autopilot-spot-pods). A step
# needs none: it is safe to kill anywhere (the load is one transaction) and is retried.
SPOT_NODE_SELECTOR = {"cloud.google.com/gke-spot": "true"}


def _node_selector(config: WorkflowConfig) -> dict[str, str] | None:
    return dict(SPOT_NODE_SELECTOR) if config.spot else None


def _step_container(config: WorkflowConfig, step: str) -> Container:
    return Container(
        name=step,
        image=config.image,
        command=["python", "-m", f"steps.{step}"],
        args=["--date", "{{inputs.parameters.run_date}}", "--emit", f"{OUTPUTS}/manifest-uri"],
        # the step finds its inputs by run date in the artifact bucket
        inputs=[Parameter(name="run_date")],
        outputs=[Parameter(name="manifest-uri", value_from=m.ValueFrom(path=f"{OUTPUTS}/manifest-uri"))],
        env_from=_env_from(config),
        env=_env(),
        resources=_resources(config, step),
        security_context=_container_security(),
        # a failed step's last log lines become its termination message, shown by Argo
        termination_message_policy="FallbackToLogsOnError",
        volume_mounts=[m.VolumeMount(name="tmp", mount_path="/tmp")],
        volumes=_scratch(config, step),
        retry_strategy=_retry(config),
        node_selector=_node_selector(config),
        active_deadline_seconds=config.step_deadline_seconds,
    )


def _catchup_container(config: WorkflowConfig) -> Container:
    return Container(
        name="catchup",
        image=config.image,
        command=["python", "-m", "steps.catchup"],
        args=[
            "--date", "{{inputs.parameters.run_date}}",
            "--scheduled-time", "{{inputs.parameters.scheduled_time}}",
            "--emit-date", f"{OUTPUTS}/run-date",
        ],
        inputs=[Parameter(name="run_date", default=""), Parameter(name="scheduled_time", default="")],
        outputs=[Parameter(name="run_date", value_from=m.ValueFrom(path=f"{OUTPUTS}/run-date"))],
        env_from=_env_from(config),
        env=_env(),
        resources=_resources(config, "catchup"),
        security_context=_container_security(),
        # a failed step's last log lines become its termination message, shown by Argo
        termination_message_policy="FallbackToLogsOnError",
        volume_mounts=[m.VolumeMount(name="tmp", mount_path="/tmp")],
        volumes=_scratch(config, "catchup"),
        retry_strategy=_retry(config),
        node_selector=_node_selector(config),
        # catch-up runs whole days: the workflow deadline bounds it, not the step one
        active_deadline_seconds=config.workflow_deadline_seconds,
    )


def _notify_container(config: WorkflowConfig) -> Container:
    names = ("workflow", "run_date", "scheduled_time", "status", "failures", "link")
    args: list[str] = []
    for name in names:
        args += ["--" + name.replace("_", "-"), f"{{{{inputs.parameters.{name}}}}}"]
    return Container(
        name="notify",
        image=config.image,
        command=["python", "-m", "steps.notify"],
        args=args,
        inputs=[Parameter(name=n, default="") for n in names],
        env_from=_env_from(config),
        env=_env() + _webhook_env(config),
        resources=_resources(config, "notify"),
        security_context=_container_security(),
        # a failed step's last log lines become its termination message, shown by Argo
        termination_message_policy="FallbackToLogsOnError",
        volume_mounts=[m.VolumeMount(name="tmp", mount_path="/tmp")],
        volumes=_scratch(config, "notify"),
        active_deadline_seconds=300,
    )


def _ancestors(step: Step[Any]) -> set[str]:
    return {name for up in step.upstream for name in (up.name, *_ancestors(up))}


def _direct_upstream(step: Step[Any]) -> list[str]:
    """The step's upstream steps less those another of them already waits for: Argo's
    `depends` says only what the order needs (load reads ingest, but waits for preprocess)."""
    implied = {name for up in step.upstream for name in _ancestors(up)}
    return [up.name for up in step.upstream if up.name not in implied]


def workflow_template(config: WorkflowConfig) -> WorkflowTemplate:
    with WorkflowTemplate(
        name=config.name,
        namespace=config.namespace,
        labels=APP_LABELS,
        entrypoint="daily",
        on_exit="exit-handler",
        service_account_name=config.service_account,
        arguments=[Parameter(name="run_date", value="")],
        active_deadline_seconds=config.workflow_deadline_seconds,
        # keep failed pods (and their logs) until the workflow's TTL removes it
        pod_gc=m.PodGC(strategy="OnPodSuccess", delete_delay_duration="10m"),
        ttl_strategy=m.TTLStrategy(
            seconds_after_success=config.ttl_after_success_seconds,
            seconds_after_failure=config.ttl_after_failure_seconds,
        ),
        # a manual backfill and the cron run never write the warehouse at the same time
        synchronization=m.Synchronization(mutexes=[m.Mutex(name=config.name)]),
        security_context=_pod_security(),
        pod_metadata=m.Metadata(labels=APP_LABELS),
    ) as wt:
        catchup = _catchup_container(config)
        containers = {step.name: _step_container(config, step.name) for step in STEPS}
        notify = _notify_container(config)

        with DAG(name="daily"):
            tasks = {"catchup": Task(
                name="catchup",
                template=catchup,
                arguments=[
                    Parameter(name="run_date", value="{{workflow.parameters.run_date}}"),
                    # only set for runs the CronWorkflow started; catchup falls back to today
                    Parameter(name="scheduled_time", value="{{workflow.scheduledTime}}"),
                ],
            )}
            for step in STEPS:
                task = Task(
                    name=step.name,
                    template=containers[step.name],
                    arguments=[Parameter(name="run_date", value="{{tasks.catchup.outputs.parameters.run_date}}")],
                )
                upstream = [tasks[name] for name in _direct_upstream(step)] or [tasks["catchup"]]
                upstream >> task
                tasks[step.name] = task

        with DAG(name="exit-handler"):
            Task(
                name="notify",
                template=notify,
                when="{{workflow.status}} != Succeeded",
                arguments=[
                    Parameter(name="workflow", value="{{workflow.name}}"),
                    Parameter(name="run_date", value="{{workflow.parameters.run_date}}"),
                    Parameter(name="scheduled_time", value="{{workflow.scheduledTime}}"),
                    Parameter(name="status", value="{{workflow.status}}"),
                    Parameter(name="failures", value="{{workflow.failures}}"),
                    Parameter(name="link", value=config.ui_url + "/workflows/{{workflow.namespace}}/{{workflow.name}}"),
                ],
            )
    return wt


def cron_workflow(config: WorkflowConfig) -> CronWorkflow:
    return CronWorkflow(
        name=config.name,
        namespace=config.namespace,
        labels=APP_LABELS,
        schedules=list(config.schedules),
        timezone=config.timezone,
        # a day still running (or stuck) is never doubled up; catch-up covers the skipped one
        concurrency_policy="Forbid",
        # a controller back within 1h still starts the missed run; later, the next run's
        # catch-up brings the day in (Argo only ever starts the latest missed run anyway)
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=5,
        workflow_template_ref=m.WorkflowTemplateRef(name=config.name),
    )
