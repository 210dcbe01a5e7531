"""Artifacts are immutable: content-addressed keys, written create-only."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airtime.artifacts import publish_parquet, remove_stale_scratch, scratch_prefix
from airtime.errors import StorageError
from airtime.store import LocalStore

DAY = dt.date(2026, 12, 1)


def parquet(path, values):
    pq.write_table(pa.table({"signal": values}), path)
    return path


def test_the_same_bytes_published_twice_keep_one_unchanged_artifact(tmp_path):
    store = LocalStore(tmp_path / "store")
    first = publish_parquet(store, parquet(tmp_path / "a.parquet", ["SP1"]), f"runs/{DAY}/g1/ingest", "audience", None)
    stored = tmp_path / "store" / first.key
    stamp = stored.stat().st_mtime_ns
    again = publish_parquet(store, parquet(tmp_path / "b.parquet", ["SP1"]), f"runs/{DAY}/g1/ingest", "audience", None)
    assert again == first and stored.stat().st_mtime_ns == stamp
    assert first.key.startswith("runs/2026-12-01/g1/ingest/audience-") and first.rows == 1


def test_new_bytes_get_a_new_key_and_the_old_artifact_stays(tmp_path):
    store = LocalStore(tmp_path / "store")
    first = publish_parquet(store, parquet(tmp_path / "a.parquet", ["SP1"]), f"runs/{DAY}/g1/ingest", "audience", None)
    second = publish_parquet(store, parquet(tmp_path / "b.parquet", ["RJ"]), f"runs/{DAY}/g1/ingest", "audience", None)
    assert second.key != first.key
    assert store.exists(first.key) and store.exists(second.key)


def test_a_create_only_write_never_replaces_an_object(tmp_path):
    store = LocalStore(tmp_path)
    store.write_bytes("x", b"one", create_only=True)
    with pytest.raises(StorageError, match="refusing to overwrite"):
        store.write_bytes("x", b"two", create_only=True)
    assert store.read_bytes("x") == b"one"


def test_a_killed_processes_scratch_is_removed_and_a_live_ones_kept(tmp_path) -> None:  # noqa: ANN001
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f"airtime-{dead}-abc"
    (stale / "spill").mkdir(parents=True)
    (stale / "spill" / "big.tmp").write_bytes(b"x" * 1024)
    mine = tmp_path / f"{scratch_prefix()}def"
    mine.mkdir()
    other = tmp_path / "airtime-notapid-x"
    other.mkdir()
    assert remove_stale_scratch(tmp_path) == [stale]
    assert not stale.exists() and mine.exists() and other.exists()


def test_a_local_delete_removes_the_file_and_its_emptied_folders_only(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.write_bytes("runs/2026-11-30/g1/ingest/a.parquet", b"a")
    store.write_bytes("runs/2026-11-30/g2/ingest/a.parquet", b"b")
    store.delete("runs/2026-11-30/g1/ingest/a.parquet")
    store.delete("runs/2026-11-30/g1/ingest/a.parquet")  # again: no error
    assert not (tmp_path / "store" / "runs" / "2026-11-30" / "g1").exists()
    assert store.list("runs") == ["runs/2026-11-30/g2/ingest/a.parquet"]
