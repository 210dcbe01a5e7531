"""Writing a step's Parquet outputs: the file, then its figures for the manifest."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from airtime import checksum
from airtime.errors import IntegrityError, StorageError
from airtime.manifest import Output
from airtime.store import ObjectStore, sha256_file


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """Scratch space for files on their way to the artifact store. Its name carries the
    process id, so the next attempt can remove what a killed one left behind."""
    remove_stale_scratch()
    with tempfile.TemporaryDirectory(prefix=scratch_prefix()) as name:
        yield Path(name)


def scratch_prefix() -> str:
    return f"airtime-{os.getpid()}-"


def remove_stale_scratch(root: Path | None = None) -> list[Path]:
    """Remove `airtime-<pid>-*` scratch folders whose process is gone (`kill -9` runs no
    cleanup); a live process's folders, or ones we cannot tell about, stay."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob("airtime-*-*"):
        pid = path.name.split("-")[1]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


_REPAIR = ("remove the manifests of its generation (runs/<date>/<generation>/*/manifest.json), then"
           " run that date and the later ones again; `airtime verify --date <date>` lists every damaged"
           " artifact of a published day")


@contextlib.contextmanager
def fetch_checked(store: ObjectStore, output: Output) -> Iterator[Path]:
    """A local copy of an artifact, checked against the digest its manifest recorded: an
    artifact altered (even into another valid Parquet file) or gone is never used."""
    if not store.exists(output.key):
        raise IntegrityError(f"artifact {output.uri} is missing; its manifest still names it:"
                             f" {_REPAIR}")
    with store.fetch(output.key) as path:
        found = sha256_file(path)
        if found != output.sha256:
            raise IntegrityError(
                f"artifact {output.uri} has sha256 {found[:16]}..., its manifest recorded"
                f" {output.sha256[:16]}...: it was altered; {_REPAIR}")
        yield path


# What a scratch DuckDB connection may hold in memory before it spills to disk; the
# default of Settings.duckdb_memory_limit (airtime/settings.py), which steps pass in.
DEFAULT_MEMORY_LIMIT = "512MB"


def scratch_connection(spill: Path | None = None, memory_limit: str | None = None, *,
                       keep_order: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for a step's work: UTC, a memory limit, and a spill
    folder (inside the step's `workdir()`) for what does not fit, so a large day is slower
    instead of OOM-killed. Results come in no particular order unless the SQL has an ORDER
    BY (or `keep_order`): DuckDB then writes in parallel and buffers less."""
    config: dict[str, str | bool] = {"memory_limit": memory_limit or DEFAULT_MEMORY_LIMIT,
                                     "preserve_insertion_order": keep_order}
    if spill is not None:
        config["temp_directory"] = str(spill)
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    return con


def sql_string(path: Path) -> str:
    """A file path as a SQL string literal (COPY targets cannot be bound parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


def parquet_rel(path: Path) -> str:
    return f"read_parquet({sql_string(path)})"


def figures_of_parquet(path: Path, table: checksum.Table,
                       version: int = checksum.CURRENT) -> tuple[int, int]:
    """(rows, checksum): one streaming aggregate, it holds little memory at any size."""
    con = scratch_connection()
    rows, total = con.execute(
        checksum.duckdb_select(table, "read_parquet($path)", version=version), {"path": str(path)}
    ).fetchone()
    return int(rows), int(total)


def publish_parquet(
    store: ObjectStore, local: Path, folder: str, name: str, table: checksum.Table | None,
    figures: tuple[int, int] | None = None,
) -> Output:
    """Upload a finished local Parquet file as `<folder>/<name>-<digest>.parquet`, the
    folder being the step's in its generation (`runs/<D>/<generation>/<step>`).

    The key carries the content digest, so an artifact never changes once written: it is
    uploaded create-only (if_generation_match=0 on GCS), and a retried step that produced
    the same bytes finds it already there.
    `figures` (rows, checksum in checksum.CURRENT), when the writer computed them already,
    spare a pass over the file."""
    if figures is not None:
        rows, total = figures
    else:
        rows, total = figures_of_parquet(local, table) if table else (_count(local), 0)
    digest = sha256_file(local)
    key = f"{folder}/{name}-{digest[:16]}.parquet"
    if not store.exists(key):
        try:
            store.upload(local, key, create_only=True)
        except StorageError:
            if not store.exists(key):  # not a lost race with an identical upload
                raise
    return Output(key=key, uri=store.uri(key), rows=rows, checksum=total, sha256=digest,
                  checksum_version=checksum.CURRENT)


def _count(path: Path) -> int:
    """From the Parquet footer: no data is read."""
    return int(pq.ParquetFile(path).metadata.num_rows)
