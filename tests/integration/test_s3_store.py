"""S3Store, and s3:// sources for the whole day, against moto's S3 server on loopback."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from airtime.errors import ConfigError, StorageError
from airtime.resources import open_store
from airtime.s3_store import S3Store, Verifier, parse_s3_uri
from airtime.store import find_one
from steps import runner
from tests import s3_server
from tests.conftest import require
from tests.emulators import EmulatorUnavailable, _run, free_port
from tests.pipeline_helpers import cli, local_settings

DAY = dt.date(2020, 7, 21)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory):
    try:
        with s3_server.moto_server(tmp_path_factory.mktemp("moto")) as server:
            yield server
    except EmulatorUnavailable as exc:
        require(False, str(exc))


@pytest.fixture
def client(moto):
    return s3_server.s3_client(moto)


@pytest.fixture
def bucket(client) -> str:
    name = f"airtime-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(client, bucket) -> S3Store:
    return S3Store(client, bucket, "env/prod")


@pytest.fixture
def aws_env(moto, monkeypatch):
    """The standard AWS settings in this process's environment (boto3 reads them)."""
    for name, value in s3_server.aws_env(moto).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


# -- the ObjectStore contract ------------------------------------------------------------


def test_written_bytes_read_back_listed_and_fetched(store: S3Store, tmp_path: Path):
    store.write_bytes("runs/2026-12-01/ingest/manifest.json", b'{"a": 1}')
    src = tmp_path / "audience.parquet"
    src.write_bytes(b"PAR1" + bytes(range(256)) * 4000)
    store.upload(src, "runs/2026-12-01/ingest/audience.parquet")
    store.write_bytes("runs-old/stray.txt", b"x")
    store.client.put_object(Bucket=store.bucket_name, Key="env/prod/runs/folder/", Body=b"")

    assert store.read_bytes("runs/2026-12-01/ingest/manifest.json") == b'{"a": 1}'
    assert store.exists("runs/2026-12-01/ingest/audience.parquet")
    assert not store.exists("runs/2026-12-01/ingest/missing.parquet")
    # a folder, never a name prefix; "folder/" placeholder objects are no keys
    assert store.list("runs") == store.list("runs/") == [
        "runs/2026-12-01/ingest/audience.parquet",
        "runs/2026-12-01/ingest/manifest.json",
    ]
    assert store.list("runs/2026-12-01/ingest/manifest.json") == ["runs/2026-12-01/ingest/manifest.json"]
    assert store.list("nothing") == []
    assert len(store.list()) == 3
    with store.fetch("runs/2026-12-01/ingest/audience.parquet") as local:
        assert local.read_bytes() == src.read_bytes()
        assert local.parent.name.startswith(f"airtime-{os.getpid()}-s3-")  # see artifacts.workdir
    assert not local.exists()
    assert store.uri("runs/x") == f"s3://{store.bucket_name}/env/prod/runs/x"


def test_open_store_reads_endpoint_and_credentials_from_the_standard_aws_settings(aws_env, store):
    store.write_bytes("dt=2020-07-21/a.csv", b"a\n")
    opened = open_store(f"s3://{store.bucket_name}/env/prod")
    assert isinstance(opened, S3Store)
    assert opened.list("dt=2020-07-21") == ["dt=2020-07-21/a.csv"]
    assert opened.client.meta.region_name == s3_server.REGION


def test_create_only_write_refuses_to_replace_an_existing_object(store: S3Store, tmp_path: Path):
    store.write_bytes("runs/d/manifest.json", b"first", create_only=True)
    with pytest.raises(StorageError, match=r"refusing to overwrite s3://.*/runs/d/manifest\.json"):
        store.write_bytes("runs/d/manifest.json", b"second", create_only=True)
    src = tmp_path / "f"
    src.write_bytes(b"third")
    with pytest.raises(StorageError, match="refusing to overwrite"):
        store.upload(src, "runs/d/manifest.json", create_only=True)
    assert store.read_bytes("runs/d/manifest.json") == b"first"
    store.write_bytes("runs/d/manifest.json", b"fourth")  # a plain write may replace it
    assert store.read_bytes("runs/d/manifest.json") == b"fourth"


def test_identity_changes_when_an_object_is_replaced_in_a_versioned_bucket_even_with_the_same_bytes(
        store: S3Store):
    store.client.put_bucket_versioning(Bucket=store.bucket_name,
                                       VersioningConfiguration={"Status": "Enabled"})
    key = "incoming/dt=2026-12-01/audience.csv"
    store.write_bytes(key, b"a,b\n1,2\n")
    first = store.identity(key)
    md5 = hashlib.md5(b"a,b\n1,2\n").hexdigest()
    assert first.startswith(f"s3://{store.bucket_name}/env/prod/{key}#version=")
    assert first.endswith(f";etag={md5}")
    assert store.identity(key) == first

    store.write_bytes(key, b"a,b\n1,2\n")
    same_bytes = store.identity(key)
    assert same_bytes != first and same_bytes.endswith(f";etag={md5}")

    store.write_bytes(key, b"a,b\n1,3\n")
    assert not store.identity(key).endswith(f";etag={md5}")


def test_identity_in_an_unversioned_bucket_changes_with_the_content_or_the_upload_time(store: S3Store):
    key = "incoming/a.csv"
    store.write_bytes(key, b"one")
    first = store.identity(key)
    assert "#last_modified=" in first and first.endswith(";etag=" + hashlib.md5(b"one").hexdigest())
    store.write_bytes(key, b"two")
    assert store.identity(key).split(";etag=")[1] != first.split(";etag=")[1]
    time.sleep(1.1)  # Last-Modified has one-second resolution
    store.write_bytes(key, b"one")
    assert store.identity(key) != first


def test_missing_object_and_missing_bucket_are_storage_errors_naming_the_object(store: S3Store, client):
    with pytest.raises(StorageError, match=r"cannot read s3://.*/env/prod/a\.json: not found"):
        store.read_bytes("a.json")
    with pytest.raises(StorageError, match=r"cannot stat s3://.*/env/prod/a\.json: not found"):
        store.identity("a.json")
    with pytest.raises(StorageError, match="not found"), store.fetch("a.json"):
        pass
    assert not store.exists("a.json")

    gone = S3Store(client, "no-such-bucket", "p")
    with pytest.raises(StorageError, match=r"cannot write s3://no-such-bucket/p/a\.json: bucket "
                                           r"'no-such-bucket' not found"):
        gone.write_bytes("a.json", b"{}")
    with pytest.raises(StorageError, match=r"cannot list s3://no-such-bucket/p: bucket"):
        gone.list()
    assert StorageError.exit_code == 5


def test_refused_credentials_are_a_storage_error_naming_the_permissions(tmp_path: Path, moto):
    """moto checks credentials when told to (INITIAL_NO_AUTH_ACTION_COUNT=0): an unknown
    access key is refused with 403, as S3 refuses a key without s3:ListBucket."""
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    with _run("moto-auth", argv, "/moto-api/", port, tmp_path, env=env) as strict:
        store = S3Store(s3_server.s3_client(strict), "bucket", "p")
        with pytest.raises(StorageError, match=r"cannot list s3://bucket/p: access denied \(\w+\); "
                                               r"the credentials need s3:GetObject and s3:ListBucket"):
            store.list()


def test_unreachable_endpoint_is_a_storage_error_after_bounded_retries():
    dead = s3_server.Emulator("dead", f"http://127.0.0.1:{free_port()}", 0, Path("/dev/null"))
    store = S3Store(s3_server.s3_client(dead, retries={"mode": "standard", "total_max_attempts": 2}),
                    "bucket")
    with pytest.raises(StorageError, match=r"cannot read s3://bucket/x: Could not connect"):
        store.read_bytes("x")
    with pytest.raises(StorageError, match=r"cannot list s3://bucket/"):
        store.list()



def test_a_deleted_object_is_gone_and_deleting_it_again_is_no_error(store: S3Store):
    """What `airtime prune` relies on: a retention run that stopped half-way runs again."""
    store.write_bytes("runs/2026-11-30/g1/ingest/a.parquet", b"a")
    store.write_bytes("runs/2026-11-30/g2/ingest/a.parquet", b"b")
    store.delete("runs/2026-11-30/g1/ingest/a.parquet")
    store.delete("runs/2026-11-30/g1/ingest/a.parquet")
    assert store.list("runs/2026-11-30") == ["runs/2026-11-30/g2/ingest/a.parquet"]

def test_find_one_works_on_an_s3_prefix(store: S3Store):
    store.write_bytes("incoming/dt=2026-12-01/tvaberta_program_audience.csv", b"x")
    store.write_bytes("incoming/dt=2026-12-01/sub/tvaberta_program_audience.csv", b"x")
    assert find_one(store, "incoming/dt=2026-12-01", "*audience*.csv", "audience") == \
        "incoming/dt=2026-12-01/tvaberta_program_audience.csv"


def test_s3_uri_parsing():
    assert parse_s3_uri("s3://bkt") == ("bkt", "")
    assert parse_s3_uri("s3://my.bkt-1/p/q/") == ("my.bkt-1", "p/q")
    for bad in ("s3:///p", "/tmp/x", "s3://Upper/p", "s3://under_score", "s3://ab", "s3://a..b/p"):
        with pytest.raises(ConfigError):
            parse_s3_uri(bad)


# -- verified downloads -------------------------------------------------------------------


def _multipart(client, bucket: str, key: str, data: bytes) -> None:
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    size = 5 * 1024 * 1024  # S3's smallest part but the last
    parts = []
    for number, start in enumerate(range(0, len(data), size), start=1):
        etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                                  Body=data[start:start + size])["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload={"Parts": parts})


@pytest.mark.parametrize("how, verified_by", [
    ("ours", "ChecksumSHA256"),  # S3Store uploads send SHA-256
    ("boto3-default", "ChecksumCRC32"),  # what any boto3 1.36+ uploader stores
    ("no-checksum", "ETag (MD5)"),  # an older uploader: the single-part ETag is the MD5
    ("multipart", "length"),  # composite checksum, MD5-of-MD5s ETag: only the length is honest
])
def test_every_download_is_verified_by_the_best_digest_the_object_has(
        moto, bucket, how, verified_by, caplog):
    data = os.urandom(6 * 1024 * 1024 if how == "multipart" else 300_000)
    uploader = s3_server.s3_client(moto, request_checksum_calculation="when_required")
    store = S3Store(s3_server.s3_client(moto), bucket)
    if how == "ours":
        store.write_bytes("f.bin", data)
    elif how == "boto3-default":
        s3_server.s3_client(moto).put_object(Bucket=bucket, Key="f.bin", Body=data)
    elif how == "no-checksum":
        uploader.put_object(Bucket=bucket, Key="f.bin", Body=data)
    else:
        _multipart(uploader, bucket, "f.bin", data)
    with caplog.at_level(logging.DEBUG, logger="airtime.s3_store"):
        assert store.read_bytes("f.bin") == data
        with store.fetch("f.bin") as local:
            assert local.read_bytes() == data
    assert caplog.messages.count(f"s3://{bucket}/f.bin verified by its {verified_by}") == 2


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@pytest.mark.parametrize("response", [
    {"ChecksumSHA256": _b64(hashlib.sha256(b"hello").digest())},
    {"ChecksumCRC32": _b64((907060870).to_bytes(4, "big"))},  # zlib.crc32(b"hello")
    {"ETag": f'"{hashlib.md5(b"hello").hexdigest()}"'},
], ids=["sha256", "crc32", "etag-md5"])
def test_bytes_that_differ_from_the_stored_digest_or_length_are_refused(response):
    good = Verifier({"ContentLength": 5, **response})
    good.update(b"hel")
    good.update(b"lo")
    good.verify("s3://b/k")

    flipped = Verifier({"ContentLength": 5, **response})
    flipped.update(b"hellO")
    with pytest.raises(StorageError, match=r"cannot read s3://b/k: checksum mismatch"):
        flipped.verify("s3://b/k")

    short = Verifier({"ContentLength": 5, **response})
    short.update(b"hell")
    with pytest.raises(StorageError, match=r"got 4 bytes, the object has 5"):
        short.verify("s3://b/k")


def test_an_etag_of_a_kms_encrypted_object_is_not_taken_for_an_md5():
    verifier = Verifier({"ContentLength": 5, "ETag": '"0123456789abcdef0123456789abcdef"',
                         "ServerSideEncryption": "aws:kms"})
    verifier.update(b"hello")
    verifier.verify("s3://b/k")
    assert verifier.what == "length"


# -- the command line and the whole day ----------------------------------------------------


def test_a_bad_s3_uri_and_missing_credentials_exit_2_with_one_line(tmp_path: Path, moto):
    bad = cli(tmp_path, "run", "--date", DAY.isoformat(), "--source", "s3://Not_A_Bucket/x",
              env=s3_server.aws_env(moto))
    assert bad.returncode == 2, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "'Not_A_Bucket'" in bad.stderr and "not an S3 bucket name" in bad.stderr

    no_keys = {k: v for k, v in s3_server.aws_env(moto).items() if not k.startswith("AWS_ACCESS")
               and not k.startswith("AWS_SECRET")}
    missing = cli(tmp_path, "run", "--date", DAY.isoformat(), "--source", "s3://bucket/incoming",
                  env=no_keys | {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert missing.returncode == 2, missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert "no AWS credentials for s3://bucket/incoming" in missing.stderr


def test_settings_that_cannot_work_are_config_errors(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "not a url")
    with pytest.raises(ConfigError, match=r"cannot open s3://bucket/p: Invalid endpoint"):
        open_store("s3://bucket/p")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(ConfigError, match=r"no-such-profile"):
        open_store("s3://bucket/p")
    assert ConfigError.exit_code == 2


def _upload_day(client, bucket: str, folder: Path, day: dt.date) -> None:
    for path in sorted(folder.glob("*.csv")):
        client.upload_file(str(path), bucket, f"incoming/dt={day.isoformat()}/{path.name}")


def _published_rows(home: Path) -> list[dict]:
    out = cli(home, "query", "period", "--start", "2020-01-01", "--end", "2020-12-31", "--format", "jsonl")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_the_real_day_from_s3_publishes_what_the_folder_run_publishes(tmp_path, moto, client, bucket,
                                                                       shared_data):
    _upload_day(client, bucket, shared_data, DAY)
    s3_home, folder_home = tmp_path / "s3", tmp_path / "folder"
    from_s3 = cli(s3_home, "run", "--date", DAY.isoformat(), "--source", f"s3://{bucket}/incoming",
                  env=s3_server.aws_env(moto))
    assert from_s3.returncode == 0, from_s3.stderr
    from_folder = cli(folder_home, "run", "--date", DAY.isoformat(), "--source", str(shared_data))
    assert from_folder.returncode == 0, from_folder.stderr

    rows = _published_rows(s3_home)
    assert len(rows) == 2292
    assert rows == _published_rows(folder_home)


def test_a_replaced_source_object_is_ingested_again(tmp_path, aws_env, client, bucket, shared_data):
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    _upload_day(client, bucket, shared_data, DAY)
    settings = local_settings(tmp_path, source=f"s3://{bucket}/incoming")  # AIRTIME_SOURCE
    first = runner.run_day(settings, DAY)
    assert first.record.state == "published"
    assert all(step.skipped for step in runner.run_day(settings, DAY).steps)

    # the same bytes uploaded again: a new version, so the source identity changed
    key = f"incoming/dt={DAY.isoformat()}/tvaberta_inventory_availability.csv"
    original = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=original)
    second = runner.run_day(settings, DAY)
    assert second.steps[0].skipped is False  # ingest
    assert second.record.state == "published"
    assert second.record.forecast_rows == first.record.forecast_rows == 2292
