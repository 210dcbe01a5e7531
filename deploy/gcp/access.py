"""deploy/gcp/iam.py's grants, each made one IAM member resource on its scope.

Additive members (never a policy of the whole resource): grants made outside the program (a
human's, Google's service agents') are left alone.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from deploy.gcp.iam import Grant
from deploy.names import Names


def members(names: Names, grants: list[Grant], accounts: dict, resources: dict) -> list[pulumi.Resource]:
    """`resources` maps (scope, resource name) to the resource the program made, so each member
    waits for its resource and names it by the resource's own output."""
    made = []
    for grant in grants:
        member = accounts[grant.identity].email.apply(lambda email: f"serviceAccount:{email}")
        target = resources.get((grant.scope, grant.resource))
        if grant.scope != "project" and target is None:
            raise ValueError(f"{grant.identity}: {grant.role} on {grant.scope} {grant.resource!r}, "
                             "which this stack does not create")
        label = f"{grant.identity}-{grant.role.removeprefix('roles/')}-{grant.scope}-{grant.resource or names.project}"
        made.append(_member(grant, label, member, target, names))
    return made


def _member(grant: Grant, label: str, member, target, names: Names) -> pulumi.Resource:
    role = grant.role
    match grant.scope:
        case "project":
            return gcp.projects.IAMMember(label, project=names.project, role=role, member=member)
        case "bucket":
            return gcp.storage.BucketIAMMember(label, bucket=target.name, role=role, member=member)
        case "dataset":
            return gcp.bigquery.DatasetIamMember(label, project=names.project, dataset_id=target.dataset_id,
                                                 role=role, member=member)
        case "service_account":
            return gcp.serviceaccount.IAMMember(label, service_account_id=target.name, role=role, member=member)
        case "secret":
            return gcp.secretmanager.SecretIamMember(label, project=names.project, secret_id=target.secret_id,
                                                     role=role, member=member)
        case "repository":
            return gcp.artifactregistry.RepositoryIamMember(label, project=names.project, location=names.region,
                                                            repository=target.repository_id, role=role,
                                                            member=member)
        case "endpoints_service":
            return gcp.endpoints.ServiceIamMember(label, service_name=target.service_name, role=role, member=member)
        case "cloud_run_service":
            return gcp.cloudrunv2.ServiceIamMember(label, project=names.project, location=names.region,
                                                   name=target.name, role=role, member=member)
    raise ValueError(f"unknown scope {grant.scope!r}")
