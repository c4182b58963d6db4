"""The command line's view of a run: stage lines printed once, and a live display of the rows in flight.

:class:`LiveProgress` is both the run's progress callback (:meth:`LiveProgress.say`, one line per event) and its
:class:`~pipelines._internal.progress.Tracker`. On a terminal it draws, below the lines, one bar per running stage
and one per table in flight (rows done / planned, rows per second, time spent, time left), removes a table's bar
when the table is done and a stage's when the stage is, and prints one closing line per stage that counted rows.
The display is transient: when the run ends it is erased and only the lines stay, each once. When the console is no terminal (a
pipe, a file, CI), nothing is drawn at all: the output is the lines alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from pipelines._internal.progress import CountingTracker

__all__ = ["LiveProgress"]

STAGE_WIDTH = 9
"""Stage names are right-aligned in this many characters, as in the progress lines."""


def short_count(value: float) -> str:
    """``12.3k``, ``4.5M``: a count in at most about five characters."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


class RowsColumn(ProgressColumn):
    """Rows done / planned, with thousands separators (``12,345/100,000``; ``12,345`` when nothing is planned)."""

    def render(self, task: Task) -> Text:
        done = f"{int(task.completed):,}"
        if task.total is None:
            return Text(done if task.completed else "", style="progress.download")  # a stage without tables
        return Text(f"{done}/{int(task.total):,}", style="progress.download")


class RateColumn(ProgressColumn):
    """Rows per second over the last half minute (``84.2k rows/s``)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{short_count(speed)} rows/s", style="progress.data.speed")


class LeftColumn(TimeRemainingColumn):
    """Time left at the current rate (``0:01:20 left``); nothing before there is a rate, or a total."""

    def render(self, task: Task) -> Text:
        if task.total is None or task.time_remaining is None:
            return Text("")
        return super().render(task).append(" left")


class LiveProgress(CountingTracker):
    """Stage lines and a live display of rows per stage and table, on ``console`` (the CLI's standard error).

    Args:
        console: where to print and draw.
        max_tables: table bars shown per stage at most; the others wait, counted in the stage's bar.
        auto_refresh: redraw in a background thread (off in tests, which call :meth:`refresh`).
        clock: the display's clock, in seconds (rates and times left); default: rich's monotonic one.
    """

    def __init__(
        self,
        console: Console,
        *,
        max_tables: int = 6,
        auto_refresh: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.console = console
        self.max_tables = max_tables
        self.live = console.is_terminal and not console.is_dumb_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            RowsColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            LeftColumn(),
            console=console,
            auto_refresh=auto_refresh,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,  # standard output is for results (--json); the run swaps standard error itself
            redirect_stderr=False,
            get_time=clock,
        )
        self._drawing = False
        self._stage_bars: dict[str, TaskID] = {}
        self._table_bars: dict[tuple[str, str], TaskID] = {}
        self._waiting: dict[str, list[str]] = {}  # per stage, tables in flight without a bar (over max_tables)
        self._closing_lines: set[str] = set()  # stages whose closing line was printed

    # -- the progress callback

    def say(self, stage: str, message: str) -> None:
        """One progress line (``  extract 1,234 real rows``), printed above the live display."""
        self.line(self.console, stage, message)

    @staticmethod
    def line(console: Console, stage: str, message: str) -> None:
        """Print one progress line on ``console``: the stage right-aligned, then the message.

        Piped or redirected, the line is never wrapped: one event, one line, whatever the width rich assumes.
        """
        console.print(
            f"[bold cyan]{escape(stage):>{STAGE_WIDTH}}[/] {escape(message)}",
            highlight=False,
            soft_wrap=not console.is_terminal,
        )

    # -- the tracker

    def stage_started(self, stage: str) -> None:
        with self.lock:
            super().stage_started(stage)
            self._drop_stage(stage)
            self._stage_bars[stage] = self.progress.add_task(self._stage_label(stage), total=None)
            self._closing_lines.discard(stage)
            self._start()

    def table_total(self, stage: str, table: str, rows: int | None) -> None:
        with self.lock:
            super().table_total(stage, table, rows)
            self._ensure_table(stage, table)
            self._sync(stage, table)

    def advance(self, stage: str, table: str, rows: int) -> None:
        with self.lock:
            super().advance(stage, table, rows)
            self._ensure_table(stage, table)
            self._sync(stage, table)

    def table_done(self, stage: str, table: str, rows: int | None = None) -> None:
        with self.lock:
            super().table_done(stage, table, rows)
            self._sync(stage, table)
            bar = self._table_bars.pop((stage, table), None)
            if bar is not None:
                self.progress.remove_task(bar)
            waiting = self._waiting.get(stage, [])
            if table in waiting:
                waiting.remove(table)
            while waiting and self._bars_of(stage) < self.max_tables:  # the next table waiting gets the bar
                self._add_table_bar(stage, waiting.pop(0))
            self.refresh()  # a line printed next must not redraw the finished table's bar

    def stage_done(self, stage: str) -> None:
        with self.lock:
            super().stage_done(stage)
            self._drop_stage(stage)
            self.refresh()
            counts = self.stages[stage]
            if counts.totals and stage not in self._closing_lines:
                self._closing_lines.add(stage)
                seconds = counts.seconds or 0.0
                rate = f", {short_count(counts.rows / seconds)} rows/s" if seconds > 0 else ""
                tables = len(counts.totals)
                self.say(
                    stage,
                    f"done: {counts.rows:,} rows of {tables} table{'s' if tables != 1 else ''} in {seconds:.1f}s"
                    f"{rate}",
                )

    def close(self) -> None:
        with self.lock:
            super().close()
            if self._drawing:
                self._drawing = False
                self.progress.stop()

    def refresh(self) -> None:
        """Draw the display now (the background thread does it every quarter second)."""
        if self._drawing:
            self.progress.refresh()

    # -- the display

    def _start(self) -> None:
        if self.live and not self._drawing and not self.closed:
            self._drawing = True
            self.progress.start()

    def _stage_label(self, stage: str) -> str:
        counts = self.stages.get(stage)
        label = f"[bold cyan]{escape(stage):>{STAGE_WIDTH}}[/]"
        if counts is not None and len(counts.totals) > 1:
            label += f" {len(counts.finished)}/{len(counts.totals)} tables"
        return label

    def _bars_of(self, stage: str) -> int:
        return sum(1 for s, _ in self._table_bars if s == stage)

    def _ensure_table(self, stage: str, table: str) -> None:
        if stage not in self._stage_bars:  # a table reported outside a started stage still shows
            self._stage_bars[stage] = self.progress.add_task(self._stage_label(stage), total=None)
            self._start()
        if (stage, table) in self._table_bars or table in self._waiting.get(stage, []):
            return
        if table in self.stages[stage].finished or self.stages[stage].ended is not None:
            return
        if self._bars_of(stage) < self.max_tables:
            self._add_table_bar(stage, table)
        else:
            self._waiting.setdefault(stage, []).append(table)

    def _add_table_bar(self, stage: str, table: str) -> None:
        counts = self.stages[stage]
        self._table_bars[stage, table] = self.progress.add_task(
            f"{'':>{STAGE_WIDTH}} {escape(table)}", total=counts.totals.get(table), completed=counts.done.get(table, 0)
        )

    def _sync(self, stage: str, table: str) -> None:
        """Put the counts of ``table`` and of its stage into their bars."""
        counts = self.stages[stage]
        bar = self._table_bars.get((stage, table))
        if bar is not None:
            self.progress.update(bar, total=counts.totals.get(table), completed=counts.done.get(table, 0))
        stage_bar = self._stage_bars.get(stage)
        if stage_bar is not None:
            known = [t for t in counts.totals.values() if t is not None]
            total: Any = max(sum(known), counts.rows) if known else None
            self.progress.update(stage_bar, total=total, completed=counts.rows, description=self._stage_label(stage))

    def _drop_stage(self, stage: str) -> None:
        for key in [k for k in self._table_bars if k[0] == stage]:
            self.progress.remove_task(self._table_bars.pop(key))
        self._waiting.pop(stage, None)
        bar = self._stage_bars.pop(stage, None)
        if bar is not None:
            self.progress.remove_task(bar)
