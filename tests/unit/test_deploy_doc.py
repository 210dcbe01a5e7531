"""docs/deploy.md against the program it documents (issue 23): the mandatory path stays short
and ends in `pulumi up` and `skaffold run`, the grant table is deploy/gcp/iam.py's, and the
variables the path uses are the ones the stack exports."""

from __future__ import annotations

import re

from deploy.gcp.charts import skaffold_env
from deploy.gcp.iam import grants
from deploy.names import names_for
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "deploy.md").read_text()
EXAMPLE = names_for("prod", "my-project")


def mandatory_path() -> list[str]:
    section = DOC.split("## 1. ", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```bash\n(.*?)```", section.split("What each line does", 1)[0], re.S)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def grant_table() -> set[tuple[str, str, str]]:
    section = DOC.split("### Why each grant exists", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| ([a-z_-]+) \| `([^`]+)` \| ([^|]+) \|", section, re.M)
    return {(identity, role, on.strip()) for identity, role, on in rows if identity != "identity"}


def described(grant) -> str:
    if grant.scope == "project":
        return "the project"
    return f"{grant.scope.replace('_', ' ')} `{grant.resource.replace(EXAMPLE.project, 'PROJECT')}`"


def test_the_mandatory_path_is_a_dozen_commands_from_state_bucket_to_skaffold_run() -> None:
    commands = mandatory_path()
    assert len(commands) <= 12, commands
    assert any(c.startswith("gcloud storage buckets create") and "pulumi-state" in c for c in commands)
    assert "pulumi -C deploy/gcp up" in commands
    assert commands[-1].startswith("skaffold run -p prod")


def test_the_grant_table_is_iam_py() -> None:
    table = grant_table()
    expected = {(g.identity, g.role, described(g)) for g in grants(EXAMPLE, cloud_run=True, endpoints=True)}
    assert expected <= table, sorted(expected - table)
    iam_rows = {row for row in table if row[0] in {"pipeline", "server", "deployer", "notifier"}}
    assert iam_rows == expected, sorted(iam_rows - expected)


def test_the_server_reads_the_artifact_bucket_in_the_table() -> None:
    assert ("server", "roles/storage.objectViewer", "bucket `PROJECT-airtime-artifacts`") in grant_table()


def test_the_variables_the_path_uses_are_the_stacks_outputs() -> None:
    used = set(re.findall(r"\$\{?(AIRTIME_[A-Z_]+)", "\n".join(mandatory_path())))
    assert used and used <= set(skaffold_env(EXAMPLE))
    skaffold = (ROOT / "skaffold.yaml").read_text()
    for variable in re.findall(r"\{\{\.(AIRTIME_[A-Z_]+)\}\}", skaffold):
        assert variable in skaffold_env(EXAMPLE), variable


def test_the_workload_identity_members_named_are_the_programs() -> None:
    for namespace, ksa in ((EXAMPLE.namespace, EXAMPLE.pipeline_ksa), (EXAMPLE.namespace, EXAMPLE.server_ksa),
                           (EXAMPLE.argo_namespace, EXAMPLE.argo_server_ksa)):
        assert f"[{namespace}/{ksa}]" in DOC


if __name__ == "__main__":
    # `python -m tests.unit.test_deploy_doc`: the grant table's rows from iam.py, to paste into
    # docs/deploy.md ("Why each grant exists") after iam.py changes
    for g in grants(EXAMPLE, cloud_run=True, endpoints=True):
        print(f"| {g.identity} | `{g.role}` | {described(g)} | {g.why} |")
