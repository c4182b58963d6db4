"""The holdout: whole root entities with their descendants, never trained on, reproducible."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fixtures.tricky import create_tricky_schema

from connectors.inspect import inspect_source
from connectors.source import open_source
from pipelines.stages.extract import run_extract, split_holdout
from pipelines.workspace import Workspace
from schemas.plan import build_plan


def _extract(tmp_path: Path, name: str) -> tuple[Path, object, object, dict[str, int]]:
    src = f"sqlite:///{tmp_path}/src.sqlite"
    if not (tmp_path / "src.sqlite").exists():
        create_tricky_schema(src, rows=200)
    source = open_source(src)
    schema = inspect_source(source).schema
    run_dir = tmp_path / name
    counts = run_extract(source, schema, run_dir, batch_rows=500)
    source.close()
    return run_dir, schema, build_plan(schema), counts


def _read(run_dir: Path, area: str, table: str) -> pl.DataFrame:
    return pl.read_parquet(Workspace(run_dir).table(area, table) / "data.parquet")


def test_holdout_moves_whole_entities_and_keeps_every_row(tmp_path: Path) -> None:
    run_dir, schema, plan, counts = _extract(tmp_path, "a")
    held = split_holdout(run_dir, schema, plan, share=0.3, seed=5)  # type: ignore[arg-type]
    assert held["customer"] > 0
    for table, total in counts.items():
        assert _read(run_dir, "real", table).height + held[table] == total
    # no training row hangs under a held-out parent: the training data holds whole entities
    for child, ctx in plan.context.items():  # type: ignore[attr-defined]
        train_child = _read(run_dir, "real", child).select(list(ctx.columns)).drop_nulls()
        held_parent = _read(run_dir, "holdout", ctx.parent).select(
            [pl.col(r).alias(c) for r, c in zip(ctx.ref_columns, ctx.columns, strict=True)]
        )
        assert train_child.join(held_parent, on=list(ctx.columns), how="semi").height == 0, child


def test_holdout_is_reproducible_and_zero_share_holds_nothing_out(tmp_path: Path) -> None:
    first, schema, plan, _ = _extract(tmp_path, "a")
    second, *_ = _extract(tmp_path, "b")
    split_holdout(first, schema, plan, share=0.2, seed=9)  # type: ignore[arg-type]
    split_holdout(second, schema, plan, share=0.2, seed=9)  # type: ignore[arg-type]
    assert _read(first, "holdout", "order").equals(_read(second, "holdout", "order"))
    third, schema, plan, counts = _extract(tmp_path, "c")
    assert split_holdout(third, schema, plan, share=0.0, seed=9) == {t: 0 for t in counts}  # type: ignore[arg-type]


@pytest.mark.parametrize("share", [0.1])
def test_a_degenerate_root_hands_its_children_the_units(tmp_path: Path, share: float) -> None:
    import sqlite3

    db = tmp_path / "few.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE airport (code TEXT PRIMARY KEY, alt INTEGER);
        CREATE TABLE weather (id INTEGER PRIMARY KEY, airport TEXT NOT NULL REFERENCES airport(code), temp REAL);
        """
    )
    conn.executemany("INSERT INTO airport VALUES (?, ?)", [(f"A{i:03d}", i) for i in range(300)])
    conn.executemany("INSERT INTO weather VALUES (?, ?, ?)", [(i, f"A{i % 3:03d}", i * 0.1) for i in range(3000)])
    conn.commit()
    conn.close()
    source = open_source(f"sqlite:///{db}")
    schema = inspect_source(source).schema
    run_dir = tmp_path / "run"
    run_extract(source, schema, run_dir, batch_rows=500)
    source.close()
    held = split_holdout(run_dir, schema, build_plan(schema), share=share, seed=1)
    # only 3 airports have weather: weather rows become the units, so weather gets its own share of holdout
    assert 150 <= held["weather"] <= 450
    kept = set(_read(run_dir, "real", "airport")["code"].to_list())
    assert {"A000", "A001", "A002"} <= kept
