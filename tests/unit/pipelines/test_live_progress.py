"""The run's progress: a tracker the stages call without knowing who watches, and the CLI's live display of it."""

from __future__ import annotations

import io
import threading

import pytest
from rich.console import Console

from pipelines._internal.live_progress import LiveProgress, short_count
from pipelines._internal.progress import NO_TRACKER, CountingTracker, NullTracker, Tracker


def _terminal() -> Console:
    return Console(record=True, force_terminal=True, width=120, file=io.StringIO(), color_system=None)


def _bars(live: LiveProgress) -> dict[str, tuple[float, float | None]]:
    """Description (markup and padding stripped) -> (completed, total) of every bar on show."""
    out = {}
    for task in live.progress.tasks:
        label = task.description.replace("[bold cyan]", "").replace("[/]", "").strip()
        out[label] = (task.completed, task.total)
    return out


def test_the_null_tracker_takes_every_call_and_does_nothing() -> None:
    assert isinstance(NO_TRACKER, NullTracker) and isinstance(NO_TRACKER, Tracker)
    NO_TRACKER.stage_started("extract")
    NO_TRACKER.table_total("extract", "flights", 10)
    NO_TRACKER.advance("extract", "flights", 5)
    NO_TRACKER.table_done("extract", "flights", 10)
    NO_TRACKER.table_done("extract", "planes")
    NO_TRACKER.stage_done("extract")
    NO_TRACKER.close()
    NO_TRACKER.close()  # idempotent


def test_counting_tracker_sums_batches_and_takes_a_final_count() -> None:
    t = CountingTracker()
    assert isinstance(t, Tracker)
    t.stage_started("generate")
    t.table_total("generate", "flights", 1000)
    for _ in range(4):
        t.advance("generate", "flights", 200)
    t.advance("generate", "weather", 7)  # a table never announced still counts
    t.table_done("generate", "flights", 790)  # repaired keys: the final count replaces the sum
    t.stage_done("generate")
    counts = t.stages["generate"]
    assert counts.totals == {"flights": 1000, "weather": None}
    assert counts.done == {"flights": 790, "weather": 7} and counts.rows == 797
    assert counts.finished == ["flights"] and counts.seconds is not None and counts.seconds >= 0


def test_live_display_shows_rows_done_totals_rates_and_time_left() -> None:
    console = _terminal()
    now = [0.0]
    live = LiveProgress(console, auto_refresh=False, clock=lambda: now[0])
    live.say("extract", "reading the source")
    live.stage_started("extract")
    live.table_total("extract", "flights", 200_000)
    live.table_total("extract", "planes", 3_322)
    for _ in range(2):  # a batch of 50,000 rows a second
        now[0] += 1.0
        live.advance("extract", "flights", 50_000)
    assert _bars(live) == {
        "extract 0/2 tables": (100_000, 203_322),
        "flights": (100_000, 200_000),
        "planes": (0, 3_322),
    }
    live.refresh()
    drawn = console.export_text(clear=False)
    assert "100,000/200,000" in drawn and "100,000/203,322" in drawn and "0/3,322" in drawn
    flights = [ln for ln in drawn.splitlines() if "100,000/200,000" in ln][-1]  # the last redraw
    assert flights.split() == ["flights", "━━━━━━━━━━━━", "100,000/200,000", "50.0k", "rows/s", "0:00:02", "0:00:02",
                               "left"]  # rows done/planned, rate, time spent, time left (100,000 rows at 50k rows/s)
    planes = [ln for ln in drawn.splitlines() if "0/3,322" in ln][-1]
    assert "left" not in planes and "rows/s" not in planes  # no rate yet: neither is guessed

    live.table_done("extract", "planes", 3_322)
    assert "planes" not in _bars(live)  # a finished table's bar is removed: the display stays short
    assert _bars(live)["extract 1/2 tables"] == (103_322, 203_322)
    live.advance("extract", "flights", 100_000)
    live.table_done("extract", "flights")
    live.stage_done("extract")
    assert _bars(live) == {}  # a finished stage's bar is gone too
    live.say("extract", "203,322 real rows")
    live.close()

    drawn = console.export_text(clear=False)  # the lines, and each redraw of the display between them
    for line in ("extract reading the source", "extract 203,322 real rows", "extract done: 203,322 rows of 2 tables"):
        assert drawn.count(line) == 1, drawn
    assert "rows/s\n" in drawn.split("extract done:", 1)[1]  # the closing line gives the stage's rate
    assert drawn.split("extract 203,322 real rows", 1)[1].strip() == ""  # nothing is drawn after the last line


def test_more_tables_than_bars_wait_and_show_as_others_finish() -> None:
    live = LiveProgress(_terminal(), max_tables=2, auto_refresh=False)
    live.stage_started("train")
    for name in ("a", "b", "c", "d"):
        live.table_total("train", name, 10)
    assert set(_bars(live)) == {"train 0/4 tables", "a", "b"}
    live.table_done("train", "a", 10)
    assert set(_bars(live)) == {"train 1/4 tables", "b", "c"}
    live.table_done("train", "d", 10)  # a waiting table that finished never gets a bar
    live.table_done("train", "b", 10)
    assert set(_bars(live)) == {"train 3/4 tables", "c"}
    live.close()


def test_stages_side_by_side_each_have_their_bar() -> None:
    live = LiveProgress(_terminal(), auto_refresh=False)
    live.stage_started("write")
    live.stage_started("report")  # the report runs beside the write
    live.table_total("write", "flights", 10)
    assert set(_bars(live)) == {"write", "report", "flights"}
    live.stage_done("report")  # no tables: no closing line, the bar goes
    assert set(_bars(live)) == {"write", "flights"}
    live.close()


def test_no_terminal_draws_nothing_and_prints_each_line_once() -> None:
    out = io.StringIO()
    console = Console(file=out, width=40)  # a pipe: no live display
    live = LiveProgress(console)
    assert not live.live
    live.stage_started("generate")
    live.table_total("generate", "flights", 100)
    live.advance("generate", "flights", 100)
    live.say("generate", "flights: 100 rows")
    long = "a message longer than the forty columns rich assumes for a pipe"
    live.say("generate", long)
    live.table_done("generate", "flights", 100)
    live.stage_done("generate")
    live.close()
    lines = [ln.strip() for ln in out.getvalue().splitlines() if ln.strip()]
    assert lines[0] == "generate flights: 100 rows"
    assert lines[1] == f"generate {long}"  # one event, one line: not wrapped
    assert lines[2].startswith("generate done: 100 rows of 1 table in ")
    assert len(lines) == 3 and "\x1b" not in out.getvalue()


@pytest.mark.parametrize("tracker_type", [CountingTracker, LiveProgress])
def test_concurrent_advances_lose_no_row(tracker_type: type) -> None:
    tracker = tracker_type() if tracker_type is CountingTracker else LiveProgress(_terminal(), auto_refresh=False)
    tracker.stage_started("generate")
    for t in range(4):
        tracker.table_total("generate", f"t{t}", 8 * 2_000)
    barrier = threading.Barrier(8)

    def work(k: int) -> None:
        barrier.wait()
        for i in range(2_000):
            tracker.advance("generate", f"t{k % 4}", 1)
            if isinstance(tracker, LiveProgress) and k == 0 and i % 200 == 0:
                tracker.refresh()  # drawing while the others count

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    counts = tracker.stages["generate"]
    assert counts.rows == 16_000 and all(counts.done[f"t{t}"] == 4_000 for t in range(4))
    if isinstance(tracker, LiveProgress):
        assert _bars(tracker)["generate 0/4 tables"] == (16_000, 64_000)
        assert _bars(tracker)["t1"] == (4_000, 16_000)
    tracker.close()


def test_short_counts() -> None:
    assert [short_count(v) for v in (5, 999, 12_345, 4_560_000, 7.1e9)] == ["5", "999", "12.3k", "4.6M", "7.1G"]


def test_gather_counts_each_result_as_it_comes_back_and_keeps_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from pipelines._internal.progress import gather

    finish_order = ["c", "a", "d", "b"]  # the order the fake cluster finishes its tasks in

    def wait(refs: list[str], num_returns: int = 1, timeout: float | None = None) -> tuple[list[str], list[str]]:
        ready = [r for r in finish_order if r in refs][: 1 if timeout is None else 0]
        return ready, [r for r in refs if r not in ready]

    fake = types.ModuleType("ray")
    fake.wait = wait  # type: ignore[attr-defined]
    fake.get = lambda refs: [r.upper() for r in refs]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", fake)
    seen: list[tuple[int, str]] = []
    assert gather(["a", "b", "c", "d"], lambda i, out: seen.append((i, out))) == ["A", "B", "C", "D"]
    assert seen == [(2, "C"), (0, "A"), (3, "D"), (1, "B")]  # as they finished
    assert gather(["a", "b"]) == ["A", "B"] and gather([], lambda i, out: None) == []
