"""The publication marker: one small object in the artifact store, rewritten whenever the
ledger changes what may be served (a load, a publish, a demotion).

The query service reads this object every poll, which costs one Cloud Storage read, instead
of querying the ledger, which costs a BigQuery job (10 MB billed at least) per replica every
30 s. It queries the ledger only when the marker changed, plus a safety check every
`ledger_check_seconds`, so a change that bypassed the marker is still seen.
"""

from __future__ import annotations

import datetime as dt
import json

from airtime.store import ObjectStore

KEY = "published.json"


def announce(store: ObjectStore, run_date: dt.date, state: str) -> None:
    body = {"run_date": run_date.isoformat(), "state": state,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")}
    store.write_bytes(KEY, json.dumps(body).encode())


def read_marker(store: ObjectStore) -> bytes | None:
    """The marker's bytes (any change means: look at the ledger), None before the first."""
    return store.read_bytes(KEY) if store.exists(KEY) else None
