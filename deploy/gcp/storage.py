"""The source, artifact and notifier buckets, and the image repository.

Retention follows the published generations (docs/generations.md, "Retention"): `runs/` is never
deleted by age, since a published generation a later day still reads can be any age when
deliveries pause; `airtime prune` (by the ledger, AIRTIME_RETENTION_DAYS) removes what nobody
reads. Versioning keeps a damaged or deleted artifact restorable, for 30 days once noncurrent;
Argo's archived step logs (`argo/`) are disposable after 30 days.
"""

from __future__ import annotations

import pulumi_gcp as gcp

from deploy.gcp.project import after
from deploy.names import Names

LOG_DAYS = 30  # argo/: archived step logs
NONCURRENT_DAYS = 30  # a replaced or deleted artifact, restorable this long
SOFT_DELETE_SECONDS = 7 * 86400  # Cloud Storage's default soft delete, stated

_rule = gcp.storage.BucketLifecycleRuleArgs
_action = gcp.storage.BucketLifecycleRuleActionArgs
_condition = gcp.storage.BucketLifecycleRuleConditionArgs


def _bucket(name: str, names: Names, apis: list, *, versioning: bool, lifecycle: list | None = None):
    return gcp.storage.Bucket(
        name, name=name, project=names.project, location=names.region,
        uniform_bucket_level_access=True, public_access_prevention="enforced",
        versioning=gcp.storage.BucketVersioningArgs(enabled=versioning),
        soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(retention_duration_seconds=SOFT_DELETE_SECONDS),
        lifecycle_rules=lifecycle or [],
        labels={"app": "airtime", "stack": names.stack},
        opts=after(apis),
    )


def buckets(names: Names, apis: list) -> dict[str, gcp.storage.Bucket]:
    """By bucket name: deliveries (kept: a re-run of any day reads them), artifacts, notifier."""
    artifact_rules = [
        _rule(action=_action(type="Delete"), condition=_condition(age=LOG_DAYS, matches_prefixes=["argo/"])),
        # applies to noncurrent versions only (https://cloud.google.com/storage/docs/lifecycle#conditions)
        _rule(action=_action(type="Delete"), condition=_condition(days_since_noncurrent_time=NONCURRENT_DAYS)),
    ]
    made = [
        _bucket(names.source_bucket, names, apis, versioning=False),
        _bucket(names.artifact_bucket, names, apis, versioning=True, lifecycle=artifact_rules),
        _bucket(names.notifier_bucket, names, apis, versioning=False),
    ]
    return {names.source_bucket: made[0], names.artifact_bucket: made[1], names.notifier_bucket: made[2]}


def image_repository(names: Names, apis: list) -> gcp.artifactregistry.Repository:
    return gcp.artifactregistry.Repository(
        names.image_repository, repository_id=names.image_repository, project=names.project,
        location=names.region, format="DOCKER", description="airtime images",
        opts=after(apis),
    )
