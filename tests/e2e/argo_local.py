"""Execute a rendered WorkflowTemplate's DAG on this machine, the way Argo Workflows v4 does.

Each DAG task runs, in dependency order, as a subprocess: the container's command and args
with Argo's `{{...}}` parameters substituted, its env (secrets from a dict), and a private
folder standing in for the pod's `/tmp` emptyDir, from which the output parameters are read
(`valueFrom.path`). Around that, what Argo does is reproduced from its source at v4.1.2
(https://github.com/argoproj/argo-workflows/tree/v4.1.2, paths below are in that tree),
failure modes included:

- `depends`: a bare task name holds when that task Succeeded, was Skipped or is Daemoned
  (docs/enhanced-depends-logic.md, "Depends"); a task whose `depends` does not hold is
  Omitted and never runs (workflow/controller/dag.go:597). `when` false: Skipped.
- `retryStrategy`: the policy says which phases may be retried (Always: Failed and Error;
  OnFailure: Failed; OnError: Error), then the limit counts attempts (`len(children) > limit`
  fails the node), then the expression must hold too (workflow/controller/operator.go:1154-1201,
  processNodeRetries; docs/retries.md: "Both must be true to retry"). With an expression and
  no policy the policy is Always (pkg/apis/workflow/v1alpha1/workflow_types.go:2396,
  RetryPolicyActual). `lastRetry.exitCode` is the exit code as a string, "-1" when the pod
  never reported one (operator.go:2159-2163, buildRetryStrategyLocalScope).
- a template with a `retryStrategy` is a Retry node whose children are its attempts, `load(0)`,
  `load(1)`... (operator.go:2439-2512); before each new attempt, in Argo's order
  (processNodeRetries, operator.go:1066-1150): the workflow deadline ("retry exceeded workflow
  deadline"); `backoff.maxDuration`, counted from the FIRST attempt's start ("Max duration limit
  exceeded", :1079-1093); the backoff wait, `duration * factor^(attempts-1)` capped, from the last
  attempt's end, which must not pass that maxDuration deadline (:1106-1137), waited only while
  attempts <= limit (:1140); the maxDuration deadline becomes the next pod's execution
  deadline (:1146-1147).
- deadlines, on a virtual clock (nothing sleeps; a pod's own run adds its real seconds): a pod's
  `activeDeadlineSeconds` is the template's, cut to what is left of the workflow's
  (`spec.activeDeadlineSeconds` from the workflow's start, operator.go:664-674;
  workflowpod.go:449-467), and its ARGO_DEADLINE, which the wait container enforces by killing
  the main container ("Step exceeded its deadline", workflow/executor/executor.go:1473-1497), is
  the earlier of the workflow deadline and that execution deadline (workflowpod.go:993-1002).
  The exit handler's pods ignore the workflow deadline (workflowpod.go:455, :995). A pod killed
  at a deadline is a Failed attempt without an exit code ("-1" to the expression); a task
  reached once the workflow deadline has passed fails, "Step exceeded its deadline"
  (operator.go:1425-1430). `argo retry` restarts the workflow's clock (util.go:927).
- a pod lost with no exit code (a preempted Spot node, a deleted pod) is an Error node, not a
  Failed one: `lose_pod` injects that at the true boundary, the node, after a given time;
  `hang` makes a pod run until a deadline kills it.
- `{{workflow.failures}}`: every failed node (the DAG's own, each Retry node and each failed
  attempt) as Argo's failedNodeStatus, JSON-encoded and then quoted as a JSON string, as Argo
  sets it (operator.go:459-479, `strconv.Quote`), and only once the DAG is complete.
  A failed pod's message is inferFailedReason's `main: Error (exit code N): <termination
  message>` (operator.go:1864-1868), the termination message being the log's tail under
  `FallbackToLogsOnError` (at most 80 lines and 2048 bytes, Kubernetes' rule).
- `onExit`: the exit handler runs once the DAG is complete, whatever its phase
  (operator.go:500-505), its tasks' `when` seeing `{{workflow.status}}`.
- `argo retry` (`retry`): only a Failed or Errored workflow without `--restart-successful` (workflow/util/util.go:1267-1275);
  the failed nodes and everything downstream of them are deleted and the exit handler's
  nodes too, so they all run again, while succeeded nodes keep their outputs and do not run
  (util.go:1266 FormulateRetryWorkflow, onExit nodes dropped at util.go:1398).
- `argo resubmit --memoized` (`resubmit_memoized`): a new workflow, only from a Failed or
  Errored one (util.go:763-768); each succeeded pod node is copied as Skipped with its
  outputs (util.go:861-864), failed ones become Pending (util.go:868-870), omitted ones with
  no succeeded descendant are dropped (util.go:865-867), exit-handler nodes are not copied
  (util.go:834-836) (util.go:749 FormulateResubmitWorkflow). It does not read any memoization
  cache: the reuse is of the old workflow's node statuses.

Not modelled: parallelism, pod GC, template `timeout`, eviction for storage (the container
DAG, tests/container/argo_podman.py, applies the emptyDir's sizeLimit).
Anything else a template asks for (`memoize` included) raises NotImplementedError.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

VARIABLE = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
POD_TMP = "/tmp/"
DONE = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")
MODELLED_TEMPLATE_KEYS = {
    "name", "inputs", "outputs", "container", "dag", "retryStrategy", "activeDeadlineSeconds", "nodeSelector",
    "volumes",
}
EPOCH = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)  # virtual time 0
DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
STEP_DEADLINE_EXCEEDED = "Step exceeded its deadline"  # executor.go:1490, operator.go:1428
POD_DEADLINE_EXCEEDED = "Pod was active on the node longer than the specified deadline"  # kubelet's pod message


def duration_seconds(text: str) -> float:
    """Argo's durations as the templates write them ("30s", "10m", "1h", a plain number of
    seconds): wfv1.ParseStringToDuration."""
    if re.fullmatch(r"\d+", text):
        return float(text)
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise NotImplementedError(f"duration not modelled: {text}")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def go_json(value: object) -> str:
    """encoding/json.Marshal: compact, UTF-8 kept, <, > and & escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_quote(text: str) -> str:
    """strconv.Quote of what go_json made (no control characters left to escape)."""
    assert not re.search(r"[\x00-\x1f\x7f]", text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def termination_message(log: str) -> str:
    """FallbackToLogsOnError: the log's last 80 lines, at most 2048 bytes."""
    tail = "\n".join(log.rstrip("\n").split("\n")[-80:]).encode()[-2048:]
    return tail.decode(errors="ignore").strip()


def substitute(text: str, scope: dict[str, str]) -> str:
    """Replace `{{name}}` from scope; unknown names stay as they are (Argo does the same
    for `workflow.scheduledTime` on a run the cron did not start)."""
    return VARIABLE.sub(lambda m: scope.get(m.group(1), m.group(0)), text)


def expression_holds(expression: str, exit_code: str) -> bool:
    """The retry expression, for the expr forms the templates use: `!(x in [..])`."""
    python = expression.replace("!(", "not (").replace("lastRetry.exitCode", repr(exit_code))
    if re.search(r"[A-Za-z_]\w*\.", python):
        raise NotImplementedError(f"retry expression not modelled: {expression}")
    return bool(eval(python, {"__builtins__": {}}))  # noqa: S307 - from our own template


def retry_refusal(strategy: dict, attempts: int, phase: str, exit_code: str) -> str | None:
    """Why Argo starts no other attempt after `attempts` ended with this phase, None when it
    does (operator.go:1154-1201, in that order: policy, limit, expression). "" means the
    Retry node takes its last attempt's message."""
    expression = strategy.get("expression", "")
    policy = strategy.get("retryPolicy") or ("Always" if expression else "OnFailure")
    retried_phases = {"Always": {"Failed", "Error"}, "OnFailure": {"Failed"}, "OnError": {"Error"}}
    if policy not in retried_phases:
        raise NotImplementedError(f"retryPolicy not modelled: {policy}")
    if phase not in retried_phases[policy]:
        return ""
    if "limit" in strategy and attempts > int(strategy["limit"]):
        return "No more retries left"
    if expression and not expression_holds(expression, exit_code):
        return "retryStrategy.expression evaluated to false"
    return None


def should_retry(strategy: dict, attempts: int, phase: str, exit_code: str) -> bool:
    return retry_refusal(strategy, attempts, phase, exit_code) is None


def evaluate_when(expression: str) -> bool:
    left, op, right = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", expression).groups()
    return (left == right) if op == "==" else (left != right)


class ArgoRefused(Exception):
    """What the Argo server answers with a 400 (a retry of a running workflow...)."""


@dataclass
class Node:
    """A task's node: a Pod node, or a Retry node (a template with a retryStrategy) whose
    children are the attempts' Pod nodes; its exit code and log are its last attempt's."""

    task: str
    template: str
    phase: str = "Pending"  # Succeeded | Failed | Error | Skipped | Omitted
    exit_code: int | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    message: str = ""
    log: str = ""
    type: str = "Pod"  # Pod | Retry
    display_name: str = ""  # the task's name, `task(n)` for attempt n
    children: list[Node] = field(default_factory=list)
    started_at: float | None = None  # virtual seconds
    finished_at: float | None = None

    def __post_init__(self) -> None:
        self.display_name = self.display_name or self.task

    @property
    def attempts(self) -> int:
        return len(self.children) if self.type == "Retry" else int(self.started_at is not None)


@dataclass
class Run:
    name: str
    parameters: dict[str, str]
    scheduled_time: str | None
    nodes: dict[str, Node] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)  # task of every pod started, in order
    status: str = "Running"
    exit_nodes: dict[str, Node] = field(default_factory=dict)
    started_at: float = 0.0  # virtual seconds: the workflow deadline counts from here
    failures: str | None = None  # {{workflow.failures}}, set once the DAG is complete


class LocalArgo:
    def __init__(
        self,
        template: dict,
        workdir: Path,
        env_overrides: dict[str, str] | None = None,
        secrets: dict[tuple[str, str], str] | None = None,
        config_maps: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """config_maps: the ConfigMaps of the namespace by name, for the containers' envFrom;
        one a container names and that is missing fails its pod, as the kubelet does."""
        assert template["kind"] == "WorkflowTemplate"
        self.spec = template["spec"]
        self.namespace = template["metadata"]["namespace"]
        self.templates = {t["name"]: t for t in self.spec["templates"]}
        for t in self.templates.values():
            if set(t) - MODELLED_TEMPLATE_KEYS:
                raise NotImplementedError(f"template {t['name']}: {sorted(set(t) - MODELLED_TEMPLATE_KEYS)} not modelled")
        self.workdir = workdir
        # mutable on purpose: a test "fixes the cause" between a failed run and `argo retry`
        self.env_overrides = dict(env_overrides or {})
        self.secrets = secrets or {}
        self.config_maps = config_maps or {}
        # task -> what happens to its next pods: ("lost", after seconds) or ("hang", inf)
        self.faults: dict[str, list[tuple[str, float]]] = {}
        self.clock = 0.0  # virtual seconds since EPOCH
        self.root = Path(__file__).resolve().parents[2]

    def lose_pod(self, task: str, times: int = 1, after: float = 0.0) -> None:
        """The task's next `times` pods lose their node `after` seconds into their run, before
        any exit code (or are killed first by a deadline that comes sooner)."""
        self.faults.setdefault(task, []).extend([("lost", after)] * times)

    def hang(self, task: str, times: int = 1) -> None:
        """The task's next `times` pods run until a deadline kills them."""
        self.faults.setdefault(task, []).extend([("hang", math.inf)] * times)

    # -- the three ways a workflow runs ------------------------------------------------

    def submit(self, name: str, parameters: dict[str, str] | None = None, scheduled_time: str | None = None) -> Run:
        defaults = {p["name"]: p.get("value", "") for p in self.spec.get("arguments", {}).get("parameters", [])}
        run = Run(name, {**defaults, **(parameters or {})}, scheduled_time, started_at=self.clock)
        return self._complete(run)

    def retry(self, run: Run) -> Run:
        """`argo retry`: the same workflow; failed nodes, what is downstream of them and the
        exit handler run again (util.go:1266-1398)."""
        self._require_failed(run, "retry")
        self._drop_failed_and_downstream(run)
        run.exit_nodes = {}
        run.started_at = self.clock  # a new StartedAt: the deadline counts anew (util.go:927)
        return self._complete(run)

    def resubmit_memoized(self, run: Run, name: str) -> Run:
        """`argo resubmit --memoized`: a new workflow seeded with the old one's nodes
        (util.go:749-895); the old run is left as it was."""
        self._require_failed(run, "resubmit --memoized")
        new = Run(name, dict(run.parameters), run.scheduled_time, started_at=self.clock)
        for task, old in run.nodes.items():
            if old.phase == "Succeeded":
                new.nodes[task] = Node(task, old.template, "Skipped", outputs=dict(old.outputs),
                                       message=f"original pod: {run.name}-{task}")
            elif old.phase in ("Failed", "Error"):
                new.nodes[task] = Node(task, old.template)
            # Omitted (and Pending) nodes are not copied: they are scheduled afresh
        return self._complete(new)

    @staticmethod
    def _require_failed(run: Run, verb: str) -> None:
        if run.status not in ("Failed", "Error"):
            raise ArgoRefused(f"cannot {verb} a workflow in phase {run.status}")

    def _drop_failed_and_downstream(self, run: Run) -> None:
        tasks = {t["name"]: t for t in self.templates[self.spec["entrypoint"]]["dag"]["tasks"]}
        dropped = {name for name, node in run.nodes.items() if node.phase in ("Failed", "Error", "Omitted")}
        changed = True
        while changed:
            downstream = {n for n in run.nodes if set(self._depends(tasks[n])) & dropped}
            changed = bool(downstream - dropped)
            dropped |= downstream
        for name in dropped:
            del run.nodes[name]

    def _complete(self, run: Run) -> Run:
        run.status = "Running"
        self._run_dag(run, self.spec["entrypoint"], run.nodes)
        phases = {n.phase for n in run.nodes.values()}
        run.status = "Error" if "Error" in phases else "Failed" if "Failed" in phases else "Succeeded"
        run.failures = self._failures(run)
        if self.spec.get("onExit"):
            self._run_dag(run, self.spec["onExit"], run.exit_nodes)
        return run

    # -- the DAG -------------------------------------------------------------------------

    def _global_scope(self, run: Run) -> dict[str, str]:
        scope = {f"workflow.parameters.{k}": v for k, v in run.parameters.items()}
        scope |= {"workflow.name": run.name, "workflow.namespace": self.namespace, "workflow.status": run.status}
        if run.scheduled_time is not None:
            scope["workflow.scheduledTime"] = run.scheduled_time
        if run.failures is not None:
            scope["workflow.failures"] = run.failures
        return scope

    def _failures(self, run: Run) -> str:
        """`{{workflow.failures}}` exactly as Argo sets it (operator.go:459-479): every Failed or
        Error node as a failedNodeStatus, json.Marshal'ed (`null` for none), then strconv.Quote'd.
        Each node has a podName, the DAG's own too (the workflow's name, pod_name.go:55)."""
        def status(node: Node, template: str, pod: str) -> dict:
            finished = EPOCH + dt.timedelta(seconds=node.finished_at if node.finished_at is not None else self.clock)
            return {"displayName": node.display_name, "message": node.message, "templateName": template,
                    "phase": node.phase, "podName": pod, "finishedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ")}

        failed = []
        if run.status in ("Failed", "Error"):
            root = Node(run.name, self.spec["entrypoint"], run.status, display_name=run.name, finished_at=self.clock)
            failed.append(status(root, self.spec["entrypoint"], run.name))
        for node in run.nodes.values():
            for n in (node, *node.children):
                if n.phase in ("Failed", "Error"):
                    failed.append(status(n, n.template, f"{run.name}-{n.template}-{zlib.crc32(n.display_name.encode())}"))
        return go_quote(go_json(failed or None))

    def _workflow_deadline(self, run: Run) -> float | None:
        seconds = self.spec.get("activeDeadlineSeconds")
        return None if seconds is None else math.floor(run.started_at) + int(seconds)

    def _run_dag(self, run: Run, template_name: str, nodes: dict[str, Node]) -> None:
        tasks = self.templates[template_name]["dag"]["tasks"]
        for task in self._ordered(tasks):
            node = nodes.setdefault(task["name"], Node(task["name"], task["template"]))
            if node.phase in DONE:
                continue
            upstream = [nodes[d] for d in self._depends(task)]
            if not all(u.phase in ("Succeeded", "Skipped") for u in upstream):
                node.phase, node.message = "Omitted", "omitted: depends condition not met"
                continue
            scope = self._global_scope(run)
            for other in nodes.values():
                scope |= {f"tasks.{other.task}.outputs.parameters.{k}": v for k, v in other.outputs.items()}
            if "when" in task and not evaluate_when(substitute(task["when"], scope)):
                node.phase = "Skipped"
                continue
            parameters = task.get("arguments", {}).get("parameters", [])
            arguments = {p["name"]: substitute(p["value"], scope) for p in parameters}
            self._run_node(run, node, self.templates[task["template"]], arguments, scope,
                           on_exit=template_name == self.spec.get("onExit"))

    @staticmethod
    def _depends(task: dict) -> list[str]:
        depends = task.get("depends")
        if not depends:
            return []
        if not re.fullmatch(r"[\w-]+(\s*&&\s*[\w-]+)*", depends):
            raise NotImplementedError(f"depends expression not modelled: {depends}")
        return [d.strip() for d in depends.split("&&")]

    def _ordered(self, tasks: list[dict]) -> list[dict]:
        done: list[str] = []
        pending = list(tasks)
        while pending:
            ready = [t for t in pending if all(d in done for d in self._depends(t))]
            if not ready:
                raise ValueError(f"cycle or unknown dependency among {[t['name'] for t in pending]}")
            for t in ready:
                done.append(t["name"])
                pending.remove(t)
        return [next(t for t in tasks if t["name"] == name) for name in done]

    # -- one node: its pods, retried ----------------------------------------------------

    def _run_node(self, run: Run, node: Node, template: dict, arguments: dict[str, str], scope: dict[str, str],
                  on_exit: bool = False) -> None:
        inputs = {}
        for param in template.get("inputs", {}).get("parameters", []):
            if param["name"] in arguments:
                inputs[param["name"]] = arguments[param["name"]]
            elif "default" in param:
                inputs[param["name"]] = param["default"]
            else:
                raise ValueError(f"{node.task}: input {param['name']} has no value")
        local = scope | {f"inputs.parameters.{k}": v for k, v in inputs.items()}
        strategy = template.get("retryStrategy")
        if not strategy:
            self._attempt(run, node, template, local, None, on_exit)
            return
        node.type, node.started_at = "Retry", self.clock
        execution_deadline = None
        while True:
            child = Node(node.task, node.template, display_name=f"{node.task}({len(node.children)})")
            node.children.append(child)
            self._attempt(run, child, template, local, execution_deadline, on_exit)
            node.exit_code, node.log = child.exit_code, child.log
            if child.phase == "Succeeded":
                node.outputs, node.phase, node.message = child.outputs, "Succeeded", ""
                node.finished_at = self.clock
                return
            refusal, execution_deadline = self._next_attempt(run, node, strategy)
            if refusal is not None:
                node.phase, node.message, node.finished_at = child.phase, refusal or child.message, self.clock
                return

    def _next_attempt(self, run: Run, node: Node, strategy: dict) -> tuple[str | None, float | None]:
        """processNodeRetries after a failed attempt (operator.go:1066-1203): why no other
        attempt starts (None: one does), and the next pod's execution deadline."""
        last = node.children[-1]
        deadline = self._workflow_deadline(run)
        if deadline is not None and self.clock > deadline:  # :1066-1075
            return f"retry exceeded workflow deadline {EPOCH + dt.timedelta(seconds=deadline)}", None
        execution_deadline = None
        backoff = strategy.get("backoff")
        if backoff:
            max_deadline = None
            if backoff.get("maxDuration"):  # :1079-1093, from the first attempt's start
                max_deadline = node.children[0].started_at + duration_seconds(backoff["maxDuration"])
                if self.clock > max_deadline:
                    return "Max duration limit exceeded", None
            wait = duration_seconds(backoff["duration"])  # :1106-1130
            factor = int(backoff.get("factor") or 0)
            if factor > 0:
                wait *= factor ** (len(node.children) - 1)
            if backoff.get("cap"):
                wait = min(wait, duration_seconds(backoff["cap"]))
            waiting = last.finished_at + wait
            if max_deadline is not None and waiting > max_deadline:  # :1133-1137
                return "Backoff would exceed max duration limit", None
            if self.clock < waiting and "limit" in strategy and len(node.children) <= int(strategy["limit"]):
                self.clock = waiting  # requeued until then (:1140-1144), then evaluated again
                return self._next_attempt(run, node, strategy)
            execution_deadline = max_deadline  # :1146-1147
        exit_code = "-1" if last.exit_code is None else str(last.exit_code)
        return retry_refusal(strategy, len(node.children), last.phase, exit_code), execution_deadline

    def _attempt(self, run: Run, node: Node, template: dict, scope: dict[str, str], execution_deadline: float | None,
                 on_exit: bool) -> None:
        """One pod to its end, on the virtual clock, under its deadlines."""
        node.started_at = start = self.clock
        workflow_deadline = None if on_exit else self._workflow_deadline(run)
        if workflow_deadline is not None and workflow_deadline - start <= 0:  # workflowpod.go:458-461: no pod
            node.phase, node.message, node.finished_at = "Failed", STEP_DEADLINE_EXCEEDED, start
            return
        kills = []  # (when, message): activeDeadlineSeconds (kubelet), ARGO_DEADLINE (wait container)
        if template.get("activeDeadlineSeconds"):
            kills.append((start + int(template["activeDeadlineSeconds"]), POD_DEADLINE_EXCEEDED))
        if workflow_deadline is not None:
            kills.append((workflow_deadline, STEP_DEADLINE_EXCEEDED))
        if execution_deadline is not None:
            kills.append((execution_deadline, STEP_DEADLINE_EXCEEDED))
        kill_at, kill_message = min(kills, default=(math.inf, ""))
        faults = self.faults.get(node.task)
        if faults:
            kind, after = faults.pop(0)
            if start + after < kill_at:  # lost with its node before any deadline
                self.clock = start + after
                node.phase, node.exit_code, node.message = "Error", None, "pod deleted"
                node.log, node.finished_at = "node preempted before the container reported an exit code", self.clock
                return
            self.clock = kill_at
            node.phase, node.exit_code, node.message = "Failed", None, kill_message
            node.log, node.finished_at = f"killed at its deadline after {kill_at - start:.0f}s", kill_at
            return
        run.executed.append(node.task)
        began = time.monotonic()
        code, outputs, log = self._execute(run, node, template, scope)
        self.clock = start + (time.monotonic() - began)
        node.exit_code, node.log, node.finished_at = code, log, self.clock
        if self.clock > kill_at:
            node.phase, node.exit_code, node.message, node.finished_at = "Failed", None, kill_message, kill_at
        elif code == 0:
            node.outputs, node.phase, node.message = outputs, "Succeeded", ""
        else:
            message = termination_message(log)
            node.phase = "Failed"
            node.message = f"main: Error (exit code {code})" + (f": {message}" if message else "")

    def _execute(self, run: Run, node: Node, template: dict, scope: dict[str, str]) -> tuple[int, dict[str, str], str]:
        container = template["container"]
        pod_tmp = self.workdir / "pods" / f"{run.name}-{node.display_name}" / "tmp"
        pod_tmp.mkdir(parents=True, exist_ok=True)

        def in_pod(text: str) -> str:
            return str(pod_tmp) + "/" + text[len(POD_TMP):] if text.startswith(POD_TMP) else text

        argv = [in_pod(substitute(a, scope)) for a in container["command"] + container.get("args", [])]
        if argv[0] == "python":
            # the image's interpreter, here the project's venv (which may itself live under /tmp)
            argv[0] = sys.executable
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
        # envFrom first, then env, which wins on a duplicate key (the Container API's envFrom:
        # argo-workflows v4.1.2 docs/fields.md:6621). A ConfigMap that is not there and not
        # optional keeps the container from starting (the kubelet's
        # CreateContainerConfigError): the model refuses the pod rather than run on defaults.
        for source in container.get("envFrom", []):
            ref = source["configMapRef"]
            data = self.config_maps.get(ref["name"])
            if data is None and not ref.get("optional"):
                raise ValueError(f"configmap {ref['name']} missing for {node.task}: the pod cannot start")
            env |= {source.get("prefix", "") + k: v for k, v in (data or {}).items()}
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = substitute(var["value"], scope)
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                secret = self.secrets.get((ref["name"], ref["key"]))
                if secret is None and not ref.get("optional"):
                    raise ValueError(f"secret {ref['name']}/{ref['key']} missing for {node.task}")
                if secret is not None:
                    env[var["name"]] = secret
        env |= self.env_overrides
        env["TMPDIR"] = str(pod_tmp)
        proc = subprocess.run(argv, cwd=self.root, env=env, capture_output=True, text=True, timeout=600)
        outputs = {}
        if proc.returncode == 0:
            for param in template.get("outputs", {}).get("parameters", []):
                outputs[param["name"]] = Path(in_pod(param["valueFrom"]["path"])).read_text().strip()
        return proc.returncode, outputs, proc.stdout + proc.stderr

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir / "pods", ignore_errors=True)

