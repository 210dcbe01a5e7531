"""The object store on Google Cloud Storage (gcp profile).

Objects live under `gs://bucket/prefix/<key>`. Create-only writes use the
`if_generation_match=0` precondition, so an artifact that must never change cannot be
overwritten by a retried or concurrent step; every download is checked against the
object's CRC32C; `identity` carries the generation, so a source file replaced upstream
(same name, new upload) is noticed even when its content digest is unchanged.

Credentials are Application Default Credentials (Workload Identity on GKE). When the
entry point's environment has STORAGE_EMULATOR_HOST, google-cloud-storage itself points
the default client at that emulator; this module never reads the environment.
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage import exceptions as storage_exceptions
from google.cloud.storage.retry import DEFAULT_RETRY

from airtime.errors import ConfigError, StorageError
from airtime.store import BucketKeys, parse_bucket_uri

# Transient faults are retried by the client for a while; past that the step fails
# with StorageError (exit 5) and the orchestrator's retryStrategy takes over.
RETRY_TIMEOUT_SECONDS = 120.0
CHECKSUM = "crc32c"


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    return parse_bucket_uri(uri, "gs")


class GcsStore(BucketKeys):
    scheme = "gs"

    def __init__(self, client: storage.Client, bucket: str, prefix: str = "",
                 *, retry_timeout: float = RETRY_TIMEOUT_SECONDS) -> None:
        self.client = client
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self._bucket = client.bucket(bucket)
        self._retry: Retry = DEFAULT_RETRY.with_timeout(retry_timeout)

    @classmethod
    def from_uri(cls, uri: str, client: storage.Client | None = None) -> GcsStore:
        bucket, prefix = parse_gs_uri(uri)
        if client is None:
            try:
                client = storage.Client()  # ADC, or the emulator named by STORAGE_EMULATOR_HOST
            except auth_exceptions.DefaultCredentialsError as exc:
                raise ConfigError(
                    f"no Google credentials for {uri}: run `gcloud auth application-default login`"
                    f" or use Workload Identity ({exc})"
                ) from exc
        return cls(client, bucket, prefix)

    # -- naming -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Every client failure becomes a StorageError naming the object."""
        try:
            yield
        except api_exceptions.PreconditionFailed as exc:
            raise StorageError(f"refusing to overwrite {self.uri(key)}: it already exists and "
                               "must never change") from exc
        except api_exceptions.NotFound as exc:
            raise StorageError(f"cannot {action} {self.uri(key)}: not found "
                               f"(missing object or bucket {self.bucket_name!r})") from exc
        except api_exceptions.Forbidden as exc:
            raise StorageError(f"cannot {action} {self.uri(key)}: permission denied; the service "
                               f"account needs a Storage role on bucket {self.bucket_name!r}") from exc
        except storage_exceptions.DataCorruption as exc:
            raise StorageError(f"cannot {action} {self.uri(key)}: checksum mismatch, the "
                               "downloaded bytes differ from the stored object's CRC32C") from exc
        except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError,
                storage_exceptions.InvalidResponse, OSError) as exc:
            # OSError covers requests' connection errors and local temp-file failures
            raise StorageError(f"cannot {action} {self.uri(key)}: {exc}") from exc

    # -- ObjectStore ------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        with self._errors("check", key):
            return self._bucket.blob(self._name(key)).exists(retry=self._retry)

    def delete(self, key: str) -> None:
        with self._errors("delete", key), contextlib.suppress(api_exceptions.NotFound):
            self._bucket.blob(self._name(key)).delete(retry=self._retry)

    def read_bytes(self, key: str) -> bytes:
        with self._errors("read", key):
            return self._bucket.blob(self._name(key)).download_as_bytes(
                checksum=CHECKSUM, retry=self._retry)

    def write_bytes(self, key: str, data: bytes, *, create_only: bool = False) -> None:
        with self._errors("write", key):
            self._bucket.blob(self._name(key)).upload_from_string(
                data, content_type="application/octet-stream", checksum=CHECKSUM,
                if_generation_match=0 if create_only else None, retry=self._retry)

    def upload(self, src: Path, key: str, *, create_only: bool = False) -> None:
        with self._errors("write", key):
            self._bucket.blob(self._name(key)).upload_from_filename(
                str(src), content_type="application/octet-stream", checksum=CHECKSUM,
                if_generation_match=0 if create_only else None, retry=self._retry)

    @contextlib.contextmanager
    def fetch(self, key: str) -> Iterator[Path]:
        name = self._name(key)
        with tempfile.TemporaryDirectory(prefix=f"airtime-{os.getpid()}-gcs-") as tmp:  # see artifacts.workdir
            path = Path(tmp) / Path(name).name
            with self._errors("read", key):
                self._bucket.blob(name).download_to_filename(
                    str(path), checksum=CHECKSUM, retry=self._retry)
            yield path

    def list(self, prefix: str = "") -> list[str]:
        """Keys under `prefix`, read as a folder as LocalStore does: "runs" lists
        "runs/..." (or the object "runs" itself), never "runs-old/..."."""
        with self._errors("list", prefix):
            names = [blob.name for blob in self.client.list_blobs(
                self.bucket_name, prefix=self._list_prefix(prefix), retry=self._retry)]
        return self._folder_keys(names, prefix)

    def identity(self, key: str) -> str:
        with self._errors("stat", key):
            blob = self._bucket.get_blob(self._name(key), retry=self._retry)
        if blob is None:
            raise StorageError(f"cannot stat {self.uri(key)}: not found")
        # composite objects have no MD5; their CRC32C identifies the content instead
        digest = (f"md5={_hex(blob.md5_hash)}" if blob.md5_hash
                  else f"crc32c={_hex(blob.crc32c)}")
        return f"{self.uri(key)}#generation={blob.generation};{digest}"


def _hex(b64: str | None) -> str:
    return base64.b64decode(b64).hex() if b64 else ""
