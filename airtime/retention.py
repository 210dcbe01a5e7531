"""Retention: which generations `airtime prune` removes, and removing them.

Kept, always:
- the published generation of every date within `retention_days` of the newest
  published date, and the published generation the oldest of them builds on (a
  re-delivery of that day is built on it);
- a held, failed or loaded generation newer than its date's published one (or of a date
  with none): it waits to be inspected, accepted or superseded;
- folders the ledger does not know (an attempt running now, or killed before it wrote a
  ledger row): a run resumes them, and nothing tells a live one from a dead one.

Removed: every other generation's artifacts (a superseded one, a failed one a later
generation of its date replaced, and anything past retention), and the warehouse rows of
unpublished ones (their ledger row says `pruned`). Published rows past retention stay in
the warehouse, whose own retention is partition expiry (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from airtime.manifest import run_prefix
from airtime.store import ObjectStore
from airtime.warehouse import LEGACY, PRUNED, PUBLISHED, RunRecord, Warehouse


@dataclass(frozen=True)
class Removal:
    record: RunRecord
    why: str
    keys: list[str] = field(default_factory=list)


def generation_keys(store: ObjectStore, run_date: dt.date, generation: str) -> list[str]:
    """Every object of one generation. The LEGACY folder `runs/<D>/` also holds the newer
    generations' folders: only its `<step>/<file>` keys are its own."""
    prefix = run_prefix(run_date, generation) + "/"
    keys = store.list(prefix)
    if generation == LEGACY:  # <gen>/<step>/<file> keys belong to the newer generations
        keys = [k for k in keys if len(k[len(prefix):].split("/")) == 2]
    return keys


def plan_removals(store: ObjectStore, warehouse: Warehouse, retention_days: int) -> list[Removal]:
    records = warehouse.ledger()  # newest first
    published = [r for r in records if r.state == PUBLISHED]
    cutoff = published[0].run_date - dt.timedelta(days=retention_days) if published else None
    anchor = next((r for r in published if cutoff is not None and r.run_date < cutoff), None)
    published_of = {r.run_date: r for r in published}
    removals = []
    for record in records:
        if record.state == PRUNED:
            continue
        served = published_of.get(record.run_date)
        stamp = record.started_at
        if record.state == PUBLISHED:
            if cutoff is not None and record.run_date < cutoff and record is not anchor:
                why = f"published, older than {retention_days} days before {published[0].run_date}"
            else:
                continue
        elif cutoff is not None and record.run_date < cutoff:
            why = f"{record.state}, older than {retention_days} days before {published[0].run_date}"
        elif served is not None and (stamp is None or served.started_at is None or stamp <= served.started_at):
            why = f"{record.state}; generation {served.generation} of the date is published since"
        else:
            continue
        keys = generation_keys(store, record.run_date, record.generation)
        if keys or record.state != PUBLISHED:  # an old published day already pruned: nothing to say
            removals.append(Removal(record, why, keys))
    return removals


def remove(store: ObjectStore, warehouse: Warehouse, removal: Removal) -> None:
    """The artifacts first (a crash half-way leaves a row that prune removes again), then
    the unpublished generation's warehouse rows and ledger state."""
    for key in removal.keys:
        store.delete(key)
    if removal.record.state != PUBLISHED:
        warehouse.remove_generation(removal.record.run_date, removal.record.generation)
