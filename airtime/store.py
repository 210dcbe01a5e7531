"""Object stores: where source files, artifacts and manifests live.

Steps only see the small `ObjectStore` protocol; `airtime.resources.open_store` picks the
implementation from the URI (a local folder, or `gs://bucket/prefix` for the gcp profile).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from airtime.errors import ConfigError, InputError, StorageError


class ObjectStore(Protocol):
    """Keys are `/`-separated paths relative to the store's root."""

    def uri(self, key: str) -> str: ...

    def exists(self, key: str) -> bool: ...

    def read_bytes(self, key: str) -> bytes: ...

    def write_bytes(self, key: str, data: bytes, *, create_only: bool = False) -> None: ...

    def upload(self, src: Path, key: str, *, create_only: bool = False) -> None: ...

    def fetch(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """A local file holding the object, valid inside the `with` block."""
        ...

    def list(self, prefix: str = "") -> list[str]: ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error (retention runs again)."""
        ...

    def identity(self, key: str) -> str:
        """What identifies this version of the object (a content digest, plus the
        generation on GCS), so a file replaced upstream changes it."""
        ...


# (path, device, inode, size, mtime, ctime) -> digest. Within one process a file's digest is
# asked for several times (each step's plan re-checks that ingest's source is unchanged); at
# 10M rows hashing the 620 MB file took 0.4 s a time, 2.2 s of one `airtime run`. Any write
# to the file changes its mtime or ctime, so a changed file is hashed again.
_DIGESTS: dict[tuple[str, int, int, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    key = _digest_key(path)
    if key not in _DIGESTS:
        _DIGESTS[key] = _sha256(path)
    return _DIGESTS[key]


def _digest_key(path: Path) -> tuple[str, int, int, int, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _same_digest(src: Path, linked: Path) -> None:
    """`linked`, a hard link just made of `src`, has the digest known of `src`: the steps that
    read the artifact next check it without hashing it again (0.3 s per 150 MB)."""
    src_stat, stat = src.stat(), linked.stat()
    if (src_stat.st_dev, src_stat.st_ino) != (stat.st_dev, stat.st_ino):
        return
    known = [digest for (path, dev, ino, size, mtime, _), digest in _DIGESTS.items()
             if path == str(src.resolve()) and (dev, ino, size, mtime) == (
                 stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)]
    if known:
        _DIGESTS[_digest_key(linked)] = known[-1]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalStore:
    """A folder. Writes go to a temporary file then `os.replace`, so a reader (or a
    run killed mid-write) never sees a partial object."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def _readable(self, key: str) -> Path:
        """The file of `key`, refused when it resolves outside the root (a symbolic link
        in a source folder must not hand out /etc/passwd as a delivery)."""
        path = self._path(key)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise InputError(f"{path}: refused, it resolves outside {self.root.resolve()}"
                             " (a symbolic link?); copy the file into the folder instead")
        return path

    def uri(self, key: str) -> str:
        return str(self._path(key).resolve())

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        path = self._readable(key)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self.uri(key)}: {exc.strerror or exc}") from exc

    def write_bytes(self, key: str, data: bytes, *, create_only: bool = False) -> None:
        with self._atomic_target(key, create_only) as tmp:
            tmp.write_bytes(data)

    def upload(self, src: Path, key: str, *, create_only: bool = False) -> None:
        if Path(src).resolve() == self._path(key).resolve():
            return
        with self._atomic_target(key, create_only) as tmp:
            # a hard link where the folder is on the same file system: an upload hands over a
            # finished file that its writer no longer touches (a step's scratch Parquet), and
            # copying it cost 0.5-0.75 s of a day at 10M rows
            tmp.unlink()
            try:
                os.link(src, tmp)
                linked = True
            except OSError:
                linked = False
                with Path(src).open("rb") as fin, tmp.open("wb") as fout:
                    while block := fin.read(1 << 20):
                        fout.write(block)
        if linked:
            _same_digest(Path(src), self._path(key))

    @contextlib.contextmanager
    def _atomic_target(self, key: str, create_only: bool) -> Iterator[Path]:
        target = self._path(key)
        if create_only and target.exists():
            raise StorageError(f"refusing to overwrite {target}: it must never change")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            os.close(fd)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
        tmp = Path(name)
        try:
            yield tmp
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def fetch(self, key: str) -> Iterator[Path]:
        path = self._readable(key)
        if not path.is_file():
            raise StorageError(f"missing object {path}")
        yield path

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        keys = [
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ]
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot remove {path}: {exc.strerror or exc}") from exc
        for parent in path.parents:  # empty folders go too, up to the root
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:  # not empty
                break

    def identity(self, key: str) -> str:
        return "sha256:" + sha256_file(self._readable(key))


def parse_bucket_uri(uri: str, scheme: str) -> tuple[str, str]:
    """`<scheme>://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not uri.startswith(f"{scheme}://"):
        raise ConfigError(f"not a {scheme}:// URI: {uri!r}")
    bucket, _, prefix = uri[len(scheme) + 3:].partition("/")
    if not bucket:
        raise ConfigError(f"no bucket in {uri!r}; expected {scheme}://bucket[/prefix]")
    return bucket, prefix.strip("/")


class BucketKeys:
    """Keys of a store that lives under `<scheme>://bucket/prefix` (GCS, S3): how a key is
    named there, and how a listing is read as a folder, as LocalStore reads one."""

    scheme: str
    bucket_name: str
    prefix: str

    def _name(self, key: str) -> str:
        key = key.lstrip("/")
        return f"{self.prefix}/{key}" if self.prefix and key else (self.prefix or key)

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket_name}/{self._name(key)}"

    def _list_prefix(self, prefix: str) -> str:
        """The object-name prefix to list for the folder `prefix`."""
        return (f"{self.prefix}/" if self.prefix else "") + prefix.strip("/")

    def _folder_keys(self, names: Iterable[str], prefix: str) -> list[str]:
        """Keys under `prefix` of the object names listed: "runs" lists "runs/..." (or the
        object "runs" itself), never "runs-old/..."; "folder" placeholder objects skipped."""
        root, wanted = (f"{self.prefix}/" if self.prefix else ""), prefix.strip("/")
        keys = (name[len(root):] for name in names if not name.endswith("/"))
        return sorted(key for key in keys if not wanted or key == wanted or key.startswith(wanted + "/"))


def find_one(store: ObjectStore, prefix: str, pattern: str, what: str) -> str:
    """The single key directly under `prefix` whose file name matches `pattern`."""
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    matches = [
        key
        for key in store.list(prefix)
        if "/" not in key[len(prefix):] and fnmatch.fnmatch(key[len(prefix):], pattern)
    ]
    if not matches:
        raise InputError(f"no {what} file matching '{pattern}' in {store.uri(prefix)}")
    if len(matches) > 1:
        raise InputError(f"{len(matches)} {what} files match '{pattern}' in {store.uri(prefix)}: "
                         + ", ".join(matches) + "; expected exactly one")
    return matches[0]

