"""Execute a rendered WorkflowTemplate's DAG on this machine, the way Argo would.

Each DAG task runs, in dependency order, as a subprocess: the container's command and
args with Argo's `{{...}}` parameters substituted, its env (secrets from a dict), and a
private folder standing in for the pod's `/tmp` emptyDir, from which the output
parameters are read (`valueFrom.path`). What Argo adds around that is modelled too:
`retryStrategy` (limit and expression; backoff is not waited for), `memoize` (a cache
dict shared across runs, keys checked against Argo's pattern), the `onExit` handler
with `when`, and `retry()` re-running only the failed nodes and their dependents.
Only the features the rendered templates use are supported: anything else raises.
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
MEMO_KEY = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
POD_TMP = "/tmp/"


def substitute(text: str, scope: dict[str, str]) -> str:
    """Replace `{{name}}` from scope; unknown names stay as they are (Argo does the same
    for `workflow.scheduledTime` on a run the cron did not start)."""
    return VARIABLE.sub(lambda m: scope.get(m.group(1), m.group(0)), text)


def should_retry(expression: str, exit_code: int) -> bool:
    """The retry expression, for the expr forms the templates use: `!(x in [..])`."""
    python = expression.replace("!(", "not (").replace("lastRetry.exitCode", repr(str(exit_code)))
    if re.search(r"[A-Za-z_]\w*\.", python):
        raise NotImplementedError(f"retry expression not modelled: {expression}")
    return bool(eval(python, {"__builtins__": {}}))  # noqa: S307 - from our own template


def evaluate_when(expression: str) -> bool:
    left, op, right = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", expression).groups()
    return (left == right) if op == "==" else (left != right)


@dataclass
class Node:
    task: str
    template: str
    phase: str = "Pending"  # Succeeded | Failed | Skipped
    exit_code: int | None = None
    attempts: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    memoized: bool = False
    log: str = ""


@dataclass
class Run:
    name: str
    parameters: dict[str, str]
    scheduled_time: str | None
    nodes: dict[str, Node] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)  # task of every process started, in order
    status: str = "Running"
    exit_nodes: dict[str, Node] = field(default_factory=dict)


class LocalArgo:
    def __init__(
        self,
        template: dict,
        workdir: Path,
        env_overrides: dict[str, str] | None = None,
        secrets: dict[tuple[str, str], str] | None = None,
        honour_retries: bool = True,
    ) -> None:
        assert template["kind"] == "WorkflowTemplate"
        self.spec = template["spec"]
        self.namespace = template["metadata"]["namespace"]
        self.templates = {t["name"]: t for t in self.spec["templates"]}
        self.workdir = workdir
        self.env_overrides = env_overrides or {}
        self.secrets = secrets or {}
        self.honour_retries = honour_retries
        self.memo_cache: dict[str, dict[str, str]] = {}
        self.root = Path(__file__).resolve().parents[2]

    # -- running -------------------------------------------------------------------

    def submit(self, name: str, parameters: dict[str, str] | None = None, scheduled_time: str | None = None) -> Run:
        defaults = {p["name"]: p.get("value", "") for p in self.spec.get("arguments", {}).get("parameters", [])}
        run = Run(name, {**defaults, **(parameters or {})}, scheduled_time)
        self._run_dag(run, self.spec["entrypoint"], run.nodes)
        run.status = "Succeeded" if all(n.phase in ("Succeeded", "Skipped") for n in run.nodes.values()) else "Failed"
        self._exit_handler(run)
        return run

    def retry(self, run: Run) -> Run:
        """`argo retry`: failed nodes and everything downstream run again; succeeded ones keep
        their outputs."""
        for node in run.nodes.values():
            if node.phase != "Succeeded":
                node.phase, node.exit_code, node.attempts = "Pending", None, 0
        run.exit_nodes = {}
        self._run_dag(run, self.spec["entrypoint"], run.nodes)
        run.status = "Succeeded" if all(n.phase == "Succeeded" for n in run.nodes.values()) else "Failed"
        self._exit_handler(run)
        return run

    def _exit_handler(self, run: Run) -> None:
        if self.spec.get("onExit"):
            self._run_dag(run, self.spec["onExit"], run.exit_nodes)

    def _global_scope(self, run: Run) -> dict[str, str]:
        scope = {f"workflow.parameters.{k}": v for k, v in run.parameters.items()}
        scope |= {"workflow.name": run.name, "workflow.namespace": self.namespace, "workflow.status": run.status}
        if run.scheduled_time is not None:
            scope["workflow.scheduledTime"] = run.scheduled_time
        failed = [n for n in run.nodes.values() if n.phase == "Failed"]
        if failed:
            scope["workflow.failures"] = json.dumps([
                {"displayName": n.task, "message": f"Error (exit code {n.exit_code})", "templateName": n.template,
                 "phase": "Failed", "podName": f"{run.name}-{n.task}-{n.attempts}",
                 "finishedAt": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
                for n in failed
            ])
        return scope

    def _run_dag(self, run: Run, template_name: str, nodes: dict[str, Node]) -> None:
        tasks = self.templates[template_name]["dag"]["tasks"]
        for task in self._ordered(tasks):
            node = nodes.setdefault(task["name"], Node(task["name"], task["template"]))
            if node.phase == "Succeeded":
                continue
            upstream = [nodes[d] for d in self._depends(task)]
            if any(u.phase != "Succeeded" for u in upstream):
                node.phase = "Skipped" if all(u.phase in ("Succeeded", "Skipped") for u in upstream) else "Omitted"
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

        memo = template.get("memoize")
        if memo:
            key = substitute(memo["key"], local)
            assert MEMO_KEY.match(key), f"memoize key {key!r} breaks Argo's pattern"
            if key in self.memo_cache:
                node.outputs, node.phase, node.memoized = dict(self.memo_cache[key]), "Succeeded", True
                return

        retry = template.get("retryStrategy") or {}
        limit = int(retry.get("limit", 0)) if self.honour_retries else 0
        while True:
            node.attempts += 1
            code, outputs, log = self._execute(run, node, template, local)
            run.executed.append(node.task)
            node.exit_code, node.log = code, log
            if code == 0:
                node.outputs, node.phase = outputs, "Succeeded"
                if memo:
                    self.memo_cache[key] = dict(outputs)
                return
            if node.attempts > limit or not should_retry(retry.get("expression", "true"), code):
                node.phase = "Failed"
                return

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
