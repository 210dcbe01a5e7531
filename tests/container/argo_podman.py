"""Run a rendered WorkflowTemplate's DAG with Podman (or Docker, tests/container/podman.py
picks the engine): one container per task, in DAG order, each exactly as rendered (image,
command, args, env, securityContext, volumes and their mount paths, resource limits),
sharing nothing but the artifact store.

How the pod spec maps to `podman run` (docs/image.md, "The DAG in containers"):
- securityContext: runAsUser/runAsGroup -> --user; fsGroup -> --group-add and the emptyDir
  owned by it; runAsNonRoot -> checked here (the user is not 0); readOnlyRootFilesystem ->
  --read-only (with no extra tmpfs: /tmp is the emptyDir); allowPrivilegeEscalation: false ->
  --security-opt no-new-privileges; capabilities.drop/add -> --cap-drop/--cap-add;
  seccompProfile RuntimeDefault -> podman's default seccomp profile.
- volumes (the template's own first, then the workflow's: argo-workflows v4.1.2
  workflowpod.go:1453-1464): each emptyDir is a fresh host folder bind-mounted at its
  mountPath, disk-backed as on a GKE node. Its `sizeLimit`, and the container's
  `ephemeral-storage` limit, are not enforced by the filesystem (no ENOSPC) but as the
  kubelet does: tests/container/kubelet.py measures the folder every 0.5 s and evicts the pod
  (SIGTERM, SIGKILL 1 s later) once it is above either; the node is then Failed with the
  kubelet's message and no exit code (argo-workflows v4.1.2 operator.go:1786-1788: a pod
  with a status message takes it as the node's; `lastRetry.exitCode` is then "-1",
  operator.go:2160-2164). The output parameters' files are read from the folder once the
  container is gone.
- resources.limits: cpu -> --cpus, memory -> --memory; ephemeral-storage -> the eviction
  above (the root filesystem is read-only: /tmp is all a step can write).
- activeDeadlineSeconds -> the container is killed when it runs longer.
- onExit: `run_exit_handler` runs its tasks after the DAG, their `when` seeing
  `{{workflow.status}}` and `{{workflow.failures}}` as Argo sets it, quoted (the failed attempts,
  their Retry node and the DAG's, tests/e2e/argo_local.py says from which source lines).
Kubernetes- and Argo-only fields are not applied, the test says which: serviceAccountName
(Workload Identity), nodeSelector (Spot nodes), podGC, synchronization, ttlStrategy,
podMetadata, terminationMessagePolicy; retryStrategy is the caller's (it re-runs a task).
A field not in these lists raises NotImplementedError, so a new one is never ignored.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tests.container.kubelet import EmptyDir, LocalStorage, PodWatch, Usage
from tests.container.podman import ENGINE, engine, remove, writable_dir
from tests.e2e.argo_local import evaluate_when, go_json, go_quote, retry_refusal, substitute, termination_message

KUBERNETES_ONLY = {"serviceAccountName", "nodeSelector", "podGC", "synchronization", "ttlStrategy", "podMetadata",
                   "retryStrategy", "terminationMessagePolicy", "tolerations"}
SECURITY_KEYS = {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "readOnlyRootFilesystem",
                 "allowPrivilegeEscalation", "capabilities", "seccompProfile"}
MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


def logs(name: str) -> str:
    out = engine("logs", name, check=False)
    return out.stdout + out.stderr


def memory_bytes(quantity: str) -> int:
    for unit, factor in MEMORY_UNITS.items():
        if quantity.endswith(unit):
            return int(quantity[: -len(unit)]) * factor
    return int(quantity)


def failed_node(workflow: str, display: str, message: str, template: str, finished: str) -> dict:
    """One of Argo's failedNodeStatus (operator.go:153-160); pod names as pod_name.go's v2."""
    pod = f"{workflow}-{template}-{zlib.crc32(display.encode())}"
    return {"displayName": display, "message": message, "templateName": template, "phase": "Failed",
            "podName": pod, "finishedAt": finished}


def exit_code_variable(code: int | None) -> str:
    """`lastRetry.exitCode` of an attempt: "-1" when the node has no exit code (an evicted
    pod; argo-workflows v4.1.2 operator.go:2160-2164)."""
    return "-1" if code is None else str(code)


def cpus(quantity: str) -> str:
    return str(int(quantity[:-1]) / 1000) if quantity.endswith("m") else quantity


@dataclass
class Pod:
    task: str
    argv: list[str]  # the whole `podman run` argument list
    emptydirs: dict[str, Path]  # mountPath -> host folder
    deadline: float | None
    storage: LocalStorage  # what the kubelet measures, and its limits


@dataclass
class ContainerDag:
    template: dict  # the rendered WorkflowTemplate
    workdir: Path
    parameters: dict[str, str]
    env_overrides: dict[str, str] = field(default_factory=dict)  # the profile's, e.g. local
    mounts: list[str] = field(default_factory=list)  # `-v` of the shared artifact store, source
    # e.g. ["--network", "host"]: the gcp profile's emulators listen on the host's loopback
    podman_args: list[str] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    log: dict[str, str] = field(default_factory=dict)
    # task -> (exit code, Argo's node message, finishedAt) of each of its pods, in order; no
    # exit code (None) for an evicted pod
    attempts: dict[str, list[tuple[int | None, str, str]]] = field(default_factory=dict)
    # task -> what each of its pods used (peak scratch and memory), in order
    usage: dict[str, list[Usage]] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)  # workflow.* the exit handler sees
    # the namespace's ConfigMaps by name, for the containers' envFrom (the pods' settings)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spec = self.template["spec"]
        self.templates = {t["name"]: t for t in self.spec["templates"]}
        self.tasks = self.templates[self.spec["entrypoint"]]["dag"]["tasks"]
        on_exit = self.spec.get("onExit")
        self.exit_tasks = self.templates[on_exit]["dag"]["tasks"] if on_exit else []

    def order(self) -> list[str]:
        """Task names in dependency order (each `depends` is `a && b`, as in argo_local)."""
        done: list[str] = []
        while len(done) < len(self.tasks):
            ready = [t["name"] for t in self.tasks if t["name"] not in done
                     and all(d.strip() in done for d in t.get("depends", "").split("&&") if d.strip())]
            assert ready, "cycle in the DAG"
            done.extend(ready)
        return done

    def pod(self, task_name: str, env: dict[str, str] | None = None, podman_args: tuple[str, ...] = ()) -> Pod:
        """The `podman run` of one pod of the task; env and podman_args are added for this pod
        only (a fault to inject, a slower node)."""
        task = next(t for t in self.tasks + self.exit_tasks if t["name"] == task_name)
        template = self.templates[task["template"]]
        unknown = (set(template) - {"name", "inputs", "outputs", "container", "activeDeadlineSeconds", "volumes"}
                   - KUBERNETES_ONLY)
        if unknown:
            raise NotImplementedError(f"{task_name}: {sorted(unknown)} not mapped to podman")
        scope = {f"workflow.parameters.{k}": v for k, v in self.parameters.items()}
        scope |= {f"tasks.{t}.outputs.parameters.{k}": v for t, out in self.outputs.items() for k, v in out.items()}
        scope.setdefault("workflow.scheduledTime", "")  # a submitted run, not the cron's
        scope |= self.globals
        arguments = {p["name"]: substitute(p["value"], scope) for p in task.get("arguments", {}).get("parameters", [])}
        for p in template.get("inputs", {}).get("parameters", []):
            scope[f"inputs.parameters.{p['name']}"] = arguments.get(p["name"], p.get("default", ""))
        container = template["container"]
        name = f"{task_name}-{uuid.uuid4().hex[:8]}"
        argv = ["run", "--name", name]
        argv += self._security(container.get("securityContext", {}))
        limits = container.get("resources", {}).get("limits", {})
        if "memory" in limits:
            argv += ["--memory", str(memory_bytes(limits["memory"]))]
        if "cpu" in limits:
            argv += ["--cpus", cpus(limits["cpu"])]
        emptydirs, measured = {}, []
        volumes = {v["name"]: v for v in [*self.spec.get("volumes", []), *template.get("volumes", [])]}
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if set(volume) - {"name", "emptyDir"} or set(volume["emptyDir"]) - {"sizeLimit"}:
                raise NotImplementedError(f"volume {volume} not mapped to podman")
            path = mount["mountPath"]
            host = writable_dir(self.workdir / "pods" / name / mount["name"])
            emptydirs[path] = host
            argv += ["-v", f"{host}:{path}"]
            size = volume["emptyDir"].get("sizeLimit")
            measured.append(EmptyDir(volume["name"], host, memory_bytes(str(size)) if size else None,
                                     str(size) if size else None))
        ephemeral = limits.get("ephemeral-storage")
        storage = LocalStorage(tuple(measured), memory_bytes(str(ephemeral)) if ephemeral else None,
                               str(ephemeral) if ephemeral else None)
        argv += [arg for mount in self.mounts for arg in ("-v", mount)]
        argv += [*self.podman_args, *podman_args]
        # envFrom first, then env, which wins (podman keeps the last --env of a name; the
        # Container API: argo-workflows v4.1.2 docs/fields.md:6621). A missing ConfigMap that
        # is not optional keeps the kubelet from starting the container: so here too.
        for source in container.get("envFrom", []):
            ref = source["configMapRef"]
            data = self.config_maps.get(ref["name"])
            if data is None and not ref.get("optional"):
                raise ValueError(f"configmap {ref['name']} missing for {task_name}: the pod cannot start")
            argv += [arg for k, v in (data or {}).items() for arg in ("--env", f"{source.get('prefix', '')}{k}={v}")]
        for var in container.get("env", []):
            if "value" in var:
                argv += ["--env", f"{var['name']}={substitute(var['value'], scope)}"]
            elif not var["valueFrom"]["secretKeyRef"].get("optional"):
                raise NotImplementedError(f"{task_name}: secret {var['name']}")
        argv += [arg for k, v in {**self.env_overrides, **(env or {})}.items() for arg in ("--env", f"{k}={v}")]
        argv += ["--entrypoint", substitute(container["command"][0], scope), container["image"]]
        argv += [substitute(a, scope) for a in container["command"][1:] + container.get("args", [])]
        deadline = template.get("activeDeadlineSeconds")
        return Pod(task_name, argv, emptydirs, float(deadline) if deadline else None, storage)

    def _security(self, container_context: dict) -> list[str]:
        context = {**self.spec.get("securityContext", {}), **container_context}
        if set(context) - SECURITY_KEYS:
            raise NotImplementedError(f"securityContext {sorted(set(context) - SECURITY_KEYS)} not mapped")
        uid, gid = context.get("runAsUser"), context.get("runAsGroup")
        if context.get("runAsNonRoot"):
            assert uid not in (None, 0), "runAsNonRoot needs a non-root runAsUser to check here"
        argv = ["--user", f"{uid}:{gid}" if gid is not None else str(uid)] if uid is not None else []
        if "fsGroup" in context:
            argv += ["--group-add", str(context["fsGroup"])]
        if context.get("readOnlyRootFilesystem"):
            argv += list(ENGINE.read_only)
        if context.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        for cap in context.get("capabilities", {}).get("drop", []):
            argv += ["--cap-drop", cap]
        for cap in context.get("capabilities", {}).get("add", []):
            argv += ["--cap-add", cap]
        seccomp = context.get("seccompProfile", {}).get("type", "RuntimeDefault")
        if seccomp != "RuntimeDefault":
            raise NotImplementedError(f"seccompProfile {seccomp}")
        return argv

    def run(self, task_name: str, env: dict[str, str] | None = None, podman_args: tuple[str, ...] = ()) -> int | None:
        """One pod of the task, to its end: its exit code (None when the kubelet evicted it);
        its outputs kept when it succeeds. Its peaks are in `usage`."""
        pod = self.pod(task_name, env, podman_args)
        name = pod.argv[pod.argv.index("--name") + 1]
        engine(*pod.argv[:1], "-d", *pod.argv[1:])
        watch = PodWatch(name, pod.storage).start()
        try:
            code = self._wait(name, pod.deadline)
        finally:
            usage = watch.stop()
            self.log[task_name] = logs(name)[-4000:]
            remove(name)
        self.usage.setdefault(task_name, []).append(usage)
        if usage.evicted:  # operator.go:1786-1788: the pod's message, no exit code
            finished = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.attempts.setdefault(task_name, []).append((None, usage.evicted, finished))
            return None
        self._record(task_name, code)
        if code == 0:
            self._collect(task_name, pod)
        return code

    def run_killed_mid_step(self, task_name: str) -> int:
        """One pod of the task killed with SIGKILL (what a lost Spot node does) while its step
        runs: the step's heartbeat (every 50 ms here) says it is inside its work, and the
        pod gets a twentieth of a CPU, so the kill lands long before the step could end.
        Returns the exit code (137); the log proves the step never finished."""
        pod = self.pod(task_name, {"AIRTIME_HEARTBEAT_SECONDS": "0.05"}, ("--cpus", "0.05"))
        name = pod.argv[pod.argv.index("--name") + 1]
        engine(*pod.argv[:1], "-d", *pod.argv[1:])
        try:
            deadline = time.monotonic() + 300
            while "still running" not in logs(name):
                assert time.monotonic() < deadline, f"{task_name} never reported its progress"
                time.sleep(0.05)
            engine("kill", "--signal", "KILL", name)
            code = self._wait(name, 60)
            self.log[task_name] = logs(name)[-4000:]
            self._record(task_name, code)
            return code
        finally:
            remove(name)

    def _record(self, task_name: str, code: int) -> None:
        message = termination_message(self.log[task_name])  # FallbackToLogsOnError
        node = f"main: Error (exit code {code})" + (f": {message}" if message else "")  # operator.go:1864-1868
        finished = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.attempts.setdefault(task_name, []).append((code, "" if code == 0 else node, finished))

    def failures(self, workflow: str) -> str:
        """`{{workflow.failures}}` of the pods run so far, as Argo sets it (operator.go:459-479):
        each failed attempt `task(n)`, its Retry node with the reason the retries stopped, the
        DAG's node; json.Marshal'ed, then strconv.Quote'd. The test decides the retries (each
        `run` is one attempt), so a task whose strategy would still retry is an error here."""
        nodes = []
        for task in self.tasks:
            tried = self.attempts.get(task["name"], [])
            if not tried or tried[-1][0] == 0:
                continue
            name, template = task["name"], task["template"]
            strategy = self.templates[template].get("retryStrategy")
            if not strategy:
                nodes.append(failed_node(workflow, name, tried[-1][1], template, tried[-1][2]))
                continue
            nodes += [failed_node(workflow, f"{name}({i})", message, template, finished)
                      for i, (code, message, finished) in enumerate(tried) if code != 0]
            code = tried[-1][0]
            why = retry_refusal(strategy, len(tried), "Failed", exit_code_variable(code))
            assert why is not None, f"{name}: Argo would try again after exit code {code}"
            nodes.append(failed_node(workflow, name, why or tried[-1][1], template, tried[-1][2]))
        if nodes:  # the DAG's own node, whose pod name is the workflow's (pod_name.go:55)
            last = max(tried[-1][2] for tried in self.attempts.values())
            nodes.append({**failed_node(workflow, workflow, "", self.spec["entrypoint"], last), "podName": workflow})
        return go_quote(go_json(nodes or None))

    def run_exit_handler(self, workflow: str) -> dict[str, int | None]:
        """The onExit DAG once the DAG is done: each task's exit code, None when its `when`
        skipped it."""
        failed = any(tried and tried[-1][0] != 0 for tried in self.attempts.values())
        self.globals = {"workflow.name": workflow, "workflow.namespace": self.template["metadata"]["namespace"],
                        "workflow.status": "Failed" if failed else "Succeeded",
                        "workflow.failures": self.failures(workflow)}
        codes: dict[str, int | None] = {}
        for task in self.exit_tasks:
            if "when" in task and not evaluate_when(substitute(task["when"], self.globals)):
                codes[task["name"]] = None
                continue
            codes[task["name"]] = self.run(task["name"])
        return codes

    def _wait(self, name: str, deadline: float | None) -> int:
        try:
            out = engine("wait", name, timeout=deadline or 3600).stdout.strip()
        except subprocess.TimeoutExpired:  # activeDeadlineSeconds
            engine("kill", name, check=False)
            return int(engine("wait", name).stdout.strip())
        return int(out)

    def _collect(self, task_name: str, pod: Pod) -> None:
        template = self.templates[next(t for t in self.tasks + self.exit_tasks if t["name"] == task_name)["template"]]
        outputs = {}
        for param in template.get("outputs", {}).get("parameters", []):
            path = param["valueFrom"]["path"]
            mount = max((m for m in pod.emptydirs if path.startswith(m.rstrip("/") + "/")), key=len)
            outputs[param["name"]] = (pod.emptydirs[mount] / path[len(mount):].lstrip("/")).read_text().strip()
        self.outputs[task_name] = outputs

    def run_all(self, start_after: str | None = None) -> None:
        order = self.order()
        for task in order[order.index(start_after) + 1:] if start_after else order:
            code = self.run(task)
            assert code == 0, f"{task} exited {code}:\n{self.log.get(task, '')}"
