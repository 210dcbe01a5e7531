"""Step manifests: written last, they are what makes a step "done".

A manifest records the digests of the step's inputs and the figures of its outputs.
A step whose manifest exists and whose recorded input digest equals the current one is
skipped, which is how a re-run after a crash resumes at the first unfinished step.
Each generation of a date (airtime/generation.py) has its own folder of manifests and
artifacts, `runs/<date>/<generation>/<step>/`; the LEGACY generation, written before
generations existed, is `runs/<date>/<step>/`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field

from airtime import __version__
from airtime.errors import IntegrityError
from airtime.store import ObjectStore
from airtime.warehouse import LEGACY


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
    generation: str = LEGACY  # absent in manifests written before generations

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


def run_prefix(run_date: dt.date, generation: str) -> str:
    """The folder of one generation of a date."""
    day = f"runs/{run_date.isoformat()}"
    return day if generation == LEGACY else f"{day}/{generation}"


def manifest_key(run_date: dt.date, generation: str, step: str) -> str:
    return f"{run_prefix(run_date, generation)}/{step}/manifest.json"


def read_manifest(store: ObjectStore, run_date: dt.date, generation: str, step: str) -> Manifest | None:
    key = manifest_key(run_date, generation, step)
    if not store.exists(key):
        return None
    try:
        return Manifest.from_json(store.read_bytes(key))
    except (ValueError, KeyError, TypeError) as exc:  # JSON or fields: not a manifest of ours
        raise IntegrityError(f"manifest {store.uri(key)} cannot be read ({type(exc).__name__}: {exc}):"
                             " remove it and run the date again") from None


def write_manifest(store: ObjectStore, manifest: Manifest) -> str:
    manifest.created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    key = manifest_key(manifest.run_date, manifest.generation, manifest.step)
    store.write_bytes(key, manifest.to_json())
    return store.uri(key)
