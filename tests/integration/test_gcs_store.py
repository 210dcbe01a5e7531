"""GcsStore against a real fake-gcs-server on loopback."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from airtime.errors import ConfigError, StorageError
from airtime.gcs_store import GcsStore, parse_gs_uri
from airtime.store import find_one
from tests import emulators

pytestmark = pytest.mark.emulators


@pytest.fixture
def client(gcs_emulator):
    return emulators.gcs_client(gcs_emulator)


@pytest.fixture
def store(client) -> GcsStore:
    bucket = f"artifacts-{uuid.uuid4().hex[:10]}"
    client.create_bucket(bucket)
    return GcsStore(client, bucket, "env/prod")


def test_written_bytes_read_back_listed_and_fetched(store: GcsStore, tmp_path: Path):
    store.write_bytes("runs/2026-12-01/ingest/manifest.json", b'{"a": 1}')
    src = tmp_path / "audience.parquet"
    src.write_bytes(b"PAR1" + bytes(range(256)) * 4000)
    store.upload(src, "runs/2026-12-01/ingest/audience.parquet")
    store.write_bytes("runs-old/stray.txt", b"x")

    assert store.read_bytes("runs/2026-12-01/ingest/manifest.json") == b'{"a": 1}'
    assert store.exists("runs/2026-12-01/ingest/audience.parquet")
    assert not store.exists("runs/2026-12-01/ingest/missing.parquet")
    assert store.list("runs") == [
        "runs/2026-12-01/ingest/audience.parquet",
        "runs/2026-12-01/ingest/manifest.json",
    ]
    assert len(store.list()) == 3
    with store.fetch("runs/2026-12-01/ingest/audience.parquet") as local:
        assert local.read_bytes() == src.read_bytes()
    assert store.uri("runs/x") == f"gs://{store.bucket_name}/env/prod/runs/x"


def test_create_only_write_refuses_to_replace_an_existing_object(store: GcsStore, tmp_path: Path):
    store.write_bytes("runs/d/manifest.json", b"first", create_only=True)
    with pytest.raises(StorageError, match=r"refusing to overwrite gs://.*/runs/d/manifest\.json"):
        store.write_bytes("runs/d/manifest.json", b"second", create_only=True)
    src = tmp_path / "f"
    src.write_bytes(b"third")
    with pytest.raises(StorageError, match="refusing to overwrite"):
        store.upload(src, "runs/d/manifest.json", create_only=True)
    assert store.read_bytes("runs/d/manifest.json") == b"first"
    # a plain write (mutable objects, e.g. a "latest" pointer) may replace it
    store.write_bytes("runs/d/manifest.json", b"fourth")
    assert store.read_bytes("runs/d/manifest.json") == b"fourth"


def test_identity_changes_when_an_object_is_replaced_even_with_the_same_bytes(store: GcsStore):
    store.write_bytes("incoming/dt=2026-12-01/audience.csv", b"a,b\n1,2\n")
    first = store.identity("incoming/dt=2026-12-01/audience.csv")
    assert first.startswith(f"gs://{store.bucket_name}/env/prod/incoming/dt=2026-12-01/audience.csv#generation=")
    assert ";md5=" in first
    assert store.identity("incoming/dt=2026-12-01/audience.csv") == first

    store.write_bytes("incoming/dt=2026-12-01/audience.csv", b"a,b\n1,2\n")
    same_bytes = store.identity("incoming/dt=2026-12-01/audience.csv")
    assert same_bytes != first
    assert same_bytes.split(";md5=")[1] == first.split(";md5=")[1]

    store.write_bytes("incoming/dt=2026-12-01/audience.csv", b"a,b\n1,3\n")
    assert store.identity("incoming/dt=2026-12-01/audience.csv").split(";md5=")[1] != \
        first.split(";md5=")[1]


def test_missing_object_and_missing_bucket_are_storage_errors_naming_the_object(client):
    store = GcsStore(client, "no-such-bucket", "p")
    with pytest.raises(StorageError, match=r"cannot write gs://no-such-bucket/p/a\.json: not found"):
        store.write_bytes("a.json", b"{}")
    with pytest.raises(StorageError, match=r"cannot read gs://no-such-bucket/p/a\.json"):
        store.read_bytes("a.json")
    with pytest.raises(StorageError, match=r"cannot stat gs://no-such-bucket/p/a\.json: not found"):
        store.identity("a.json")
    with pytest.raises(StorageError, match="not found"), store.fetch("a.json"):
        pass
    assert StorageError.exit_code == 5


def test_unreachable_endpoint_is_a_storage_error_after_bounded_retries():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    dead = f"http://127.0.0.1:{emulators.free_port()}"
    client = storage.Client(project="test", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": dead})
    store = GcsStore(client, "bucket", retry_timeout=0.5)
    with pytest.raises(StorageError, match=r"cannot read gs://bucket/x"):
        store.read_bytes("x")
    with pytest.raises(StorageError, match=r"cannot list gs://bucket/"):
        store.list()


def test_corrupted_download_fails_the_checksum_check(gcs_emulator, tmp_path: Path):
    """fake-gcs-server's filesystem backend keeps metadata (CRC32C, MD5) beside the
    bytes: flipping a byte on disk makes it serve bytes that disagree with them.
    (`gcs_emulator` only makes the test skip where fake-gcs-server is absent.)"""
    root = tmp_path / "gcs"
    root.mkdir()
    with emulators.fake_gcs_server(tmp_path, filesystem_root=root) as emulator:
        client = emulators.gcs_client(emulator)
        client.create_bucket("bkt")
        store = GcsStore(client, "bkt")
        store.write_bytes("runs/d/forecast.parquet", b"good bytes " * 100)
        [stored] = [p for p in root.rglob("forecast.parquet") if p.is_file()]
        with stored.open("r+b") as fh:
            fh.seek(5)
            fh.write(b"X")
        with pytest.raises(StorageError, match=r"checksum mismatch"):
            store.read_bytes("runs/d/forecast.parquet")
        with pytest.raises(StorageError, match=r"checksum mismatch"), \
                store.fetch("runs/d/forecast.parquet"):
            pass



def test_a_deleted_object_is_gone_and_deleting_it_again_is_no_error(store: GcsStore):
    """What `airtime prune` relies on: a retention run that stopped half-way runs again."""
    store.write_bytes("runs/2026-11-30/g1/ingest/a.parquet", b"a")
    store.write_bytes("runs/2026-11-30/g2/ingest/a.parquet", b"b")
    store.delete("runs/2026-11-30/g1/ingest/a.parquet")
    store.delete("runs/2026-11-30/g1/ingest/a.parquet")
    assert store.list("runs/2026-11-30") == ["runs/2026-11-30/g2/ingest/a.parquet"]

def test_find_one_works_on_a_gcs_prefix(store: GcsStore):
    store.write_bytes("incoming/dt=2026-12-01/tvaberta_program_audience.csv", b"x")
    store.write_bytes("incoming/dt=2026-12-01/sub/tvaberta_program_audience.csv", b"x")
    assert find_one(store, "incoming/dt=2026-12-01", "*audience*.csv", "audience") == \
        "incoming/dt=2026-12-01/tvaberta_program_audience.csv"


def test_gs_uri_parsing():
    assert parse_gs_uri("gs://b") == ("b", "")
    assert parse_gs_uri("gs://b/p/q/") == ("b", "p/q")
    with pytest.raises(ConfigError):
        parse_gs_uri("gs:///p")
    with pytest.raises(ConfigError):
        parse_gs_uri("/tmp/x")
