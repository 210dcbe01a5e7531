"""Crash points for resilience tests and drills.

`AIRTIME_CRASH_AT=<point>` (parsed with the settings, armed once by the entry point)
makes the process die with `os._exit(137)` at that point, exactly like `kill -9`:
no cleanup, no exception handlers, no flushed buffers. Points: after-ingest,
after-preprocess, load-before-commit, after-load, after-verify, and
prune-after-artifacts (`airtime prune`, a generation's artifacts gone, its rows not yet).
`AIRTIME_CRASH_ONCE=<marker file>` makes it fire only if the marker does not exist yet
(it is created first), so a retry of the same step succeeds.
"""

from __future__ import annotations

import os
from pathlib import Path

_armed: str | None = None
_once_marker: Path | None = None


def arm(point: str | None, once_marker: Path | None = None) -> None:
    global _armed, _once_marker
    _armed, _once_marker = point, once_marker


def crash_point(name: str) -> None:
    if _armed != name:
        return
    if _once_marker is not None:
        if _once_marker.exists():
            return
        _once_marker.parent.mkdir(parents=True, exist_ok=True)
        _once_marker.touch()
    os._exit(137)
