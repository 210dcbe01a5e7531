"""deploy/gcp under Pulumi's mocks: what the program creates, with which properties, in which
order (issue 23). Run by `make test` in .venv-gcp (see the Makefile)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy.gcp.iam import grants
from deploy.gcp.options import Options
from deploy.gcp.project import APIS
from deploy.names import STACKS, names_for
from tests.gcp_setup.harness import run, run_main

ROOT = Path(__file__).resolve().parents[2]
REPO = "projects/acme-prod/locations/us-central1/connections/github/repositories/airtime"
EVERYTHING = Options(endpoints=True, cloud_run=True, build_repository=REPO,
                     webhook_url="https://hooks.example/x", api_tokens="token-1\n",
                     alert_webhook_url="https://oncall.example/hook", billing_account="0A1B2C-3D4E5F-6A7B8C",
                     budget_amount=200.0, uptime_host="api.acme.example")
IAM_MEMBER_TYPES = {
    "gcp:projects/iAMMember:IAMMember", "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:bigquery/datasetIamMember:DatasetIamMember", "gcp:serviceaccount/iAMMember:IAMMember",
    "gcp:secretmanager/secretIamMember:SecretIamMember",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
    "gcp:endpoints/serviceIamMember:ServiceIamMember", "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
}


@pytest.fixture(scope="module")
def full():
    return run(options=EVERYTHING)


@pytest.fixture(scope="module")
def minimal():
    return run(stack="dev", project="acme-dev", options=Options())


def test_every_api_the_environment_uses_is_enabled_and_left_on_at_destroy(full) -> None:
    services = {r.inputs["service"]: r for r in full.of_type("gcp:projects/service:Service")}
    assert set(APIS) <= set(services)
    assert {"servicemanagement.googleapis.com", "servicecontrol.googleapis.com"} <= set(services)
    assert all(r.inputs["disableOnDestroy"] is False for r in services.values())


def test_google_resources_wait_for_the_apis(full) -> None:
    api = full.named("gcp:projects/service:Service", "container")
    for typ in ("gcp:container/cluster:Cluster", "gcp:storage/bucket:Bucket", "gcp:bigquery/dataset:Dataset",
                "gcp:serviceaccount/account:Account", "gcp:secretmanager/secret:Secret"):
        assert all(api.urn in r.dependencies for r in full.of_type(typ)), typ


def test_the_cluster_is_autopilot_on_the_regular_channel_in_the_stacks_region(full) -> None:
    cluster = full.named("gcp:container/cluster:Cluster", "airtime")
    assert cluster.inputs["enableAutopilot"] is True
    assert cluster.inputs["releaseChannel"] == {"channel": "REGULAR"}
    assert cluster.inputs["location"] == "us-central1"
    assert cluster.inputs["deletionProtection"] is True
    kubeconfig = yaml.safe_load(full.named("pulumi:providers:kubernetes", "gke").inputs["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://203.0.113.10"  # the cluster's endpoint
    assert full.depends_on(full.named("pulumi:providers:kubernetes", "gke"), cluster)


def test_an_existing_cluster_is_adopted_not_created() -> None:
    adopted = run(options=Options(existing_cluster="theirs"))
    assert adopted.of_type("gcp:container/cluster:Cluster") == []
    kubeconfig = yaml.safe_load(adopted.named("pulumi:providers:kubernetes", "gke").inputs["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://203.0.113.20"  # get_cluster's endpoint
    assert kubeconfig["clusters"][0]["name"] == "theirs"


def test_buckets_have_uniform_access_no_public_access_and_soft_delete(full) -> None:
    buckets = {r.inputs["name"]: r for r in full.of_type("gcp:storage/bucket:Bucket")}
    n = full.names
    assert set(buckets) == {n.source_bucket, n.artifact_bucket, n.notifier_bucket}
    for bucket in buckets.values():
        assert bucket.inputs["uniformBucketLevelAccess"] is True
        assert bucket.inputs["publicAccessPrevention"] == "enforced"
        assert bucket.inputs["softDeletePolicy"]["retentionDurationSeconds"] == 7 * 86400


def test_the_artifact_bucket_keeps_versions_and_never_deletes_runs_by_age(full) -> None:
    artifacts = full.named("gcp:storage/bucket:Bucket", full.names.artifact_bucket)
    assert artifacts.inputs["versioning"] == {"enabled": True}
    rules = artifacts.inputs["lifecycleRules"]
    assert all(rule["action"]["type"] == "Delete" for rule in rules)
    by_age = [rule["condition"] for rule in rules if "age" in rule["condition"]]
    # docs/generations.md: a lifecycle rule cannot read the ledger; only Argo's logs go by age
    assert by_age == [{"age": 30, "matchesPrefixes": ["argo/"]}]
    assert {"daysSinceNoncurrentTime": 30} in [rule["condition"] for rule in rules]


def test_the_dataset_is_created_with_the_charts_location_and_kept_on_destroy(full) -> None:
    dataset = full.named("gcp:bigquery/dataset:Dataset", "airtime")
    assert dataset.inputs["location"] == "US"
    assert dataset.inputs["deleteContentsOnDestroy"] is False


def test_the_image_repository_is_a_docker_repository_in_the_region(full) -> None:
    repo = full.named("gcp:artifactregistry/repository:Repository", "airtime")
    assert (repo.inputs["format"], repo.inputs["location"]) == ("DOCKER", "us-central1")


def test_each_identity_has_its_own_service_account(full) -> None:
    ids = {r.inputs["accountId"] for r in full.of_type("gcp:serviceaccount/account:Account")}
    n = full.names
    assert ids == {n.pipeline_gsa, n.server_gsa, n.deployer_gsa, n.notifier_gsa, n.argo_server_gsa,
                   n.notifier_push_gsa, n.gateway_gsa}


def test_workload_identity_binds_exactly_the_kubernetes_accounts_the_chart_and_argo_render(full) -> None:
    n = full.names
    wi = {(r.inputs["serviceAccountId"].split("/")[-1], r.inputs["member"])
          for r in full.of_type("gcp:serviceaccount/iAMMember:IAMMember")
          if r.inputs["role"] == "roles/iam.workloadIdentityUser"}
    assert wi == {
        (n.gsa_email(n.pipeline_gsa), "serviceAccount:acme-prod.svc.id.goog[airtime/airtime-pipeline]"),
        (n.gsa_email(n.server_gsa), "serviceAccount:acme-prod.svc.id.goog[airtime/airtime-server]"),
        (n.gsa_email(n.argo_server_gsa), "serviceAccount:acme-prod.svc.id.goog[airtime/argo-workflows-server]"),
    }
    cluster = full.named("gcp:container/cluster:Cluster", "airtime")
    assert all(cluster.urn in r.dependencies for r in full.of_type("gcp:serviceaccount/iAMMember:IAMMember")
               if r.inputs["role"] == "roles/iam.workloadIdentityUser")


def test_every_grant_of_iam_py_is_one_member_and_nothing_else_is_granted_to_its_identities(full) -> None:
    n = full.names
    expected = {(n.gsa_email(getattr(n, f"{g.identity}_gsa")), g.role)
                for g in grants(n, cloud_run=True, endpoints=True)}
    made = set()
    for r in full.resources:
        if r.type in IAM_MEMBER_TYPES and r.inputs["role"] != "roles/iam.workloadIdentityUser":
            made.add((r.inputs["member"].removeprefix("serviceAccount:"), r.inputs["role"]))
    iam_py_accounts = {n.gsa_email(g) for g in (n.pipeline_gsa, n.server_gsa, n.deployer_gsa, n.notifier_gsa)}
    assert {m for m in made if m[0] in iam_py_accounts} == expected
    assert len([g for g in grants(n, cloud_run=True, endpoints=True)]) == len(
        [r for r in full.resources if r.type in IAM_MEMBER_TYPES
         and r.inputs["member"].removeprefix("serviceAccount:") in iam_py_accounts
         and r.inputs["role"] != "roles/iam.workloadIdentityUser"])


def test_the_server_reads_the_artifact_bucket(full) -> None:
    n = full.names
    assert any(r.inputs["bucket"] == n.artifact_bucket and r.inputs["role"] == "roles/storage.objectViewer"
               and r.inputs["member"] == f"serviceAccount:{n.gsa_email(n.server_gsa)}"
               for r in full.of_type("gcp:storage/bucketIAMMember:BucketIAMMember"))


def test_the_argo_server_reads_the_artifact_bucket(full) -> None:
    n = full.names
    assert any(r.inputs["bucket"] == n.artifact_bucket and r.inputs["role"] == "roles/storage.objectViewer"
               and r.inputs["member"] == f"serviceAccount:{n.gsa_email(n.argo_server_gsa)}"
               for r in full.of_type("gcp:storage/bucketIAMMember:BucketIAMMember"))


@pytest.mark.parametrize("options", [Options(), EVERYTHING], ids=["minimal", "everything"])
def test_no_basic_role_is_granted_anywhere(options) -> None:
    made = run(options=options)
    roles = {r.inputs["role"] for r in made.resources if r.type in IAM_MEMBER_TYPES}
    assert roles and not roles & {"roles/owner", "roles/editor", "roles/viewer"}


def test_secrets_exist_for_the_webhooks_and_tokens_with_versions_only_for_given_values(full, minimal) -> None:
    n = full.names
    ids = {r.inputs["secretId"] for r in full.of_type("gcp:secretmanager/secret:Secret")}
    assert ids == {n.webhook_secret, n.tokens_secret, n.build_webhook_secret, n.alert_webhook_secret}
    versions = {r.name for r in full.of_type("gcp:secretmanager/secretVersion:SecretVersion")}
    assert versions == {f"{n.webhook_secret}-value", f"{n.tokens_secret}-value",
                        f"{n.alert_webhook_secret}-value"}  # no build webhook given
    assert minimal.of_type("gcp:secretmanager/secretVersion:SecretVersion") == []


def test_the_triggers_gate_pull_requests_and_deploy_merges_as_the_deployer(full) -> None:
    n = full.names
    pr = full.named("gcp:cloudbuild/trigger:Trigger", n.pr_trigger)
    deploy = full.named("gcp:cloudbuild/trigger:Trigger", n.deploy_trigger)
    assert pr.inputs["repositoryEventConfig"]["pullRequest"] == {"branch": "^production$"}
    assert deploy.inputs["repositoryEventConfig"]["push"] == {"branch": "^production$"}
    for trigger, deploying in ((pr, "false"), (deploy, "true")):
        assert trigger.inputs["filename"] == "cloudbuild.yaml"
        assert trigger.inputs["serviceAccount"] == f"projects/acme-prod/serviceAccounts/{n.gsa_email(n.deployer_gsa)}"
        assert trigger.inputs["substitutions"]["_DEPLOY"] == deploying
        assert trigger.inputs["substitutions"]["_ARTIFACT_BUCKET"] == n.artifact_bucket
        assert trigger.inputs["substitutions"]["_SOURCE"] == n.source_url


def test_the_notifier_reads_its_config_with_the_trigger_ids_and_only_pubsub_may_call_it(full) -> None:
    n = full.names
    config = yaml.safe_load(full.named("gcp:storage/bucketObject:BucketObject", "notifier.yaml").inputs["content"])
    assert f"id-of-{n.pr_trigger}" in config["spec"]["notification"]["filter"]
    assert config["spec"]["secrets"][0]["value"] == f"projects/acme-prod/secrets/{n.build_webhook_secret}/versions/latest"
    service = full.named("gcp:cloudrunv2/service:Service", n.notifier_service)
    assert service.inputs["template"]["serviceAccount"] == n.gsa_email(n.notifier_gsa)
    invokers = [r.inputs["member"] for r in full.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
                if r.inputs["name"] == n.notifier_service]
    assert invokers == [f"serviceAccount:{n.gsa_email(n.notifier_push_gsa)}"]
    push = full.named("gcp:pubsub/subscription:Subscription", n.notifier_service).inputs
    assert push["pushConfig"]["oidcToken"]["serviceAccountEmail"] == n.gsa_email(n.notifier_push_gsa)


def test_no_trigger_or_notifier_without_a_connected_repository(minimal) -> None:
    assert minimal.of_type("gcp:cloudbuild/trigger:Trigger") == []
    assert minimal.of_type("gcp:pubsub/subscription:Subscription") == []


def test_the_endpoints_service_is_deploy_endpoints_configuration_for_the_project(full, minimal) -> None:
    n = full.names
    service = full.named("gcp:endpoints/service:Service", n.endpoints_service)
    assert yaml.safe_load(service.inputs["grpcConfig"])["name"] == n.endpoints_service
    assert service.inputs["protocOutputBase64"]
    assert minimal.of_type("gcp:endpoints/service:Service") == []


def test_the_endpoints_service_itself_is_enabled_so_the_deployer_never_has_to(full, minimal) -> None:
    n = full.names
    service = full.named("gcp:endpoints/service:Service", n.endpoints_service)
    enabled = full.named("gcp:projects/service:Service", f"{n.endpoints_service}-enabled")
    assert enabled.inputs["service"] == n.endpoints_service and enabled.inputs["disableOnDestroy"] is False
    assert service.urn in enabled.dependencies
    assert all(r.inputs["service"] != n.endpoints_service for r in minimal.of_type("gcp:projects/service:Service"))


def test_cloud_run_services_only_when_the_stack_asks_and_run_as_their_accounts(full, minimal) -> None:
    n = full.names
    assert minimal.of_type("gcp:cloudrunv2/service:Service") == []
    server = full.named("gcp:cloudrunv2/service:Service", n.cloud_run_service)
    gateway = full.named("gcp:cloudrunv2/service:Service", n.cloud_run_gateway)
    assert server.inputs["template"]["serviceAccount"] == n.gsa_email(n.server_gsa)
    assert gateway.inputs["template"]["serviceAccount"] == n.gsa_email(n.gateway_gsa)
    invokers = [r.inputs["member"] for r in full.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
                if r.inputs["name"] == n.cloud_run_service and r.inputs["role"] == "roles/run.invoker"]
    assert invokers == [f"serviceAccount:{n.gsa_email(n.gateway_gsa)}"]


def test_the_namespace_comes_before_argo_and_argo_before_the_chart(full) -> None:
    namespace = full.named("kubernetes:core/v1:Namespace", "namespace-airtime")
    argo = full.named("kubernetes:helm.sh/v3:Release", "argo-workflows")
    chart = full.named("kubernetes:helm.sh/v3:Release", "airtime")
    assert full.depends_on(argo, namespace) and full.depends_on(chart, argo)
    assert full.index(namespace) < full.index(argo) < full.index(chart)
    assert argo.inputs["namespace"] == chart.inputs["namespace"] == "airtime"


def test_argo_watches_only_the_workflow_namespace_at_the_pinned_chart(full) -> None:
    argo = full.named("kubernetes:helm.sh/v3:Release", "argo-workflows")
    assert argo.inputs["version"] == "1.0.18"
    assert argo.inputs["values"]["singleNamespace"] is True
    annotations = argo.inputs["values"]["server"]["serviceAccount"]["annotations"]
    assert annotations["iam.gke.io/gcp-service-account"] == full.names.gsa_email(full.names.argo_server_gsa)


def test_the_chart_waits_for_the_pods_identities_and_secrets(full) -> None:
    chart = full.named("kubernetes:helm.sh/v3:Release", "airtime")
    for wi in full.of_type("gcp:serviceaccount/iAMMember:IAMMember"):
        if wi.inputs["role"] == "roles/iam.workloadIdentityUser":
            assert full.depends_on(chart, wi), wi.name
    for secret in full.of_type("kubernetes:core/v1:Secret"):
        assert full.depends_on(chart, secret), secret.name


def test_the_charts_first_revision_names_the_stacks_resources_and_starts_nothing(full) -> None:
    n = full.names
    values = full.named("kubernetes:helm.sh/v3:Release", "airtime").inputs["values"]
    assert values["settings"]["artifactBucket"] == n.artifact_bucket
    assert values["settings"]["source"] == f"gs://{n.source_bucket}"
    assert values["server"]["serviceAccount"]["gcpServiceAccount"] == n.gsa_email(n.server_gsa)
    assert values["workflow"]["serviceAccount"] == {"name": n.pipeline_ksa,
                                                   "gcpServiceAccount": n.gsa_email(n.pipeline_gsa)}
    assert values["server"]["enabled"] is False and values["workflow"]["suspend"] is True


def test_the_deployer_may_install_the_release_in_its_namespace_only(full) -> None:
    binding = full.named("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "deployer-admin")
    assert binding.inputs["metadata"]["namespace"] == "airtime"
    assert binding.inputs["roleRef"]["name"] == "admin" and binding.inputs["roleRef"]["kind"] == "ClusterRole"
    assert binding.inputs["subjects"][0]["name"] == full.names.gsa_email(full.names.deployer_gsa)


def test_the_stack_exports_what_skaffold_reads(full) -> None:
    text = (ROOT / "skaffold.yaml").read_text()
    for variable in ("AIRTIME_GCP_PROJECT", "AIRTIME_ARTIFACT_BUCKET", "AIRTIME_SOURCE", "AIRTIME_BQ_DATASET"):
        assert "{{." + variable + "}}" in text


def test_the_three_stacks_are_three_projects_with_distinct_names() -> None:
    configs = {s: yaml.safe_load((ROOT / "deploy" / "gcp" / f"Pulumi.{s}.yaml").read_text())["config"]
               for s in STACKS}
    names = [names_for(s, c["gcp:project"], c["gcp:region"]) for s, c in configs.items()]
    for field in ("project", "source_bucket", "artifact_bucket", "notifier_bucket", "endpoints_service"):
        assert len({getattr(x, field) for x in names}) == len(STACKS), field


def test_the_entry_point_reads_the_stacks_config() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "gcp" / "Pulumi.prod.yaml").read_text())["config"]
    made = run_main("prod", {key: str(value).lower() if isinstance(value, bool) else str(value)
                             for key, value in config.items()})
    assert made.named("gcp:storage/bucket:Bucket", "airtime-prod-airtime-artifacts")
    assert made.of_type("gcp:endpoints/service:Service") and made.of_type("gcp:cloudbuild/trigger:Trigger")


def test_secret_config_reaches_secret_manager_and_the_cluster_as_secrets() -> None:
    config = {"gcp:project": "acme-prod", "airtime:webhookUrl": "https://hooks.example/y"}
    made = run_main("prod", config, secret_keys=["airtime:webhookUrl"])
    n = made.names
    version = made.named("gcp:secretmanager/secretVersion:SecretVersion", f"{n.webhook_secret}-value")
    assert version.inputs["secretData"] == "https://hooks.example/y"
    assert version.secret_inputs >= {"secretData"}
    secret = made.named("kubernetes:core/v1:Secret", n.webhook_k8s_secret)
    assert secret.inputs["stringData"] == {"url": "https://hooks.example/y"}
    assert made.of_type("gcp:secretmanager/secretVersion:SecretVersion") == [version]  # no tokens given


def test_the_environment_is_watched_slos_dashboard_and_policies_in_every_stack(full, minimal) -> None:
    monitoring = ROOT / "deploy" / "monitoring"
    for run_ in (full, minimal):
        assert len(run_.of_type("gcp:monitoring/dashboard:Dashboard")) == 1
        assert run_.of_type("gcp:monitoring/slo:Slo")
        assert len(run_.of_type("gcp:monitoring/alertPolicy:AlertPolicy")) >= len(list((monitoring / "policies").glob("*.json"))) - 1
    api = full.named("gcp:projects/service:Service", "monitoring")
    assert all(api.urn in r.dependencies for r in full.of_type("gcp:monitoring/dashboard:Dashboard"))


def test_alerts_reach_the_webhook_the_program_stored_and_a_budget_only_with_a_billing_account(full, minimal) -> None:
    n = full.names
    version = full.named("gcp:secretmanager/secretVersion:SecretVersion", f"{n.alert_webhook_secret}-value")
    assert "secretData" in version.secret_inputs
    [channel] = full.of_type("gcp:monitoring/notificationChannel:NotificationChannel")
    assert channel.inputs["type"] == "webhook_tokenauth"
    [budget] = full.of_type("gcp:billing/budget:Budget")
    assert budget.inputs["billingAccount"] == "0A1B2C-3D4E5F-6A7B8C"
    assert "billingbudgets.googleapis.com" in {r.inputs["service"] for r in full.of_type("gcp:projects/service:Service")}
    # without the stack's alertWebhookUrl and billingAccount: no channel, no budget, no budget API
    assert minimal.of_type("gcp:monitoring/notificationChannel:NotificationChannel") == []
    assert minimal.of_type("gcp:billing/budget:Budget") == []
    assert "billingbudgets.googleapis.com" not in {r.inputs["service"] for r in minimal.of_type("gcp:projects/service:Service")}
