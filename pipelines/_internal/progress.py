"""Row progress of a run's stages, reported without knowing who shows it.

The stages call a :class:`Tracker` on the driver, once per batch, shard or table (never per row): a table's planned
rows (:meth:`Tracker.table_total`), rows done (:meth:`Tracker.advance`), the table finished
(:meth:`Tracker.table_done`). The orchestrator adds each stage's start and end. What the calls turn into is the
caller's business: nothing (:data:`NO_TRACKER`, the default everywhere), counts kept in memory
(:class:`CountingTracker`), or the command line's live display (``pipelines._internal.live_progress``).

Calls may come from several threads at once (the report runs in a thread beside the write), so a tracker must be
thread-safe. Ray tasks run in other processes and never see the tracker: their rows are counted when their results
come back to the driver (:func:`gather`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["NO_TRACKER", "CountingTracker", "NullTracker", "StageCounts", "Tracker", "gather"]


@runtime_checkable
class Tracker(Protocol):
    """What a stage reports about its rows. Every call is cheap and thread-safe, and none may raise."""

    def stage_started(self, stage: str) -> None:
        """The stage ``stage`` began."""

    def table_total(self, stage: str, table: str, rows: int | None) -> None:
        """``table`` will take about ``rows`` rows in ``stage`` (None: not known in advance)."""

    def advance(self, stage: str, table: str, rows: int) -> None:
        """``rows`` more rows of ``table`` are done in ``stage`` (a batch read, a shard generated)."""

    def table_done(self, stage: str, table: str, rows: int | None = None) -> None:
        """``table`` is finished in ``stage``; ``rows``, when given, is its final count (it replaces the sum)."""

    def stage_done(self, stage: str) -> None:
        """The stage ``stage`` ended."""

    def close(self) -> None:
        """The run is over (or failed): no more calls follow. Idempotent."""


class NullTracker:
    """A tracker that does nothing: the default wherever no one watches."""

    def stage_started(self, stage: str) -> None:
        pass

    def table_total(self, stage: str, table: str, rows: int | None) -> None:
        pass

    def advance(self, stage: str, table: str, rows: int) -> None:
        pass

    def table_done(self, stage: str, table: str, rows: int | None = None) -> None:
        pass

    def stage_done(self, stage: str) -> None:
        pass

    def close(self) -> None:
        pass


NO_TRACKER: Tracker = NullTracker()
"""The shared no-op tracker."""


@dataclass
class StageCounts:
    """One stage's counts, as :class:`CountingTracker` keeps them."""

    started: float | None = None  # time.monotonic()
    ended: float | None = None
    totals: dict[str, int | None] = field(default_factory=dict)  # planned rows per table (None: unknown)
    done: dict[str, int] = field(default_factory=dict)  # rows done per table
    finished: list[str] = field(default_factory=list)  # tables in the order they finished

    @property
    def rows(self) -> int:
        """Rows done over all tables."""
        return sum(self.done.values())

    @property
    def seconds(self) -> float | None:
        """How long the stage ran (so far, while it runs); None before it started."""
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else time.monotonic()) - self.started


class CountingTracker:
    """A thread-safe tracker that keeps every stage's counts in memory (:attr:`stages`); a base for displays."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.stages: dict[str, StageCounts] = {}
        self.closed = False

    def _stage(self, stage: str) -> StageCounts:
        counts = self.stages.get(stage)
        if counts is None:
            counts = self.stages[stage] = StageCounts(started=time.monotonic())
        return counts

    def stage_started(self, stage: str) -> None:
        with self.lock:
            self.stages[stage] = StageCounts(started=time.monotonic())  # a stage run again starts afresh

    def table_total(self, stage: str, table: str, rows: int | None) -> None:
        with self.lock:
            counts = self._stage(stage)
            counts.totals[table] = rows
            counts.done.setdefault(table, 0)

    def advance(self, stage: str, table: str, rows: int) -> None:
        with self.lock:
            counts = self._stage(stage)
            counts.totals.setdefault(table, None)
            counts.done[table] = counts.done.get(table, 0) + rows

    def table_done(self, stage: str, table: str, rows: int | None = None) -> None:
        with self.lock:
            counts = self._stage(stage)
            counts.totals.setdefault(table, None)
            if rows is not None:
                counts.done[table] = rows
            else:
                counts.done.setdefault(table, 0)
            if table not in counts.finished:
                counts.finished.append(table)

    def stage_done(self, stage: str) -> None:
        with self.lock:
            self._stage(stage).ended = time.monotonic()

    def close(self) -> None:
        with self.lock:
            self.closed = True


def gather(refs: Sequence[Any], each: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``ray.get(refs)``, calling ``each(i, result)`` on the driver as each task's result comes back.

    Results are returned in the order of ``refs``; ``each`` sees them in the order they finish. The first task that
    failed raises, as with ``ray.get``.
    """
    import ray

    if each is None or not refs:
        return list(ray.get(list(refs)))
    index = {ref: i for i, ref in enumerate(refs)}
    out: list[Any] = [None] * len(refs)
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        if pending:  # whatever else finished meanwhile, in the same round
            more, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
            ready = [*ready, *more]
        for ref, value in zip(ready, ray.get(ready), strict=True):
            out[index[ref]] = value
            each(index[ref], value)
    return out
