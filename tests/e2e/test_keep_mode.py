"""Partial synthesis: ``mode: keep`` copies public lookup tables as they are; the rest is synthesized around them.

On the demo's 5% sample, ``airlines`` and ``airports`` are kept: the target holds their real rows exactly, flights
and weather are synthesized, conditioned on and wired to the real airports, every key valid, and the report says
which tables are real and scores only the synthesized ones.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.demo import build_demo
from pipelines.cli import app
from pipelines.run import run_pipeline
from schemas.config import load_config

pytestmark = pytest.mark.usefixtures("ray_session")


def _rows(db: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as con:
        return sorted(con.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)


def _orphans(db: Path, child: str, col: str, parent: str, ref: str) -> int:
    with sqlite3.connect(db) as con:
        sql = (
            f'SELECT count(*) FROM "{child}" c LEFT JOIN "{parent}" p ON c."{col}" = p."{ref}" '
            f'WHERE c."{col}" IS NOT NULL AND p."{ref}" IS NULL'
        )
        return int(con.execute(sql).fetchone()[0])


def test_kept_lookup_tables_are_copied_and_the_rest_synthesized_around_them(tmp_path: Path) -> None:
    src, dst = tmp_path / "demo.sqlite", tmp_path / "synthetic.sqlite"
    build_demo(src, fraction=0.05, seed=3)
    config = load_config(
        None,
        overrides={
            "source.url": f"sqlite:///{src}",
            "target.url": f"sqlite:///{dst}",
            "runs_dir": str(tmp_path / "runs"),
            "tables.mode": {"airlines": "keep", "airports": "keep"},
        },
        environ={},
    )
    result = run_pipeline(config)
    assert result.validation_success
    for table in ("airlines", "airports"):
        assert _rows(dst, table) == _rows(src, table), f"{table} is kept but its rows changed"
    assert _rows(dst, "flights") != _rows(src, "flights")
    for child, col, parent, ref in [
        ("flights", "carrier", "airlines", "carrier"),
        ("flights", "origin", "airports", "faa"),
        ("flights", "dest", "airports", "faa"),
        ("weather", "origin", "airports", "faa"),
        ("flights", "tailnum", "planes", "tailnum"),
    ]:
        assert _orphans(dst, child, col, parent, ref) == 0, f"{child}.{col} -> {parent}"
    report = json.loads((result.run_dir / "report" / "report.json").read_text())
    assert report["kept"] == ["airlines", "airports"]
    assert not any(c["table"] in ("airlines", "airports") for c in report["fidelity"]["columns"])
    assert any("'airlines' is kept" in n for n in report["notes"])
    assert report["fidelity"]["intertable"], "flights -> airports is scored: flights are synthesized"


def test_a_kept_table_that_references_a_synthesized_one_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "demo.sqlite"
    build_demo(src, fraction=0.01, seed=3)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("tables:\n  mode:\n    weather: keep\n")
    res = CliRunner().invoke(
        app,
        ["run", "--source", f"sqlite:///{src}", "--target", f"sqlite:///{tmp_path}/t.sqlite", "--config", str(cfg),
         "--runs-dir", str(tmp_path / "runs")],
    )
    out = " ".join(res.output.split())
    assert res.exit_code == 2, out
    assert "table 'weather' is kept but its foreign key" in out and "Keep 'airports' too" in out


def test_a_kept_table_with_several_foreign_keys_keeps_them_and_its_synthesized_child_is_wired(tmp_path: Path) -> None:
    src, dst = tmp_path / "s.sqlite", tmp_path / "t.sqlite"
    with sqlite3.connect(src) as con:
        con.executescript(
            """
            CREATE TABLE region (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE kind (id INTEGER PRIMARY KEY, label TEXT NOT NULL);
            CREATE TABLE store (id INTEGER PRIMARY KEY, region_id INTEGER NOT NULL REFERENCES region(id),
                                kind_id INTEGER NOT NULL REFERENCES kind(id), size INTEGER);
            CREATE TABLE sale (id INTEGER PRIMARY KEY, store_id INTEGER NOT NULL REFERENCES store(id),
                               kind_id INTEGER REFERENCES kind(id), amount REAL);
            """
        )
        con.executemany("INSERT INTO region VALUES (?, ?)", [(i, f"r{i}") for i in range(1, 6)])
        con.executemany("INSERT INTO kind VALUES (?, ?)", [(i, f"k{i}") for i in range(1, 4)])
        con.executemany("INSERT INTO store VALUES (?, ?, ?, ?)", [(i, i % 5 + 1, i % 3 + 1, i * 10) for i in range(1, 41)])
        con.executemany(
            "INSERT INTO sale VALUES (?, ?, ?, ?)", [(i, i % 40 + 1, i % 3 + 1, (i % 17) * 1.5) for i in range(1, 801)]
        )
    config = load_config(
        None,
        overrides={
            "source.url": f"sqlite:///{src}",
            "target.url": f"sqlite:///{dst}",
            "runs_dir": str(tmp_path / "runs"),
            "tables.mode": {"region": "keep", "kind": "keep", "store": "keep"},
            "report.enabled": False,
        },
        environ={},
    )
    result = run_pipeline(config)
    assert result.validation_success
    for table in ("region", "kind", "store"):
        assert _rows(dst, table) == _rows(src, table), f"{table} is kept but its rows changed"
    assert _orphans(dst, "sale", "store_id", "store", "id") == 0
    assert _orphans(dst, "sale", "kind_id", "kind", "id") == 0
