"""The BigQuery dataset. The tables are the load step's (created on first load, idempotently);
creating the dataset here spares the pipeline the project-wide bigquery.datasets.create."""

from __future__ import annotations

import pulumi_gcp as gcp

from deploy.gcp.project import after
from deploy.names import Names


def dataset(names: Names, apis: list) -> gcp.bigquery.Dataset:
    # no default_partition_expiration_ms: expiry counts from the wall clock and would drop the
    # served date after a pause in deliveries; `airtime prune` with
    # AIRTIME_WAREHOUSE_RETENTION_DAYS expires old dates by the ledger (docs/generations.md)
    return gcp.bigquery.Dataset(
        names.dataset, dataset_id=names.dataset, project=names.project, location=names.bq_location,
        description="airtime warehouse", labels={"app": "airtime", "stack": names.stack},
        delete_contents_on_destroy=False,
        opts=after(apis),
    )
