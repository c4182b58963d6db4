"""Per-table scales and subsets (``generation.tables``): row counts follow, and every key stays valid.

A subset of a root table (a share or a row cap) is referentially closed by construction: its children are
generated under its generated rows, and other tables' foreign keys into it are wired to those rows only.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from connectors.demo import build_demo
from connectors.inspect import inspect_source
from connectors.source import open_source
from pipelines.run import check_scale
from pipelines.stages.extract import run_extract, split_holdout
from pipelines.stages.generate import run_generate
from pipelines.workspace import Workspace
from pipelines.stages.train import run_train
from schemas.config import load_config
from schemas.errors import ConfigError
from schemas.plan import build_plan

pytestmark = pytest.mark.usefixtures("ray_session")


def _synth(run_dir: Path, table: str) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in Workspace(run_dir).parts(table)])


def test_subset_of_a_root_and_scale_of_a_child_keep_every_key_valid(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite"
    build_demo(db, fraction=0.05, seed=3)
    url = f"sqlite:///{db}"
    config = load_config(
        None,
        overrides={
            "source.url": url,
            "target.url": f"sqlite:///{tmp_path}/t.sqlite",
            "runs_dir": str(tmp_path),
            "generation.tables": {"planes": {"share": 0.5}, "airlines": {"rows": 5}, "flights": {"scale": 2.0}},
        },
        environ={},
    )
    run_dir = tmp_path / "run"
    source = open_source(url)
    try:
        schema = inspect_source(source).schema
        plan = build_plan(schema)
        check_scale(schema, plan, config.generation)
        real = run_extract(source, schema, run_dir, batch_rows=config.source.batch_rows)
    finally:
        source.close()
    split_holdout(run_dir, schema, plan, share=config.training.holdout, seed=0)
    run_train(run_dir, schema, plan, config)
    rows = run_generate(run_dir, schema, plan, config)
    assert rows["planes"] == round(real["planes"] * 0.5)
    assert rows["airlines"] == 5
    assert rows["airports"] == real["airports"] and abs(rows["weather"] / real["weather"] - 1) < 0.02
    assert 1.9 <= rows["flights"] / real["flights"] <= 2.1
    flights = _synth(run_dir, "flights")
    for col, parent, ref in [("tailnum", "planes", "tailnum"), ("carrier", "airlines", "carrier")]:
        keys = _synth(run_dir, parent)[ref]
        used = flights[col].drop_nulls()
        assert used.is_in(keys).all(), f"flights.{col} points outside the {parent} subset"
    assert flights["carrier"].drop_nulls().n_unique() <= 5


def test_a_subset_of_a_child_and_an_unknown_table_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite"
    build_demo(db, fraction=0.01, seed=3)
    source = open_source(f"sqlite:///{db}")
    try:
        schema = inspect_source(source).schema
    finally:
        source.close()
    plan = build_plan(schema)
    config = load_config(
        None, overrides={"generation.tables": {"weather": {"rows": 10}, "wether": {"scale": 2}}}, environ={}
    )
    with pytest.raises(ConfigError) as info:
        check_scale(schema, plan, config.generation)
    message = str(info.value)
    assert "'weather' follows its parent 'airports': subset that root instead" in message
    assert "generation.tables: unknown table 'wether'" in message
    tiny = load_config(None, overrides={"generation.tables": {"airlines": {"share": 0.01}}}, environ={})
    (line,) = check_scale(schema, plan, tiny.generation)  # rounded up to one row, and said
    assert line.startswith("table 'airlines' (16 source rows) would be empty at scale 0.01: it gets one row")
