"""The object store on Amazon S3 or an S3-compatible service (sources delivered to S3).

Objects live under `s3://bucket/prefix/<key>`. Create-only writes use the `If-None-Match: *`
precondition, so an object that must never change cannot be overwritten by a retried or
concurrent step; every download is verified against what S3 says the object is (below);
`identity` carries the ETag and the VersionId (or, in an unversioned bucket, the
Last-Modified time), so a source file replaced upstream (same name, new upload) is noticed
even when its content is unchanged.

Endpoint, region and credentials are the standard AWS settings, read by boto3 itself:
`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
(or a profile, web identity, IMDS: the usual credential chain), `AWS_DEFAULT_REGION`. The one
exception is `AWS_REGION`, which every other AWS SDK reads and boto3 ignores
(boto/boto3#3620): `_session` hands it to boto3, as the AWS CLI ranks it, above
`AWS_DEFAULT_REGION`.

What a download is checked against, best first (S3's ETag is the MD5 of the bytes only for
a single-part upload without SSE-KMS; a multipart ETag is an MD5 of the parts' MD5s):
  1. a full-object SHA-256, SHA-1 or CRC32 checksum (`ChecksumMode=ENABLED`; our own
     uploads send SHA-256, boto3 1.36+ sends CRC32 by default),
  2. else the ETag, when it is a plain MD5 (`"<32 hex>"`, no SSE-KMS or SSE-C),
  3. else only the length (a composite multipart checksum, or a CRC32C/CRC64NVME one,
     which botocore itself validates when `awscrt` is installed).
The length is always checked.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    NoCredentialsError,
    PartialCredentialsError,
)

from airtime.errors import ConfigError, StorageError
from airtime.store import BucketKeys, parse_bucket_uri

log = logging.getLogger(__name__)

# Transient faults (throttling, 5xx, dropped connections) are retried by botocore's
# "standard" mode with backoff; past that the step fails with StorageError (exit 5) and the
# orchestrator's retryStrategy takes over.
MAX_ATTEMPTS = 5
CHUNK = 1 << 20
# bucket naming rules of S3 (general purpose buckets); botocore's own check is looser
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PLAIN_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')
NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
DENIED = {"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
          "ExpiredToken", "InvalidToken", "AccountProblem"}


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    bucket, prefix = parse_bucket_uri(uri, "s3")
    if not BUCKET.match(bucket) or ".." in bucket:
        raise ConfigError(f"{bucket!r} in {uri!r} is not an S3 bucket name (3-63 lowercase letters,"
                          " digits, dots and hyphens, starting and ending with a letter or digit)")
    return bucket, prefix


def _session(environ: Mapping[str, str] = os.environ) -> boto3.session.Session:
    # boto3 reads every standard setting but AWS_REGION (see the module docstring)
    return boto3.session.Session(region_name=environ.get("AWS_REGION") or None)


class S3Store(BucketKeys):
    scheme = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client  # a botocore S3 client
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_uri(cls, uri: str, client: Any = None, *, max_attempts: int = MAX_ATTEMPTS) -> S3Store:
        bucket, prefix = parse_s3_uri(uri)
        if client is None:
            try:
                session = _session()
                credentials = session.get_credentials()
                client = session.client("s3", config=Config(
                    retries={"mode": "standard", "total_max_attempts": max_attempts}))
            except (BotoCoreError, ValueError) as exc:
                # an unknown AWS_PROFILE, an AWS_ENDPOINT_URL_S3 that is not a URL, ...
                raise ConfigError(f"cannot open {uri}: {exc}") from exc
            if credentials is None:
                raise ConfigError(
                    f"no AWS credentials for {uri}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,"
                    " AWS_PROFILE, or use a role (web identity, instance profile)")
        return cls(client, bucket, prefix)

    # -- naming -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Every client failure becomes a StorageError naming the object, but missing
        credentials, which no retry can fix (ConfigError, exit 2)."""
        try:
            yield
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise ConfigError(f"cannot {action} {self.uri(key)}: {exc}") from exc
        except FlexibleChecksumError as exc:
            raise StorageError(f"cannot {action} {self.uri(key)}: checksum mismatch, the downloaded"
                               f" bytes differ from the stored object's checksum ({exc})") from exc
        except ClientError as exc:
            code = _code(exc)
            if code == "NoSuchBucket":
                raise StorageError(f"cannot {action} {self.uri(key)}: bucket {self.bucket_name!r}"
                                   " not found") from exc
            if code in NOT_FOUND:
                raise StorageError(f"cannot {action} {self.uri(key)}: not found") from exc
            if code in {"412", "PreconditionFailed"}:
                raise StorageError(f"refusing to overwrite {self.uri(key)}: it already exists and"
                                   " must never change") from exc
            if code in DENIED:
                raise StorageError(
                    f"cannot {action} {self.uri(key)}: access denied ({code}); the credentials need"
                    f" s3:GetObject and s3:ListBucket on bucket {self.bucket_name!r}") from exc
            raise StorageError(f"cannot {action} {self.uri(key)}: {exc}") from exc
        except (BotoCoreError, OSError) as exc:
            # connection and timeout errors after botocore's retries; local temp-file failures
            raise StorageError(f"cannot {action} {self.uri(key)}: {exc}") from exc

    # -- ObjectStore ------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        with self._errors("check", key):
            try:
                self.client.head_object(Bucket=self.bucket_name, Key=self._name(key))
            except ClientError as exc:
                if _code(exc) in NOT_FOUND:
                    return False
                raise
        return True

    def read_bytes(self, key: str) -> bytes:
        with self._errors("read", key):
            response = self.client.get_object(Bucket=self.bucket_name, Key=self._name(key),
                                              ChecksumMode="ENABLED")
            check = Verifier(response)
            data = response["Body"].read()
            check.update(data)
        check.verify(self.uri(key))
        return data

    def write_bytes(self, key: str, data: bytes, *, create_only: bool = False) -> None:
        self._put(key, data, create_only)

    def upload(self, src: Path, key: str, *, create_only: bool = False) -> None:
        with Path(src).open("rb") as fh:  # one PUT (up to 5 GB): artifacts and deliveries are far smaller
            self._put(key, fh, create_only)

    def _put(self, key: str, body: bytes | BinaryIO, create_only: bool) -> None:
        extra = {"IfNoneMatch": "*"} if create_only else {}
        with self._errors("write", key):
            self.client.put_object(Bucket=self.bucket_name, Key=self._name(key), Body=body,
                                   ContentType="application/octet-stream",
                                   ChecksumAlgorithm="SHA256", **extra)

    @contextlib.contextmanager
    def fetch(self, key: str) -> Iterator[Path]:
        name = self._name(key)
        with tempfile.TemporaryDirectory(prefix=f"airtime-{os.getpid()}-s3-") as tmp:  # see artifacts.workdir
            path = Path(tmp) / Path(name).name
            with self._errors("read", key):
                response = self.client.get_object(Bucket=self.bucket_name, Key=name,
                                                  ChecksumMode="ENABLED")
                check = Verifier(response)
                with path.open("wb") as out:
                    while block := response["Body"].read(CHUNK):
                        check.update(block)
                        out.write(block)
            check.verify(self.uri(key))
            yield path

    def delete(self, key: str) -> None:
        with self._errors("delete", key):  # S3 answers 204 for a missing key too
            self.client.delete_object(Bucket=self.bucket_name, Key=self._name(key))

    def list(self, prefix: str = "") -> list[str]:
        """Keys under `prefix`, read as a folder as LocalStore does: "runs" lists
        "runs/..." (or the object "runs" itself), never "runs-old/..."."""
        with self._errors("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket_name, Prefix=self._list_prefix(prefix))
            names = [item["Key"] for page in pages for item in page.get("Contents", ())]
        return self._folder_keys(names, prefix)

    def identity(self, key: str) -> str:
        with self._errors("stat", key):
            head = self.client.head_object(Bucket=self.bucket_name, Key=self._name(key))
        etag = head["ETag"].strip('"')
        version = head.get("VersionId")
        if version and version != "null":
            return f"{self.uri(key)}#version={version};etag={etag}"
        # unversioned (or suspended): a same-bytes re-upload keeps the ETag, not the time
        return f"{self.uri(key)}#last_modified={head['LastModified'].isoformat()};etag={etag}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _Crc32:
    """zlib's CRC32 with hashlib's update/digest (S3 sends it big-endian, base64)."""

    def __init__(self) -> None:
        self._value = 0

    def update(self, block: bytes) -> None:
        self._value = zlib.crc32(block, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


FULL_OBJECT_CHECKSUMS: tuple[tuple[str, Callable[[], Any]], ...] = (
    ("ChecksumSHA256", hashlib.sha256), ("ChecksumSHA1", hashlib.sha1), ("ChecksumCRC32", _Crc32))


class Verifier:
    """Checks downloaded bytes against a GetObject response: their length, and the best
    digest of the object this process can compute (see the module docstring)."""

    def __init__(self, response: Mapping[str, Any]) -> None:
        self.expected_length: int | None = response.get("ContentLength")
        self.length = 0
        self.what, self._hasher, self._expected = "length", None, b""
        if response.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            for field, make in FULL_OBJECT_CHECKSUMS:
                value = response.get(field)
                if value and "-" not in value:  # "<b64>-N": composite, of the parts' checksums
                    self.what, self._hasher, self._expected = field, make(), base64.b64decode(value)
                    return
        md5 = PLAIN_MD5_ETAG.match(response.get("ETag", ""))
        kms_or_customer_key = (str(response.get("ServerSideEncryption", "")).startswith("aws:kms")
                               or response.get("SSECustomerAlgorithm"))
        if md5 and not kms_or_customer_key:
            self.what = "ETag (MD5)"
            self._hasher = hashlib.md5(usedforsecurity=False)
            self._expected = bytes.fromhex(md5.group(1))

    def update(self, block: bytes) -> None:
        self.length += len(block)
        if self._hasher is not None:
            self._hasher.update(block)

    def verify(self, uri: str) -> None:
        if self.expected_length is not None and self.length != self.expected_length:
            raise StorageError(f"cannot read {uri}: got {self.length} bytes, the object has"
                               f" {self.expected_length}")
        if self._hasher is not None and self._hasher.digest() != self._expected:
            raise StorageError(f"cannot read {uri}: checksum mismatch, the downloaded bytes differ"
                               f" from the stored object's {self.what}")
        log.debug("%s verified by its %s", uri, self.what)
