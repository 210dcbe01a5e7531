"""The signals and programs of a published run, with the slots of each pair.

What `airtime query codes` lists, and what a code a query names is looked up in and matched
against (query_rules.check_known). They come from the run's forecast rows, read with
`Warehouse.read_forecast` (or, in the server, from the snapshot it serves): a run's codes are
the codes of its forecast, whatever the ledger holds about the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from airtime.warehouse import SlotFilter, Warehouse

# the query fields that name a code, as SlotFilter and the proto name them
CODE_FIELDS = ("signal", "program_code")


@dataclass(frozen=True, order=True)
class Series:
    """One (signal, program) pair of a run and how many slots it has."""

    signal: str
    program_code: str
    slots: int


@dataclass(frozen=True)
class RunCodes:
    run_date: dt.date
    series: tuple[Series, ...]  # ordered by signal, program_code

    def codes(self, field: str) -> list[str]:
        """The distinct codes of one field ("signal" or "program_code"), sorted."""
        return sorted({getattr(s, field) for s in self.series})


def codes_of_series(run_date: dt.date, series: Iterable[tuple[str, str, int]]) -> RunCodes:
    return RunCodes(run_date, tuple(sorted(Series(*s) for s in series if s[2] > 0)))


def codes_of_table(run_date: dt.date, table: pa.Table) -> RunCodes:
    """The codes of forecast rows (any table with `signal` and `program_code` columns)."""
    counted = table.select(["signal", "program_code"]).group_by(["signal", "program_code"]).aggregate(
        [([], "count_all")])
    return codes_of_series(run_date, zip(counted.column("signal").to_pylist(),
                                         counted.column("program_code").to_pylist(),
                                         counted.column("count_all").to_pylist(), strict=True))


class KnownCodes(Protocol):
    """Where a query's codes are looked up: the run's forecast, in whatever form a reader has it."""

    run_date: dt.date

    def has(self, field: str, code: str) -> bool:
        """Whether the run has a slot whose `field` is `code`."""
        ...

    def codes(self) -> RunCodes:
        """Every code of the run (asked only to name the closest ones: it may cost a full read)."""
        ...


class WarehouseCodes:
    """KnownCodes of a published run in the warehouse, one filtered read per question.
    Only the Warehouse protocol's read_forecast is used, so every engine (and the ledger's
    rework into generations) answers it the same way."""

    def __init__(self, warehouse: Warehouse, run_date: dt.date) -> None:
        self._warehouse = warehouse
        self.run_date = run_date

    def has(self, field: str, code: str) -> bool:
        return self._warehouse.read_forecast(self.run_date, SlotFilter(**{field: code})).num_rows > 0

    def codes(self) -> RunCodes:
        return codes_of_table(self.run_date, self._warehouse.read_forecast(self.run_date))
