"""The gcp profile against the emulators: buckets, datasets, settings and environments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from airtime.settings import Settings
from tests import emulators


@dataclass
class GcpProfile:
    """One test's own buckets and dataset on the shared emulators."""

    gcs: emulators.Emulator
    bigquery: emulators.Emulator
    source_bucket: str
    artifact_bucket: str
    dataset: str

    @property
    def source(self) -> str:
        return f"gs://{self.source_bucket}/incoming"

    def settings(self, **extra) -> Settings:
        return Settings(profile="gcp", source=self.source, artifact_bucket=self.artifact_bucket,
                        artifact_prefix="airtime", gcp_project=emulators.BIGQUERY_PROJECT,
                        bq_dataset=self.dataset, bq_api_endpoint=self.bigquery.url,
                        bq_maximum_bytes_billed=10**9, **extra)

    def env(self) -> dict[str, str]:
        """What the entry point of a step pod would get (see the Helm chart / Argo template)."""
        return {
            "AIRTIME_PROFILE": "gcp",
            "AIRTIME_SOURCE": self.source,
            "AIRTIME_ARTIFACT_BUCKET": self.artifact_bucket,
            "AIRTIME_ARTIFACT_PREFIX": "airtime",
            "AIRTIME_GCP_PROJECT": emulators.BIGQUERY_PROJECT,
            "AIRTIME_BQ_DATASET": self.dataset,
            "AIRTIME_BQ_API_ENDPOINT": self.bigquery.url,
            "AIRTIME_BQ_MAXIMUM_BYTES_BILLED": str(10**9),
            "STORAGE_EMULATOR_HOST": self.gcs.url,
        }

    def storage(self):  # noqa: ANN201 - google.cloud.storage.Client
        return emulators.gcs_client(self.gcs)

    def upload_day(self, folder: Path, day) -> None:  # noqa: ANN001 - datetime.date
        bucket = self.storage().bucket(self.source_bucket)
        for path in sorted(folder.iterdir()):
            if path.is_file():
                bucket.blob(f"incoming/dt={day.isoformat()}/{path.name}").upload_from_filename(str(path))


def new_profile(gcs: emulators.Emulator, bigquery: emulators.Emulator) -> GcpProfile:
    tag = uuid.uuid4().hex[:10]
    profile = GcpProfile(gcs, bigquery, f"source-{tag}", f"artifacts-{tag}", f"airtime_{tag}")
    client = profile.storage()
    client.create_bucket(profile.source_bucket)
    client.create_bucket(profile.artifact_bucket)
    return profile
