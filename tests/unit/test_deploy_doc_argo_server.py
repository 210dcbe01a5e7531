"""The Argo Server gets a Google identity that can read the step logs Argo archives to the
artifact bucket: it reads them with its own default credentials (argo-workflows v4.1.2
workflow/artifacts/gcs/gcs.go:76-81). The program makes the account, its read grant and its
Workload Identity binding (tests/gcp_setup); here, argo-helm's values and the docs say so."""

from __future__ import annotations

from deploy.gcp.charts import ARGO_VERSION, argo_values
from deploy.names import names_for
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "deploy.md").read_text()
NAMES = names_for("prod", "my-project")


def test_the_argo_server_service_account_is_annotated_for_workload_identity() -> None:
    annotations = argo_values(NAMES)["server"]["serviceAccount"]["annotations"]
    assert annotations["iam.gke.io/gcp-service-account"] == "airtime-argo-server@my-project.iam.gserviceaccount.com"


def test_the_docs_name_its_read_grant_and_its_binding() -> None:
    assert "| argo-server | `roles/storage.objectViewer` | bucket `PROJECT-airtime-artifacts` |" in DOC
    # argo-helm 1.0.18: release argo-workflows, ServiceAccount <fullname>-server, in the
    # workflow namespace (singleNamespace)
    assert "[airtime/argo-workflows-server]" in DOC
    assert f"argo-helm {ARGO_VERSION}" in DOC
