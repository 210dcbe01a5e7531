"""Step manifests: written last, they are what makes a step "done".

A manifest records the digests of the step's inputs and the figures of its outputs.
A step whose manifest exists and whose recorded input digest equals the current one is
skipped, which is how a re-run after a crash resumes at the first unfinished step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field

from airtime import __version__
from airtime.errors import IntegrityError
from airtime.store import ObjectStore


@dataclass(frozen=True)
class Output:
    key: str  # object key in the artifact store
    uri: str
    rows: int
    checksum: int  # order-independent row checksum, see airtime.checksum
    sha256: str  # of the file's bytes
    # the airtime.checksum version `checksum` was computed with (absent in manifests
    # written before versions existed: those are version 1)
    checksum_version: int = 1


@dataclass
class Manifest:
    step: str
    run_date: dt.date
    inputs: dict[str, str]
    outputs: dict[str, Output] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    created_at: str = ""
    version: str = __version__

    @property
    def input_digest(self) -> str:
        return digest_of(self.inputs)

    def to_json(self) -> bytes:
        body = asdict(self)
        body["run_date"] = self.run_date.isoformat()
        body["input_digest"] = self.input_digest
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        body = json.loads(raw)
        body.pop("input_digest", None)
        body["run_date"] = dt.date.fromisoformat(body["run_date"])
        body["outputs"] = {name: Output(**out) for name, out in body["outputs"].items()}
        return cls(**body)


def digest_of(inputs: dict[str, str]) -> str:
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def run_prefix(run_date: dt.date) -> str:
    return f"runs/{run_date.isoformat()}"


def manifest_key(run_date: dt.date, step: str) -> str:
    return f"{run_prefix(run_date)}/{step}/manifest.json"


def read_manifest(store: ObjectStore, run_date: dt.date, step: str) -> Manifest | None:
    key = manifest_key(run_date, step)
    if not store.exists(key):
        return None
    try:
        return Manifest.from_json(store.read_bytes(key))
    except (ValueError, KeyError, TypeError) as exc:  # JSON or fields: not a manifest of ours
        raise IntegrityError(f"manifest {store.uri(key)} cannot be read ({type(exc).__name__}: {exc}):"
                             " remove it and run the date again") from None


def write_manifest(store: ObjectStore, manifest: Manifest) -> str:
    manifest.created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    key = manifest_key(manifest.run_date, manifest.step)
    store.write_bytes(key, manifest.to_json())
    return store.uri(key)


def fresh_manifest(
    store: ObjectStore, run_date: dt.date, step: str, inputs: dict[str, str]
) -> Manifest | None:
    """The step's manifest if it was written for exactly these inputs, else None."""
    manifest = read_manifest(store, run_date, step)
    if manifest is None or manifest.input_digest != digest_of(inputs):
        return None
    return manifest


def run_dates_with(store: ObjectStore, step: str) -> list[dt.date]:
    """Run dates whose `step` finished (its manifest exists), oldest first."""
    dates = []
    for key in store.list("runs/"):
        parts = key.split("/")
        if len(parts) == 4 and parts[2] == step and parts[3] == "manifest.json":
            try:
                dates.append(dt.date.fromisoformat(parts[1]))
            except ValueError:
                continue
    return sorted(dates)
