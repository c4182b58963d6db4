"""The report stage and ``synthdb report``: real data against itself scores 1 and is flagged as a copy; a database
synthdb did not make (each column sampled independently) is scored, and scores lower on trends than the real data.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.stages.report import build_report
from schemas.config import REPORT_THRESHOLDS, ReportConfig
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table

runner = CliRunner()

HEADLINE = list(REPORT_THRESHOLDS)
DDL = [
    (
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, segment VARCHAR(10) NOT NULL, income REAL NOT NULL, "
        "age INTEGER NOT NULL)"
    ),
    (
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
        "amount REAL NOT NULL, channel VARCHAR(10) NOT NULL)"
    ),
]


def _real_rows(n: int = 400, seed: int = 1) -> dict[str, dict[str, np.ndarray]]:
    """Customers whose segment drives income, age and how many orders they place; orders whose amount follows the
    customer's income and whose channel follows the amount: trends within and across the tables."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(np.array(["gold", "silver", "bronze"]), size=n, p=[0.2, 0.3, 0.5])
    gold, silver = segment == "gold", segment == "silver"
    income = np.select([gold, silver], [90_000.0, 55_000.0], 30_000.0) * rng.lognormal(0.0, 0.15, n)
    age = np.round(22 + income / 2_500 + rng.normal(0, 3, n)).astype(np.int64)
    kids = rng.poisson(np.select([gold, silver], [9.0, 4.0], 1.0))
    parent = np.repeat(np.arange(n), kids)
    amount = np.round(income[parent] / 500 * rng.lognormal(0.0, 0.2, parent.size), 2)
    channel = np.where(amount > np.median(amount), "web", "store")
    flip = rng.random(parent.size) < 0.1
    channel = np.where(flip, np.where(channel == "web", "store", "web"), channel)
    return {
        "customers": {
            "id": np.arange(1, n + 1),
            "segment": segment,
            "income": np.round(income, 2),
            "age": age,
        },
        "orders": {
            "id": np.arange(1, parent.size + 1),
            "customer_id": parent + 1,
            "amount": amount,
            "channel": channel,
        },
    }


def _write_sqlite(path: Path, rows: dict[str, dict[str, np.ndarray]]) -> str:
    with sqlite3.connect(path) as conn:
        for ddl in DDL:
            conn.execute(ddl)
        for table in ("customers", "orders"):
            cols = rows[table]
            names = list(cols)
            records = list(zip(*(cols[c].tolist() for c in names), strict=True))
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", records
            )
    return f"sqlite:///{path}"


def _independent_sampler(real_path: Path, out_path: Path, seed: int = 7) -> str:
    """A generator synthdb did not write: every column sampled on its own from the real values, keys kept valid
    (primary keys renumbered, foreign keys drawn uniformly among the synthetic parents)."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, np.ndarray]] = {}
    with sqlite3.connect(real_path) as conn:
        for table in ("customers", "orders"):
            cur = conn.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cur.description]
            data = np.array(cur.fetchall(), dtype=object)
            n = len(data)
            cols: dict[str, np.ndarray] = {}
            for i, name in enumerate(names):
                if name == "id":
                    cols[name] = np.arange(1, n + 1)
                elif name == "customer_id":
                    cols[name] = rng.integers(1, len(out["customers"]["id"]) + 1, size=n)
                else:
                    cols[name] = rng.choice(data[:, i], size=n)
            out[table] = cols
    return _write_sqlite(out_path, out)


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("report")
    real = _write_sqlite(folder / "real.sqlite", _real_rows())
    synth = _independent_sampler(folder / "real.sqlite", folder / "independent.sqlite")
    with sqlite3.connect(folder / "partial.sqlite") as conn:
        conn.execute(DDL[0])
    return {"real": real, "independent": synth, "partial": f"sqlite:///{folder / 'partial.sqlite'}"}


def _schema() -> DatabaseSchema:
    return DatabaseSchema(
        tables=[
            Table(
                name="customers",
                columns=[
                    Column(name="id", type="INTEGER", nullable=False, kind=Kind.ID),
                    Column(name="segment", type="VARCHAR(10)", kind=Kind.CATEGORICAL),
                    Column(name="income", type="DOUBLE PRECISION", kind=Kind.NUMERIC),
                    Column(name="age", type="BIGINT", kind=Kind.NUMERIC),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            ),
            Table(
                name="orders",
                columns=[
                    Column(name="id", type="INTEGER", nullable=False, kind=Kind.ID),
                    Column(name="customer_id", type="INTEGER", nullable=False, kind=Kind.ID),
                    Column(name="amount", type="DOUBLE PRECISION", kind=Kind.NUMERIC),
                    Column(name="channel", type="VARCHAR(10)", kind=Kind.CATEGORICAL),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[ForeignKey(columns=["customer_id"], ref_table="customers", ref_columns=["id"])],
            ),
        ]
    )


def _assert_shape(report: dict[str, Any]) -> None:
    assert report["version"] == 1
    assert {
        "generated_at",
        "headline",
        "holdout",
        "fidelity",
        "privacy",
        "utility",
        "samples",
        "notes",
        "seconds",
    } <= set(report)
    assert list(report["headline"]) == HEADLINE
    for name, item in report["headline"].items():
        assert set(item) == {
            "score",
            "threshold",
            "direction",
            "status",
            "table",
            "column",
            "ci",
            "warn_means",
            "reason",
        }, name
        assert item["warn_means"], name  # every score says what a value past its threshold means
        # an interval exactly for the privacy scores that have one, around the score
        if name in ("dcr_share", "mia_auc") and item["score"] is not None:
            assert item["ci"][0] <= item["score"] <= item["ci"][1], (name, item)
        else:
            assert item["ci"] is None, (name, item)
        assert item["status"] in ("pass", "warn", "n/a")
        assert (item["score"] is None) == (item["status"] == "n/a")
        # an n/a always says why, and only an n/a has a reason
        assert (item["reason"] is not None) == (item["score"] is None), (name, item)
        if item["score"] is not None and name != "utility_ratio":
            assert 0.0 <= item["score"] <= 1.0, (name, item)
    assert set(report["samples"]["tables"]) == {"customers", "orders"}


def test_real_data_against_itself_scores_one_and_privacy_flags_the_copy(tmp_path: Path) -> None:
    rows = _real_rows()
    real = {name: pa.table(cols) for name, cols in rows.items()}
    # The holdout: a tenth of the customers with all their orders, as the run's extraction holds them out.
    held_ids = np.arange(1, 401)[np.random.default_rng(3).random(400) < 0.1]
    held_c = pa.array(np.isin(real["customers"]["id"].to_numpy(), held_ids))
    held_o = pa.array(np.isin(real["orders"]["customer_id"].to_numpy(), held_ids))
    train = {
        "customers": real["customers"].filter(pa.compute.invert(held_c)),
        "orders": real["orders"].filter(pa.compute.invert(held_o)),
    }
    holdout = {"customers": real["customers"].filter(held_c), "orders": real["orders"].filter(held_o)}

    result = build_report(
        train,
        train,
        _schema(),
        tmp_path / "out",
        holdout=holdout,
        config=ReportConfig(target_column="orders.channel"),
    )

    report = json.loads(result.json_path.read_text())
    _assert_shape(report)
    h = report["headline"]
    for name in (
        "overall",
        "column_shapes",
        "column_pair_trends",
        "cardinality",
        "intertable_trends",
        "detection",
    ):
        assert h[name]["score"] == pytest.approx(1.0, abs=0.01), name
        assert h[name]["status"] == "pass"
    # A copy of the training data is a privacy failure, whatever its fidelity.
    assert h["exact_copies"]["score"] > 0.9 and h["exact_copies"]["status"] == "warn"
    assert h["mia_auc"]["score"] > 0.9 and h["mia_auc"]["status"] == "warn"
    # the holdout is a tenth of the customers: every training row is indexed, so the copier is still caught
    assert h["dcr_share"]["score"] >= 0.95 and h["dcr_share"]["status"] == "warn"
    assert h["mia_auc"]["ci"][0] > 0.8
    assert report["privacy"]["tables"]["orders"]["exact_copy_share"] == 1.0
    assert h["exact_copies"]["table"] in ("customers", "orders") and h["overall"]["table"] is None
    assert report["holdout"]["kind"] == "holdout"
    assert report["utility"]["target"] == "channel" and h["utility_ratio"]["status"] == "pass"
    assert set(result.warnings) == {"exact_copies", "mia_auc", "dcr_share"}
    html = result.html_path.read_text()
    assert html.count("Plotly.newPlot") >= 4  # distributions, correlations, children per parent, distances
    assert "<script src=" not in html  # self-contained: nothing to fetch
    assert "past the threshold: an attacker holding a real record" in html  # what a failing MIA AUC means
    assert "DeLong" in html and "indexed (training / holdout)" in html


def test_synthdb_report_scores_a_database_synthdb_did_not_make(
    databases: dict[str, str], tmp_path: Path
) -> None:
    res = runner.invoke(
        app,
        [
            "report",
            "--real",
            databases["real"],
            "--synth",
            databases["independent"],
            "-o",
            str(tmp_path / "ind"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "column_pair_trends" in res.stdout and "report.html" in res.stdout
    independent = json.loads((tmp_path / "ind" / "report.json").read_text())
    _assert_shape(independent)
    assert independent["holdout"]["kind"] == "pseudo"
    assert (tmp_path / "ind" / "report.html").stat().st_size > 1_000_000  # plotly.js is inline

    # The same command on the real data against itself, as a reference; --fail-on-warn: the copy is flagged.
    res = runner.invoke(
        app,
        [
            "report",
            "--real",
            databases["real"],
            "--synth",
            databases["real"],
            "-o",
            str(tmp_path / "self"),
            "--fail-on-warn",
        ],
    )
    assert res.exit_code == 1, res.output
    itself = json.loads((tmp_path / "self" / "report.json").read_text())
    _assert_shape(itself)
    hi, hs = independent["headline"], itself["headline"]
    assert hs["overall"]["score"] == pytest.approx(1.0, abs=0.01)
    assert hs["exact_copies"]["status"] == "warn"
    # Columns sampled one by one keep their shapes but lose every trend, within and across tables.
    assert hi["column_shapes"]["score"] > 0.8
    assert hi["column_pair_trends"]["score"] < hs["column_pair_trends"]["score"] - 0.1
    assert hi["intertable_trends"]["score"] < hs["intertable_trends"]["score"] - 0.1
    assert hi["cardinality"]["score"] < hs["cardinality"]["score"] - 0.1
    assert hi["overall"]["score"] < hs["overall"]["score"]


def test_synthdb_report_names_the_missing_tables(databases: dict[str, str], tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["report", "--real", databases["real"], "--synth", databases["partial"], "-o", str(tmp_path / "out")],
    )
    assert res.exit_code == 2, res.output
    assert "lacks table(s) orders" in res.output
    assert not (tmp_path / "out" / "report.json").exists()


def test_report_without_holdout_and_with_an_empty_synthetic_table(tmp_path: Path) -> None:
    real = {name: pa.table(cols) for name, cols in _real_rows(60).items()}
    synth = {"customers": real["customers"], "orders": real["orders"].slice(0, 0)}

    result = build_report(real, synth, _schema(), tmp_path / "out")

    report = json.loads(result.json_path.read_text())
    _assert_shape(report)
    assert report["privacy"] is None and report["holdout"]["kind"] == "none"
    assert {report["headline"][n]["status"] for n in ("dcr_share", "mia_auc", "exact_copies")} == {"n/a"}
    assert report["headline"]["cardinality"]["status"] == "warn"  # every customer lost its orders
    assert any("orders" in note for note in report["notes"])
    assert "Privacy was not measured" in result.html_path.read_text()


def test_read_tables_reads_every_part_and_bounds_the_rows(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from pipelines.stages.report import read_tables

    folder = tmp_path / "t"
    folder.mkdir()
    for i in range(2):
        pq.write_table(pa.table({"x": np.arange(i * 1000, (i + 1) * 1000)}), folder / f"part-{i:07d}.parquet")
    pq.write_table(
        pa.table({"x": [-1]}), folder / ".data.tmp-123.parquet"
    )  # an interrupted writer's leftover

    whole = read_tables({"t": folder, "absent": tmp_path / "absent"})
    sampled = read_tables({"t": folder}, max_rows=500)

    assert set(whole) == {"t"} and sorted(whole["t"]["x"].to_pylist()) == list(range(2000))
    assert 350 <= sampled["t"].num_rows <= 650
    assert sampled["t"]["x"].to_numpy().max() >= 1000  # drawn from both parts
