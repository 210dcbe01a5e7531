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
the warehouse unless `warehouse_retention_days` is set: then the published generation of
every date more than that many days before the newest published date goes as a whole (its
artifacts, its warehouse rows; its ledger row says `pruned`), except the one the oldest
kept day builds on, by the same rule as the artifacts. The newest published date is never
past either retention. A prune killed half-way leaves a generation whose ledger row still
says what it was: the next prune plans it again and finishes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from airtime import faults
from airtime.manifest import run_prefix
from airtime.store import ObjectStore
from airtime.warehouse import LEGACY, PRUNED, PUBLISHED, RunRecord, Warehouse


@dataclass(frozen=True)
class Removal:
    record: RunRecord
    why: str
    keys: list[str] = field(default_factory=list)
    expire: bool = False  # a published generation past warehouse retention: its rows go too

    @property
    def rows(self) -> bool:
        """Whether its warehouse rows go (an unpublished generation's always do)."""
        return self.expire or self.record.state != PUBLISHED


def generation_keys(store: ObjectStore, run_date: dt.date, generation: str) -> list[str]:
    """Every object of one generation. The LEGACY folder `runs/<D>/` also holds the newer
    generations' folders: only its `<step>/<file>` keys are its own."""
    prefix = run_prefix(run_date, generation) + "/"
    keys = store.list(prefix)
    if generation == LEGACY:  # <gen>/<step>/<file> keys belong to the newer generations
        keys = [k for k in keys if len(k[len(prefix):].split("/")) == 2]
    return keys


def _cutoff_and_anchor(published: list[RunRecord], days: int) -> tuple[dt.date | None, RunRecord | None]:
    """The first date kept (`days` before the newest published date) and the published
    generation the oldest kept day builds on (the newest published before it): a re-delivery
    of that day is built on it, so it keeps its artifacts and its published ledger row."""
    if not published:
        return None, None
    cutoff = published[0].run_date - dt.timedelta(days=days)
    return cutoff, next((r for r in published if r.run_date < cutoff), None)


def plan_removals(store: ObjectStore, warehouse: Warehouse, retention_days: int,
                  warehouse_retention_days: int = 0) -> list[Removal]:
    records = warehouse.ledger()  # newest first
    published = [r for r in records if r.state == PUBLISHED]
    cutoff, anchor = _cutoff_and_anchor(published, retention_days)
    expiry, kept = _cutoff_and_anchor(published, warehouse_retention_days) if warehouse_retention_days \
        else (None, None)
    published_of = {r.run_date: r for r in published}
    removals = []
    for record in records:
        if record.state == PRUNED:
            continue
        served = published_of.get(record.run_date)
        stamp = record.started_at
        expire = False
        if record.state == PUBLISHED:
            if expiry is not None and record.run_date < expiry and record is not kept:
                why = f"published, older than {warehouse_retention_days} days before {published[0].run_date}"
                expire = True
            elif cutoff is not None and record.run_date < cutoff and record is not anchor:
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
        # an old published day whose artifacts went already, rows kept: nothing to say
        if keys or record.state != PUBLISHED or expire:
            removals.append(Removal(record, why, keys, expire))
    return removals


def remove(store: ObjectStore, warehouse: Warehouse, removal: Removal) -> None:
    """The artifacts first, then the warehouse rows and the ledger state in one transaction:
    a crash half-way leaves the ledger row as it was, so the next prune plans the generation
    again and finishes it."""
    for key in removal.keys:
        store.delete(key)
    faults.crash_point("prune-after-artifacts")
    if removal.expire:
        warehouse.expire_generation(removal.record.run_date, removal.record.generation)
    elif removal.record.state != PUBLISHED:
        warehouse.remove_generation(removal.record.run_date, removal.record.generation)
