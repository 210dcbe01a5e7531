"""Runs deploy/gcp's program under Pulumi's mocks and records what it registers: each resource's
type, name, resolved inputs and the URNs it waited for (its dependencies), in order.

Runs in the program's own venv (.venv-gcp: pulumi needs protobuf < 7, the project's gRPC code
>= 7), so nothing here imports the project beyond deploy/names.py and deploy/gcp/.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from deploy.gcp.charts import ROOT
from deploy.gcp.options import Options
from deploy.gcp.program import create
from deploy.names import Names, names_for


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict
    urn: str
    dependencies: set[str] = field(default_factory=set)
    secret_inputs: set[str] = field(default_factory=set)  # top-level inputs marked secret


class Mocks(pulumi.runtime.Mocks):
    """Outputs a provider would compute, enough for the program's applies to run."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "gcp:serviceaccount/account:Account":
            state["email"] = f"{args.inputs['accountId']}@{args.inputs['project']}.iam.gserviceaccount.com"
            state["name"] = f"projects/{args.inputs['project']}/serviceAccounts/{state['email']}"
        if args.typ == "gcp:container/cluster:Cluster":
            state["endpoint"] = "203.0.113.10"
            state["masterAuth"] = {"clusterCaCertificate": "Q0E="}
        if args.typ == "gcp:cloudbuild/trigger:Trigger":
            state["triggerId"] = f"id-of-{args.name}"
        if args.typ == "gcp:cloudrunv2/service:Service":
            state["uri"] = f"https://{args.name}-abc-uc.a.run.app"
        if args.typ == "gcp:secretmanager/secretVersion:SecretVersion":
            state["name"] = f"{args.inputs['secret']}/versions/1"
        if args.typ == "gcp:secretmanager/secret:Secret":
            state["id"] = f"projects/{args.inputs['project']}/secrets/{args.inputs['secretId']}"
        return state.get("id", f"{args.name}-id"), state  # a secret's id is its resource name

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "gcp:container/getCluster:getCluster":
            return {"endpoint": "203.0.113.20", "masterAuths": [{"clusterCaCertificate": "Q0E="}],
                    "name": args.args["name"]}
        if args.token == "gcp:secretmanager/getSecretVersion:getSecretVersion":
            return {**args.args, "secretData": "https://oncall.example/hook",
                    "name": f"{args.args['secret']}/versions/{args.args.get('version', 'latest')}"}
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": args.args["projectId"], "number": "123456789012"}
        return {}





def unwrap(value):
    """The value of every secret in a recorded state (the program's tests read through them)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            state = self.resources[response.urn].state
            secret = {key for key, value in state.items()
                      if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig}
            self.registered.append(Registered(request.type, request.name, unwrap(state), response.urn,
                                              set(request.dependencies), secret))
        return response


@dataclass
class Run:
    names: Names
    resources: list[Registered]

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def named(self, typ: str, name: str) -> Registered:
        [found] = [r for r in self.of_type(typ) if r.name == name]
        return found

    def index(self, resource: Registered) -> int:
        return self.resources.index(resource)

    def depends_on(self, resource: Registered, other: Registered) -> bool:
        """True when `resource` waited for `other`, directly or through its dependencies."""
        by_urn = {r.urn: r for r in self.resources}
        seen, todo = set(), list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn == other.urn:
                return True
            if urn not in seen and urn in by_urn:
                seen.add(urn)
                todo.extend(by_urn[urn].dependencies)
        return False


def run(stack: str = "prod", project: str = "acme-prod", options: Options | None = None) -> Run:
    names = names_for(stack, project)
    monitor = RecordingMonitor(Mocks())
    pulumi.runtime.set_mocks(Mocks(), project="airtime", stack=stack, preview=False, monitor=monitor)

    @pulumi.runtime.test
    def program():
        create(names, options or Options())

    program()
    return Run(names, monitor.registered)


def run_main(stack: str, config: dict[str, str], secret_keys: list[str] = ()) -> Run:
    """deploy/gcp/__main__.py as `pulumi up` runs it, with the stack's config."""
    import runpy

    monitor = RecordingMonitor(Mocks())
    pulumi.runtime.set_mocks(Mocks(), project="airtime", stack=stack, preview=False, monitor=monitor)
    # a fresh map each run (set_config would write into one shared by every run)
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(ROOT / "deploy" / "gcp" / "__main__.py"), run_name="__main__")

    program()
    return Run(names_for(stack, config["gcp:project"], config.get("gcp:region", "us-central1")), monitor.registered)
