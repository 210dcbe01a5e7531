"""Where answers come from: the `ForecastBackend` interface and its two implementations.

- SnapshotBackend (default): the latest published run, in memory and indexed; a poller
  loads a newer run beside it and swaps one reference, so requests never wait for a load.
  An older published run that a request names (`run_date`) is loaded on demand into a
  small LRU of snapshots, on a thread (never on the event loop).
- WarehouseBackend: asks the warehouse on every request; slower, no memory, always current.
Both pin paginated reads to the run of their first page (see queries.RunId), both ask
airtime.query.published_record which run is published (the local query's own question), and
both answer a named run date with no published run (never run, failed, demoted), and a signal
or program the run does not have, with the local query's errors (RunNotPublishedError,
UnknownProgramError: NOT_FOUND, grpc_server/errors.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from airtime.errors import NotPublishedError, StorageError
from airtime.publication import read_marker
from airtime.query import published_record, published_run
from airtime.query_rules import InvalidQueryError, check_known
from airtime.run_codes import RunCodes, WarehouseCodes, codes_of_series
from airtime.settings import Settings
from airtime.store import ObjectStore
from airtime.warehouse import FAILED, RunRecord, SlotFilter, Warehouse
from grpc_server.errors import PageExpiredError
from grpc_server.queries import PageRequest, RunId
from grpc_server.snapshot import Snapshot, run_id
from grpc_server.wire import EncodedSlots, encode_columns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedRun:
    record: RunRecord
    id: RunId
    loaded_at: dt.datetime | None  # None: a pinned run asked about but not loaded


@dataclass(frozen=True)
class SlotPage:
    run: ServedRun
    slots: EncodedSlots
    total: int
    next_offset: int | None  # None on the last page


class ForecastBackend(Protocol):
    # whether answering may wait on I/O: the server then answers from a thread pool,
    # otherwise on its event loop (a snapshot answer is a few microseconds of CPU)
    blocking: bool

    def start(self) -> None:
        """Begin polling the ledger (first load included) in the background."""
        ...

    def close(self) -> None: ...

    def refresh(self) -> bool:
        """Check the ledger now; True when the served run changed."""
        ...

    def ready(self) -> bool:
        """Whether there is a published run to answer from."""
        ...

    def add_listener(self, listener: Callable[[ServedRun], None]) -> None:
        """Call listener(run) whenever a (new) run starts being served."""
        ...

    def inline(self, run: RunId | None = None, run_date: dt.date | None = None) -> bool:
        """Whether answering about this run is memory only (the event loop may answer):
        otherwise the server asks from a thread."""
        ...

    def served(self, run_date: dt.date | None = None) -> ServedRun:
        """The run answers come from: the latest published, or the one of run_date."""
        ...

    def list_slots(self, query: SlotFilter, page: PageRequest) -> SlotPage: ...

    def stream_slots(self, query: SlotFilter, chunk_size: int, run_date: dt.date | None = None
                     ) -> tuple[ServedRun, Iterator[EncodedSlots]]:
        ...

    def program_slots(self, query: SlotFilter, run_date: dt.date | None = None
                      ) -> tuple[ServedRun, EncodedSlots]: ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _not_published() -> NotPublishedError:
    return NotPublishedError("no published run to serve yet: run the pipeline first")


def _still_published(warehouse: Warehouse, run: RunId) -> RunRecord | None:
    """The ledger record of that very version of a run while it is published, else None."""
    record = published_record(warehouse, run.run_date)
    return record if record is not None and run_id(record) == run else None


class SnapshotCodes:
    """KnownCodes of a snapshot: from memory, a few microseconds (the event loop asks)."""

    # the snapshot's index takes closed ranges: these two cover every slot
    _EVER = (dt.date.min, dt.date.max)

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self.run_date = snapshot.id.run_date

    def has(self, field: str, code: str) -> bool:
        return self._snapshot.select(SlotFilter(*self._EVER, **{field: code})).total > 0

    def codes(self) -> RunCodes:
        every = self._snapshot.select(SlotFilter(*self._EVER))
        first = self._snapshot.columns(every.lo)  # the first row of each (signal, program) series
        return codes_of_series(self.run_date, zip(first.column("signal"), first.column("program_code"),
                                                  every.counts.tolist(), strict=True))


def _page_expired(run: RunId) -> PageExpiredError:
    return PageExpiredError(
        f"the page token is for a version of run {run.run_date} that is no longer published"
        " (re-published or demoted since the first page): start again from the first page"
    )


class _Poller:
    """Calls refresh() every interval on a daemon thread; a failed poll keeps serving."""

    def __init__(self, refresh: Callable[[], bool], interval: float, name: str) -> None:
        self._refresh = refresh
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh()
            except Exception:  # noqa: BLE001 - the previous run stays served; retry next tick
                log.warning("polling the ledger failed; still serving the previous run",
                            exc_info=True)
            self._stop.wait(self._interval)


class _Listeners:
    def __init__(self) -> None:
        self._listeners: list[Callable[[ServedRun], None]] = []

    def add_listener(self, listener: Callable[[ServedRun], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, run: ServedRun) -> None:
        for listener in self._listeners:
            listener(run)


class SnapshotBackend(_Listeners):
    """The latest published run in memory. With a `marker` store (airtime/publication.py)
    each poll reads the publication marker and asks the ledger only when it changed, or
    every `ledger_check` seconds whatever it says; without one, every poll asks the ledger."""

    blocking = False

    # older runs named by requests, kept in memory at once (each costs a snapshot's memory)
    PINNED_RUNS = 2

    def __init__(self, warehouse: Warehouse, *, reload_interval: float = 30.0, retain: int = 2,
                 marker: ObjectStore | None = None, ledger_check: float = 3600.0,
                 pinned_runs: int = PINNED_RUNS) -> None:
        super().__init__()
        self._warehouse = warehouse
        self._marker = marker
        self._ledger_check = ledger_check
        self._seen_marker: object = object()  # nothing seen yet: the first poll asks the ledger
        self._next_ledger_check = 0.0
        # the current run plus up to retain-1 previous ones, so paging across a swap
        # continues on the run it started on
        self._retain = max(1, retain)
        self._held: OrderedDict[RunId, Snapshot] = OrderedDict()
        self._current: Snapshot | None = None
        self._load_lock = threading.Lock()
        # least recently used first; changed only under _pin_lock (one load at a time)
        self._pinned: OrderedDict[RunId, Snapshot] = OrderedDict()
        self._pinned_max = max(0, pinned_runs)
        self._pin_lock = threading.Lock()
        self._poller = _Poller(self.refresh, reload_interval, "snapshot-poller")

    def start(self) -> None:
        self._poller.start()

    def close(self) -> None:
        self._poller.stop()

    def ready(self) -> bool:
        return self._current is not None

    def refresh(self) -> bool:
        with self._load_lock:
            # read before the ledger: a publish after this read changes the marker again
            marker = read_marker(self._marker) if self._marker is not None else None
            if self._marker is not None and marker == self._seen_marker \
                    and time.monotonic() < self._next_ledger_check:
                return False
            changed = self._refresh_from_ledger()
            self._forget_unpublished()
            if changed is not None:  # settled: until the marker changes, nothing to do
                self._seen_marker = marker
                self._next_ledger_check = time.monotonic() + self._ledger_check
            return bool(changed)

    def _forget_unpublished(self) -> None:
        """Drop from memory the runs held beside the current one (the previous ones, for
        page tokens that crossed a swap; the pinned ones) whose version is no longer
        published: superseded by a newer publish of their date (which removed their rows),
        demoted by a re-check, pruned. Their page tokens then miss memory, ask the ledger
        and get FAILED_PRECONDITION; a run that is still published (an older date a client
        pinned) stays. One ledger read per such run, at each ledger check."""
        current = self._current
        others = {rid for rid in (*tuple(self._held), *tuple(self._pinned))
                  if current is None or rid != current.id}
        gone = [rid for rid in others if _still_published(self._warehouse, rid) is None]
        if not gone:
            return
        for rid in gone:
            self._held.pop(rid, None)
        with self._pin_lock:
            for rid in gone:
                self._pinned.pop(rid, None)
        log.info("dropped run(s) no longer published from memory: %s; their page tokens now answer"
                 " FAILED_PRECONDITION", ", ".join(str(rid.run_date) for rid in gone))

    def _refresh_from_ledger(self) -> bool | None:
        """Whether the served run changed; None when it must be tried again next poll."""
        latest = published_record(self._warehouse)
        if latest is None:
            self._drop_failed_run()
            return False
        rid = run_id(latest)
        if self._current is not None and self._current.id == rid:
            return False
        started = time.monotonic()
        table = self._warehouse.read_forecast(latest.run_date, generation=latest.generation)
        if _still_published(self._warehouse, rid) is None:
            log.info("run %s changed while loading it; retrying next poll", latest.run_date)
            return None
        snapshot = Snapshot(latest, table, _now())
        self._held[rid] = snapshot
        while len(self._held) > self._retain:
            self._held.popitem(last=False)
        # one reference assignment: requests see the old snapshot or the new one
        self._current = snapshot
        log.info(
            "serving run %s: %d slots, loaded in %.2fs", latest.run_date, snapshot.rows,
            time.monotonic() - started,
            extra={"run_date": str(latest.run_date), "slots": snapshot.rows},
        )
        self._notify(_served(snapshot))
        _release_freed_memory()
        return True

    def _drop_failed_run(self) -> None:
        """No run is published. The served version stays while its day is loaded again
        (and if that new load fails: the verified rows stay served from memory); the very
        version served goes when a re-check demoted it (`airtime verify`)."""
        current = self._current
        if current is None:
            return
        record = self._warehouse.run_record(current.id.run_date)
        if record is not None and record.state == FAILED and run_id(record) == current.id:
            log.warning("run %s is not published any more (%s: %s): serving nothing",
                        current.id.run_date, record.failed_step, (record.error or "").splitlines()[:1])
            self._current = None
            self._held.clear()

    def _in_memory(self, run: RunId) -> Snapshot | None:
        current = self._current
        if current is not None and current.id == run:
            return current
        return self._held.get(run) or self._pinned.get(run)

    def _pinned_hit(self, run: RunId) -> Snapshot | None:
        """The snapshot of a run already in memory, marked as recently used."""
        held = self._in_memory(run)
        if held is not None:
            # no lock: this runs on the event loop, and a load holds _pin_lock for seconds;
            # a concurrent eviction only makes the run gone already
            with contextlib.suppress(KeyError):
                self._pinned.move_to_end(run)
        return held

    def inline(self, run: RunId | None = None, run_date: dt.date | None = None) -> bool:
        # a named run date always costs a ledger read (it may have been demoted since)
        return run_date is None and (run is None or self._in_memory(run) is not None)

    def _snapshot(self, run: RunId | None = None, run_date: dt.date | None = None) -> Snapshot:
        """The snapshot to answer from: of the page token's run, else of the named run
        date, else the current one. Runs not in memory are loaded (on the caller's
        thread: the servicer calls from its pool when inline() says so)."""
        if run is not None:
            held = self._pinned_hit(run)
            if held is not None:
                return held
            record = _still_published(self._warehouse, run)
            if record is None:
                raise _page_expired(run)
            return self._load_pinned(record)
        if run_date is not None:
            record = published_run(self._warehouse, run_date)
            return self._pinned_hit(run_id(record)) or self._load_pinned(record)
        current = self._current
        if current is None:
            raise _not_published()
        return current

    def _load_pinned(self, record: RunRecord) -> Snapshot:
        rid = run_id(record)
        with self._pin_lock:  # one load at a time: two requests for a run load it once
            held = self._in_memory(rid)
            if held is not None:  # loaded by the request this one waited for
                return held
            started = time.monotonic()
            table = self._warehouse.read_forecast(record.run_date, generation=record.generation)
            if _still_published(self._warehouse, rid) is None:
                raise StorageError(f"run {record.run_date} changed while loading it: ask again")
            snapshot = Snapshot(record, table, _now())
            if self._pinned_max:
                self._pinned[rid] = snapshot
                while len(self._pinned) > self._pinned_max:
                    self._pinned.popitem(last=False)
            log.info("loaded pinned run %s: %d slots in %.2fs", record.run_date, snapshot.rows,
                     time.monotonic() - started, extra={"run_date": str(record.run_date)})
            return snapshot

    def served(self, run_date: dt.date | None = None) -> ServedRun:
        if run_date is None:
            return _served(self._snapshot())
        record = published_run(self._warehouse, run_date)
        held = self._in_memory(run_id(record))
        return ServedRun(record, run_id(record), held.loaded_at if held is not None else None)

    def list_slots(self, query: SlotFilter, page: PageRequest) -> SlotPage:
        snapshot = self._snapshot(page.run, page.run_date)
        selection = snapshot.select(query)
        check_known(query, SnapshotCodes(snapshot), answered=selection.total)
        _check_offset(page.offset, selection.total)
        slots = snapshot.encoded(selection, page.offset, page.size)
        end = page.offset + len(slots)
        return SlotPage(_served(snapshot), slots, selection.total,
                        end if end < selection.total else None)

    def stream_slots(self, query: SlotFilter, chunk_size: int, run_date: dt.date | None = None
                     ) -> tuple[ServedRun, Iterator[EncodedSlots]]:
        snapshot = self._snapshot(run_date=run_date)
        selection = snapshot.select(query)
        check_known(query, SnapshotCodes(snapshot), answered=selection.total)

        def chunks() -> Iterator[EncodedSlots]:
            for offset in range(0, selection.total, chunk_size):
                yield snapshot.encoded(selection, offset, chunk_size)

        return _served(snapshot), chunks()

    def program_slots(self, query: SlotFilter, run_date: dt.date | None = None
                      ) -> tuple[ServedRun, EncodedSlots]:
        snapshot = self._snapshot(run_date=run_date)
        slots = snapshot.few_slots(query)
        check_known(query, SnapshotCodes(snapshot), answered=len(slots))
        return _served(snapshot), slots


def _release_freed_memory() -> None:
    """Hand the heap freed by a load (Arrow reads, the encoding's temporaries) back to the
    OS: glibc keeps it otherwise, measured at ~100 MB of RSS after a 1M-slot load."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _check_offset(offset: int, total: int) -> None:
    """A page token's offset past the end of its query is not one we gave out (tokens
    are checksummed, not signed: anyone can forge one)."""
    if offset > total:
        raise InvalidQueryError([("page_token", f"offset {offset} is past the last of {total} slots")])


def _served(snapshot: Snapshot) -> ServedRun:
    return ServedRun(snapshot.run, snapshot.id, snapshot.loaded_at)


class WarehouseBackend(_Listeners):
    """Reads the warehouse on every request (the ledger, then the matching rows)."""

    blocking = True

    def __init__(self, warehouse: Warehouse, *, reload_interval: float = 30.0) -> None:
        super().__init__()
        self._warehouse = warehouse
        self._seen: ServedRun | None = None
        self._poller = _Poller(self.refresh, reload_interval, "warehouse-poller")

    def start(self) -> None:
        self._poller.start()

    def close(self) -> None:
        self._poller.stop()

    def ready(self) -> bool:
        return self._seen is not None

    def refresh(self) -> bool:
        latest = published_record(self._warehouse)
        if latest is None:
            return False
        rid = run_id(latest)
        if self._seen is not None and self._seen.id == rid:
            return False
        self._seen = ServedRun(latest, rid, _now())
        self._notify(self._seen)
        return True

    def inline(self, run: RunId | None = None, run_date: dt.date | None = None) -> bool:
        return False  # every answer is a warehouse query

    def served(self, run_date: dt.date | None = None) -> ServedRun:
        if run_date is not None:
            record = published_run(self._warehouse, run_date)
            return ServedRun(record, run_id(record), _now())
        self.refresh()
        if self._seen is None:
            raise _not_published()
        return self._seen

    def _pinned(self, run: RunId) -> ServedRun:
        record = _still_published(self._warehouse, run)
        if record is None:
            raise _page_expired(run)
        return ServedRun(record, run, _now())

    def _read(self, run: ServedRun, query: SlotFilter) -> pa.Table:
        return self._warehouse.read_forecast(run.id.run_date, query)

    def list_slots(self, query: SlotFilter, page: PageRequest) -> SlotPage:
        run = self.served(page.run_date) if page.run is None else self._pinned(page.run)
        table = self._read(run, query)
        check_known(query, WarehouseCodes(self._warehouse, run.id.run_date), answered=table.num_rows)
        _check_offset(page.offset, table.num_rows)
        rows = encode_columns(table.slice(page.offset, page.size))
        end = page.offset + len(rows)
        return SlotPage(run, rows, table.num_rows, end if end < table.num_rows else None)

    def stream_slots(self, query: SlotFilter, chunk_size: int, run_date: dt.date | None = None
                     ) -> tuple[ServedRun, Iterator[EncodedSlots]]:
        run = self.served(run_date)
        table = self._read(run, query)
        check_known(query, WarehouseCodes(self._warehouse, run.id.run_date), answered=table.num_rows)

        def chunks() -> Iterator[EncodedSlots]:
            for offset in range(0, table.num_rows, chunk_size):
                yield encode_columns(table.slice(offset, chunk_size))

        return run, chunks()

    def program_slots(self, query: SlotFilter, run_date: dt.date | None = None
                      ) -> tuple[ServedRun, EncodedSlots]:
        run = self.served(run_date)
        table = self._read(run, query)
        check_known(query, WarehouseCodes(self._warehouse, run.id.run_date), answered=table.num_rows)
        return run, encode_columns(table)


def open_backend(settings: Settings, warehouse: Warehouse, marker: ObjectStore | None = None
                 ) -> ForecastBackend:
    if settings.server_backend == "warehouse":
        return WarehouseBackend(warehouse, reload_interval=settings.reload_interval_seconds)
    return SnapshotBackend(warehouse, reload_interval=settings.reload_interval_seconds, marker=marker,
                           ledger_check=settings.ledger_check_seconds)
