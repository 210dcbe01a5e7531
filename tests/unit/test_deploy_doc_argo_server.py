"""The documented install gives the Argo Server a Google identity that can read the step logs
Argo archives to the artifact bucket (docs/deploy.md, sections 3, 5 and 6): it reads them with
its own default credentials (argo-workflows v4.1.2 workflow/artifacts/gcs/gcs.go:76-81)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "deploy.md").read_text()


def argo_values() -> dict:
    [body] = re.findall(r"cat > /tmp/argo-values.yaml <<EOF\n(.*?)\nEOF\n", DOC, re.DOTALL)
    return yaml.safe_load(body.replace("$PROJECT_ID", "my-project"))


def test_the_argo_server_service_account_is_annotated_for_workload_identity() -> None:
    annotations = argo_values()["server"]["serviceAccount"]["annotations"]
    assert annotations["iam.gke.io/gcp-service-account"] == "airtime-argo-server@my-project.iam.gserviceaccount.com"


def test_that_google_account_exists_reads_the_artifact_bucket_and_binds_argo_servers_account() -> None:
    assert 'gcloud iam service-accounts create airtime-argo-server' in DOC
    assert 'ARGO="airtime-argo-server@$PROJECT_ID.iam.gserviceaccount.com"' in DOC
    assert re.search(r'add-iam-policy-binding "gs://\$PROJECT_ID-airtime-artifacts" \\\n'
                     r'  --member "serviceAccount:\$ARGO" --role roles/storage.objectViewer', DOC)
    # argo-helm 1.0.18: release argo-workflows, ServiceAccount <fullname>-server, namespace argo
    assert re.search(r'add-iam-policy-binding "\$ARGO" --role roles/iam.workloadIdentityUser \\\n'
                     r'  --member "serviceAccount:\$PROJECT_ID.svc.id.goog\[argo/argo-workflows-server\]"', DOC)
    assert "helm install argo-workflows argo/argo-workflows --namespace argo" in DOC
