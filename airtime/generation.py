"""Generations: each delivery of a date gets its own, and a published one never changes.

A generation is named by what determines its data: the identity of the delivered files
(with the settings ingest applies to them) and the published generation of the earlier
date whose history it extends. Every step of every pod computes the same name from the
source and the ledger, so a retried or resumed attempt finds its own generation's
manifests, and a held, failed or killed attempt writes only into its own folder
(`runs/<date>/<generation>/`), never into the published one that later days read.

    delivery X of 07-22 on top of 07-21/a1   -> 07-22/<g1>  (published)
    delivery Y of 07-22 on top of 07-21/a1   -> 07-22/<g2>  (held: g1 stays published)
    delivery X again                          -> 07-22/<g1>  (already done: nothing runs)
    07-21 re-published as a2                  -> 07-22 gets <g3> on its next run

The ledger (airtime/warehouse.py) names the published generation of each date; every
reader of "the previous delivery", "the previous history", verify, queries and the
server resolves through it.
"""

from __future__ import annotations

import hashlib
import json

from airtime.warehouse import RunRecord

NONE = "none"  # what a day builds on when no earlier date is published


def previous_ref(previous: RunRecord | None) -> str:
    """How a generation names what it builds on: `<date>/<generation>` or `none`."""
    return NONE if previous is None else f"{previous.run_date.isoformat()}/{previous.generation}"


def generation_id(delivery: dict[str, str], previous: RunRecord | None) -> str:
    """16 hex digits of the digest of the delivery's identity and what it builds on."""
    body = json.dumps({"delivery": delivery, "previous": previous_ref(previous)}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]
