"""Cloud Build: the two triggers of cloudbuild.yaml (the pull-request gate and the deploy, both
run as the deployer's account), and the notifier that posts their failures to the team's chat
(Google's Cloud Build notifier on Cloud Run, fed by the `cloud-builds` Pub/Sub topic)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from deploy.gcp.charts import ROOT
from deploy.gcp.options import Options
from deploy.gcp.project import after
from deploy.names import Names

NOTIFIER_CONFIG = ROOT / ".ci" / "cloudbuild-notifier.yaml"
# Google's Slack notifier image (https://cloud.google.com/build/docs/configuring-notifications/configure-slack)
NOTIFIER_IMAGE = "us-east1-docker.pkg.dev/gcb-release/cloud-build-notifiers/slack:latest"


def triggers(names: Names, options: Options, deployer, apis: list) -> dict[str, gcp.cloudbuild.Trigger]:
    """The gate on pull requests to the production branch (_DEPLOY=false) and the deploy on
    merges (_DEPLOY=true), with cloudbuild.yaml's substitutions taken from the stack's names."""
    branch = f"^{options.production_branch}$"
    event = gcp.cloudbuild.TriggerRepositoryEventConfigArgs
    events = {
        names.pr_trigger: ("false", event(repository=options.build_repository,
                                          pull_request=gcp.cloudbuild.TriggerRepositoryEventConfigPullRequestArgs(
                                              branch=branch))),
        names.deploy_trigger: ("true", event(repository=options.build_repository,
                                             push=gcp.cloudbuild.TriggerRepositoryEventConfigPushArgs(branch=branch))),
    }
    return {
        name: gcp.cloudbuild.Trigger(
            name, name=name, project=names.project, location=names.region, filename="cloudbuild.yaml",
            repository_event_config=config,
            service_account=deployer.name,  # projects/P/serviceAccounts/EMAIL
            substitutions={
                "_DEPLOY": deploy, "_REGION": names.region, "_CLUSTER": names.cluster,
                "_AR_REPOSITORY": names.image_repository, "_ARTIFACT_BUCKET": names.artifact_bucket,
                "_SOURCE": names.source_url, "_BQ_DATASET": names.dataset,
            },
            opts=after(apis),
        )
        for name, (deploy, config) in events.items()
    }


def notifier(names: Names, triggers: dict, accounts: dict, buckets: dict, secrets: dict,
             apis: list) -> gcp.cloudrunv2.Service:
    topic = gcp.pubsub.Topic(names.build_topic, name=names.build_topic, project=names.project, opts=after(apis))
    config = pulumi.Output.all(triggers[names.pr_trigger].trigger_id, triggers[names.deploy_trigger].trigger_id).apply(
        lambda ids: NOTIFIER_CONFIG.read_text().replace("PROJECT_ID", names.project)
        .replace("AIRTIME_PR_TRIGGER_ID", ids[0]).replace("AIRTIME_DEPLOY_TRIGGER_ID", ids[1]))
    config_object = gcp.storage.BucketObject(
        "notifier.yaml", bucket=buckets[names.notifier_bucket].name, name="notifier.yaml", content=config)
    service = gcp.cloudrunv2.Service(
        names.notifier_service, name=names.notifier_service, project=names.project, location=names.region,
        ingress="INGRESS_TRAFFIC_ALL", deletion_protection=False,
        template=gcp.cloudrunv2.ServiceTemplateArgs(
            service_account=accounts["notifier"].email,
            containers=[gcp.cloudrunv2.ServiceTemplateContainerArgs(
                image=NOTIFIER_IMAGE,
                envs=[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(
                          name="CONFIG_PATH", value=f"gs://{names.notifier_bucket}/notifier.yaml"),
                      gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name="PROJECT_ID", value=names.project)],
            )],
        ),
        opts=after(apis + [config_object, secrets[names.build_webhook_secret]]),
    )
    # only Pub/Sub's push, as its own account, may call the notifier (no allUsers)
    invoker = gcp.cloudrunv2.ServiceIamMember(
        "notifier_push-run.invoker", project=names.project, location=names.region, name=service.name,
        role="roles/run.invoker", member=accounts["notifier_push"].email.apply(lambda e: f"serviceAccount:{e}"))
    gcp.pubsub.Subscription(
        names.notifier_service, name=names.notifier_service, project=names.project, topic=topic.id,
        push_config=gcp.pubsub.SubscriptionPushConfigArgs(
            push_endpoint=service.uri,
            oidc_token=gcp.pubsub.SubscriptionPushConfigOidcTokenArgs(
                service_account_email=accounts["notifier_push"].email)),
        opts=pulumi.ResourceOptions(depends_on=[invoker]),
    )
    return service
