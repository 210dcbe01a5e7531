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
- a pod lost with no exit code (a preempted Spot node, a deleted pod) is an Error node, not a
  Failed one: `lose_pod` injects that at the true boundary, the node.
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

Not modelled: backoff waits (nothing sleeps), `maxDuration`, deadlines, parallelism, pod GC.
Anything else a template asks for (`memoize` included) raises NotImplementedError.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

VARIABLE = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
POD_TMP = "/tmp/"
DONE = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")
MODELLED_TEMPLATE_KEYS = {
    "name", "inputs", "outputs", "container", "dag", "retryStrategy", "activeDeadlineSeconds", "nodeSelector",
}


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


def should_retry(strategy: dict, attempts: int, phase: str, exit_code: str) -> bool:
    """Whether Argo starts another attempt after `attempts` ended with this phase
    (operator.go:1154-1201, in that order: policy, limit, expression)."""
    expression = strategy.get("expression", "")
    policy = strategy.get("retryPolicy") or ("Always" if expression else "OnFailure")
    retried_phases = {"Always": {"Failed", "Error"}, "OnFailure": {"Failed"}, "OnError": {"Error"}}
    if policy not in retried_phases:
        raise NotImplementedError(f"retryPolicy not modelled: {policy}")
    if phase not in retried_phases[policy]:
        return False
    if "limit" in strategy and attempts > int(strategy["limit"]):
        return False
    return not expression or expression_holds(expression, exit_code)


def evaluate_when(expression: str) -> bool:
    left, op, right = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", expression).groups()
    return (left == right) if op == "==" else (left != right)


class ArgoRefused(Exception):
    """What the Argo server answers with a 400 (a retry of a running workflow...)."""


@dataclass
class Node:
    task: str
    template: str
    phase: str = "Pending"  # Succeeded | Failed | Error | Skipped | Omitted
    exit_code: int | None = None
    attempts: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    message: str = ""
    log: str = ""


@dataclass
class Run:
    name: str
    parameters: dict[str, str]
    scheduled_time: str | None
    nodes: dict[str, Node] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)  # task of every pod started, in order
    status: str = "Running"
    exit_nodes: dict[str, Node] = field(default_factory=dict)


class LocalArgo:
    def __init__(
        self,
        template: dict,
        workdir: Path,
        env_overrides: dict[str, str] | None = None,
        secrets: dict[tuple[str, str], str] | None = None,
    ) -> None:
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
        # task -> how many of its next pods lose their node before reporting an exit code
        self.lost_pods: dict[str, int] = {}
        self.root = Path(__file__).resolve().parents[2]

    def lose_pod(self, task: str, times: int = 1) -> None:
        self.lost_pods[task] = self.lost_pods.get(task, 0) + times

    # -- the three ways a workflow runs ------------------------------------------------

    def submit(self, name: str, parameters: dict[str, str] | None = None, scheduled_time: str | None = None) -> Run:
        defaults = {p["name"]: p.get("value", "") for p in self.spec.get("arguments", {}).get("parameters", [])}
        run = Run(name, {**defaults, **(parameters or {})}, scheduled_time)
        return self._complete(run)

    def retry(self, run: Run) -> Run:
        """`argo retry`: the same workflow; failed nodes, what is downstream of them and the
        exit handler run again (util.go:1266-1398)."""
        self._require_failed(run, "retry")
        self._drop_failed_and_downstream(run)
        run.exit_nodes = {}
        return self._complete(run)

    def resubmit_memoized(self, run: Run, name: str) -> Run:
        """`argo resubmit --memoized`: a new workflow seeded with the old one's nodes
        (util.go:749-895); the old run is left as it was."""
        self._require_failed(run, "resubmit --memoized")
        new = Run(name, dict(run.parameters), run.scheduled_time)
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
        if self.spec.get("onExit"):
            self._run_dag(run, self.spec["onExit"], run.exit_nodes)
        return run

    # -- the DAG -------------------------------------------------------------------------

    def _global_scope(self, run: Run) -> dict[str, str]:
        scope = {f"workflow.parameters.{k}": v for k, v in run.parameters.items()}
        scope |= {"workflow.name": run.name, "workflow.namespace": self.namespace, "workflow.status": run.status}
        if run.scheduled_time is not None:
            scope["workflow.scheduledTime"] = run.scheduled_time
        failed = [n for n in run.nodes.values() if n.phase in ("Failed", "Error")]
        if failed:
            scope["workflow.failures"] = json.dumps([
                {"displayName": n.task, "message": n.message, "templateName": n.template,
                 "phase": n.phase, "podName": f"{run.name}-{n.task}-{n.attempts}",
                 "finishedAt": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
                for n in failed
            ])
        return scope

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
            self._run_node(run, node, self.templates[task["template"]], arguments, scope)

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

    def _run_node(self, run: Run, node: Node, template: dict, arguments: dict[str, str], scope: dict[str, str]) -> None:
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
        while True:
            node.attempts += 1
            phase, code, outputs, log = self._pod(run, node, template, local)
            node.exit_code, node.log = code, log
            if phase == "Succeeded":
                node.outputs, node.phase, node.message = outputs, "Succeeded", ""
                return
            exit_code = "-1" if code is None else str(code)
            node.message = "pod deleted" if code is None else f"Error (exit code {code})"
            if not strategy or not should_retry(strategy, node.attempts, phase, exit_code):
                node.phase = phase
                return

    def _pod(self, run: Run, node: Node, template: dict, scope: dict[str, str]) -> tuple[str, int | None, dict, str]:
        """One attempt: (phase, exit code or None, outputs, log)."""
        if self.lost_pods.get(node.task):
            self.lost_pods[node.task] -= 1
            return "Error", None, {}, "node preempted before the container reported an exit code"
        run.executed.append(node.task)
        code, outputs, log = self._execute(run, node, template, scope)
        return ("Succeeded" if code == 0 else "Failed"), code, outputs, log

    def _execute(self, run: Run, node: Node, template: dict, scope: dict[str, str]) -> tuple[int, dict[str, str], str]:
        container = template["container"]
        pod_tmp = self.workdir / "pods" / f"{run.name}-{node.task}-{node.attempts}" / "tmp"
        pod_tmp.mkdir(parents=True, exist_ok=True)

        def in_pod(text: str) -> str:
            return str(pod_tmp) + "/" + text[len(POD_TMP):] if text.startswith(POD_TMP) else text

        argv = [in_pod(substitute(a, scope)) for a in container["command"] + container.get("args", [])]
        if argv[0] == "python":
            # the image's interpreter, here the project's venv (which may itself live under /tmp)
            argv[0] = sys.executable
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
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

