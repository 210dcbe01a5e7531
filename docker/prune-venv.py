"""Removes from the image's venv what the pipeline and the service never load (docs/image.md).

Run once in the Dockerfile's builder stage, after the dependencies are installed. What it
removes was measured: the modules and shared objects a run, the server and every store
actually load (/proc/self/maps), and each library's ELF NEEDED entries. The image tests
(tests/container/) prove the pipeline, the service and an S3 read still work without them.

- pyarrow: Arrow Flight (RPC, unused; only _flight needs it), the S3 filesystem (sources on
  s3:// are read with boto3; only _s3fs needs libarrow_s3; pyarrow.fs imports it inside
  try/except ImportError), the C++ test module, headers, Cython sources and the test suite;
  the three identical copies of each libarrow_python*.so a wheel must carry (a wheel cannot
  hold symlinks) become symlinks to the one the loader opens (the SONAME).
- botocore: the service models of every AWS service but S3 and what its credential chain
  can call (STS, SSO, SSO-OIDC, sign-in).
- numpy and pyarrow test suites.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

SITE = Path(sys.argv[1])
PYARROW_REMOVED = (
    "libarrow_flight.so*", "libarrow_python_flight.so*", "_flight.*.so", "flight.py",
    "libarrow_s3.so*", "_s3fs.*.so",
    "_pyarrow_cpp_tests.*.so", "*.pyx", "*.pxd", "*.pxi", "include", "includes", "src", "tests",
)
BOTOCORE_KEPT = {"s3", "sts", "sso", "sso-oidc", "signin"}


def size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_symlink() and p.is_file())


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def prune_pyarrow(pyarrow: Path) -> None:
    for pattern in PYARROW_REMOVED:
        for path in pyarrow.glob(pattern):
            remove(path)
    # libarrow_python.so, .so.2600 and .so.2600.1.0: one file, three names
    by_digest: dict[str, list[Path]] = {}
    for path in sorted(pyarrow.glob("lib*.so*")):
        by_digest.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), []).append(path)
    for copies in by_digest.values():
        # the SONAME is the name with exactly one version number: libX.so.2600
        [target] = [p for p in copies if p.name.count(".so.") == 1 and p.name.split(".so.")[1].isdigit()] or [None]
        if target is None or len(copies) == 1:
            continue
        for copy in copies:
            if copy != target:
                copy.unlink()
                copy.symlink_to(target.name)


def prune_botocore(data: Path) -> None:
    for service in data.iterdir():
        if service.is_dir() and service.name not in BOTOCORE_KEPT:
            shutil.rmtree(service)


def main() -> None:
    before = size(SITE)
    prune_pyarrow(SITE / "pyarrow")
    prune_botocore(SITE / "botocore" / "data")
    for tests in (SITE / "numpy").rglob("tests"):
        if tests.is_dir():
            shutil.rmtree(tests)
    after = size(SITE)
    print(f"prune-venv: {before / 1e6:.0f} MB -> {after / 1e6:.0f} MB installed")


if __name__ == "__main__":
    main()
