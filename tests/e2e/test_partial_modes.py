"""Kept columns and closed subsets of real tables, on the demo's 5% sample.

One run combines them: ``airports`` is kept whole, ``airlines`` is a closed subset of 5 real rows, ``planes`` keeps
its real ``year`` and ``manufacturer`` (the rest of each plane is synthesized, conditioned on them) and ``flights``
keeps its real ``dep_delay``. Every key is valid; the kept columns hold the real values (exactly, for a table
generated at its real size); the report lists what is real and leaves it out of the scores it does not apply to.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from connectors.demo import build_demo
from pipelines.cli import app
from pipelines.run import run_pipeline
from schemas.config import load_config

pytestmark = pytest.mark.usefixtures("ray_session")

KEPT_COLUMNS = {"planes.year": {"mode": "keep"}, "planes.manufacturer": {"mode": "keep"}, "flights.dep_delay": {"mode": "keep"}}


def _values(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as con:
        return con.execute(sql).fetchall()


def _orphans(db: Path, child: str, col: str, parent: str, ref: str) -> int:
    sql = (
        f'SELECT count(*) FROM "{child}" c LEFT JOIN "{parent}" p ON c."{col}" = p."{ref}" '
        f'WHERE c."{col}" IS NOT NULL AND p."{ref}" IS NULL'
    )
    return int(_values(db, sql)[0][0])


def test_kept_columns_and_a_closed_subset_on_the_demo(tmp_path: Path) -> None:
    src, dst = tmp_path / "demo.sqlite", tmp_path / "synthetic.sqlite"
    build_demo(src, fraction=0.05, seed=3)
    config = load_config(
        None,
        overrides={
            "source.url": f"sqlite:///{src}",
            "target.url": f"sqlite:///{dst}",
            "runs_dir": str(tmp_path / "runs"),
            "tables.mode": {"airports": "keep", "airlines": "subset"},
            "tables.columns": KEPT_COLUMNS,
            "generation.tables": {"airlines": {"rows": 5}},
        },
        environ={},
    )
    result = run_pipeline(config)
    assert result.validation_success

    # the subset: 5 real airlines, and every flight's carrier among them
    real_airlines = set(_values(src, "SELECT * FROM airlines"))
    kept_airlines = set(_values(dst, "SELECT * FROM airlines"))
    assert len(kept_airlines) == 5 and kept_airlines <= real_airlines
    assert set(_values(dst, "SELECT * FROM airports")) == set(_values(src, "SELECT * FROM airports"))
    for child, col, parent, ref in [
        ("flights", "carrier", "airlines", "carrier"),
        ("flights", "origin", "airports", "faa"),
        ("flights", "dest", "airports", "faa"),
        ("flights", "tailnum", "planes", "tailnum"),
        ("weather", "origin", "airports", "faa"),
    ]:
        assert _orphans(dst, child, col, parent, ref) == 0, f"{child}.{col} -> {parent}"
    assert _values(dst, "SELECT count(*) FROM flights")[0][0] > 1000

    # kept columns: planes is generated at its real size, so its kept columns are the real ones exactly
    for col in ("year", "manufacturer"):
        sql = f'SELECT "{col}" FROM planes'
        assert Counter(_values(dst, sql)) == Counter(_values(src, sql)), f"planes.{col} is kept but changed"
    assert _values(dst, "SELECT * FROM planes") != _values(src, "SELECT * FROM planes")
    # flights follows its synthesized parents, so its size differs a little: each kept value is a real one
    real_delays = Counter(v for (v,) in _values(src, "SELECT dep_delay FROM flights"))
    synth_delays = Counter(v for (v,) in _values(dst, "SELECT dep_delay FROM flights"))
    assert set(synth_delays) <= set(real_delays)
    assert sum(synth_delays.values()) == pytest.approx(sum(real_delays.values()), rel=0.03)

    report = json.loads((result.run_dir / "report" / "report.json").read_text())
    assert report["kept"] == ["airlines", "airports"]
    assert report["kept_columns"] == {"flights": ["dep_delay"], "planes": ["year", "manufacturer"]}
    shapes = {(c["table"], c["column"]) for c in report["fidelity"]["columns"]}
    assert ("planes", "year") not in shapes and ("planes", "engine") in shapes
    assert any("kept columns" in n and "planes.year" in n for n in report["notes"])

    # synthdb sample: a kept column can be fixed too; the rows then hold that real value
    out = tmp_path / "boeing.parquet"
    res = CliRunner().invoke(
        app,
        ["sample", "--run", str(result.run_dir), "--table", "planes", "-n", "50", "--where", "manufacturer=BOEING",
         "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    planes = pq.read_table(out)
    assert planes.num_rows == 50 and set(planes.column("manufacturer").to_pylist()) == {"BOEING"}
    assert {"year", "engine"} <= set(planes.column_names)


def _run(tmp_path: Path, src: Path, config_text: str) -> tuple[int, str]:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config_text)
    res = CliRunner().invoke(
        app,
        ["run", "--source", f"sqlite:///{src}", "--target", f"sqlite:///{tmp_path}/t.sqlite", "--config", str(cfg),
         "--runs-dir", str(tmp_path / "runs")],
    )
    return res.exit_code, " ".join(res.output.split())


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        (
            "tables:\n  columns:\n    flights.carrier: {mode: keep}\n",
            "tables.columns.flights.carrier: 'carrier' is a key column",
        ),
        (
            "tables:\n  mode: {airlines: subset}\n",
            "none has a share or rows to start from",
        ),
        (
            "tables:\n  mode: {airlines: subset, planes: subset}\ngeneration:\n  tables: {airlines: {rows: 3}}\n",
            "'planes' is in mode subset, but no seed",
        ),
    ],
    ids=["key-column-kept", "subset-without-seed", "subset-nothing-selects"],
)
def test_kept_column_and_subset_mistakes_are_refused_with_exit_2(
    tmp_path: Path, config_text: str, message: str
) -> None:
    src = tmp_path / "demo.sqlite"
    build_demo(src, fraction=0.01, seed=3)
    code, out = _run(tmp_path, src, config_text)
    assert code == 2, out
    assert message in out, out
