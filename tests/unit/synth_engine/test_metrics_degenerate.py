"""Degenerate data never breaks the report: constant, single-valued and all-NULL columns, tables of 1 and 3 rows,
an empty synthetic table and a metric that raises all end as scores or as ``n/a`` with a reason, never as an error.

Also the per-column copy score: a unique licence plate learned as a category gives back real plates in rows that
are otherwise new; the whole-row exact-copy score cannot see it, the column score must.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from pipelines.stages.report import build_report
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from synth_engine.metrics import evaluate_fidelity, evaluate_privacy, utility
from synth_engine.metrics._encode import informative_columns
from synth_engine.metrics.privacy import column_copies


def _fleet_schema() -> DatabaseSchema:
    return DatabaseSchema(
        tables=[
            Table(
                name="cars",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="plate", type="VARCHAR(8)", kind=Kind.CATEGORICAL),  # learned as categories
                    Column(name="colour", type="VARCHAR(8)", kind=Kind.CATEGORICAL),
                    Column(name="km", type="DOUBLE", kind=Kind.NUMERIC),
                    Column(name="wheels", type="INTEGER", kind=Kind.NUMERIC),  # constant
                    Column(name="fleet", type="VARCHAR(8)", kind=Kind.CATEGORICAL),  # single-valued
                    Column(name="recalled", type="DOUBLE", kind=Kind.NUMERIC),  # all NULL
                    Column(
                        name="note", type="VARCHAR(8)", kind=Kind.CATEGORICAL
                    ),  # all NULL, Arrow type null
                ],
                primary_key=PrimaryKey(columns=["id"]),
            ),
            Table(
                name="trips",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="car_id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="minutes", type="DOUBLE", kind=Kind.NUMERIC),
                    Column(name="paid", type="BOOLEAN", kind=Kind.BOOLEAN),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[ForeignKey(columns=["car_id"], ref_table="cars", ref_columns=["id"])],
            ),
        ]
    )


def _plates(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    out: set[str] = set()
    while len(out) < n:
        a, b = letters[rng.integers(0, 26, 2)]
        out.add(f"{a}{b}-{rng.integers(0, 10_000):04d}")
    return sorted(out)


def _fleet(n: int, seed: int, plates: list[str] | None = None, id_offset: int = 0) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    cars = pa.table(
        {
            "id": pa.array(np.arange(n) + id_offset, pa.int64()),
            "plate": pa.array(plates if plates is not None else _plates(rng, n)),
            "colour": pa.array(rng.choice(["red", "blue", "grey"], size=n)),
            "km": pa.array(rng.gamma(2.0, 20_000.0, size=n)),
            "wheels": pa.array(np.full(n, 4, dtype=np.int64)),
            "fleet": pa.array(["north"] * n),
            "recalled": pa.array([None] * n, pa.float64()),
            "note": pa.nulls(n),
        }
    )
    kids = np.repeat(np.arange(n), rng.poisson(2.0, size=n))
    trips = pa.table(
        {
            "id": pa.array(np.arange(kids.size) + id_offset, pa.int64()),
            "car_id": pa.array(kids + id_offset, pa.int64()),
            "minutes": pa.array(rng.exponential(30.0, size=kids.size)),
            "paid": pa.array(rng.random(kids.size) < 0.8),
        }
    )
    return {"cars": cars, "trips": trips}


@pytest.fixture(scope="module")
def fleet() -> dict[str, dict[str, pa.Table]]:
    train = _fleet(400, seed=1)
    holdout = _fleet(60, seed=2, id_offset=10_000)
    # The bug: every synthetic plate is a real one (learned as a category), every other value is fresh.
    synth = _fleet(400, seed=3, plates=train["cars"].column("plate").to_pylist()[::-1])
    return {"train": train, "holdout": holdout, "synth": synth}


def test_informative_columns_drops_constant_and_all_nan_columns() -> None:
    x = np.array(
        [[3.0, np.nan, 1.0, 1.0, 5.0], [3.0, np.nan, np.nan, 2.0, 5.0], [3.0, np.nan, 1.0, 1.0, 5.0]]
    )
    assert informative_columns(x).tolist() == [False, False, True, True, False]
    assert informative_columns(np.zeros((0, 2))).tolist() == [False, False]


def test_detection_is_computed_beside_constant_single_valued_and_all_null_columns(
    fleet: dict[str, dict[str, pa.Table]],
) -> None:
    # An all-NaN feature made scikit-learn's histogram binning raise "window shape cannot be larger than input
    # array shape", which failed the whole report after the target had been swapped in.
    res = evaluate_fidelity(fleet["train"], fleet["synth"], _fleet_schema(), seed=0)
    by_table = {d.table: d for d in res.detections}
    assert "cars" in by_table and "trips" in by_table
    assert 0.0 <= by_table["cars"].auc <= 1.0
    assert not [f for f in res.not_computed if f.metric == "detection"]
    shapes = {c.column: c for c in res.columns if c.table == "cars"}
    assert shapes["wheels"].score == 1.0 and shapes["fleet"].score == 1.0  # constant on both sides: identical
    assert (
        shapes["recalled"].score is None and shapes["recalled"].null_similarity == 1.0
    )  # nothing to compare
    json.dumps(res.to_dict(), allow_nan=False)


def test_utility_fits_beside_an_all_null_feature(fleet: dict[str, dict[str, pa.Table]]) -> None:
    table = _fleet_schema().table("cars")
    res = utility(
        fleet["train"]["cars"], fleet["holdout"]["cars"], fleet["synth"]["cars"], "colour", table=table
    )
    assert res.task == "classification" and 0.0 <= res.synthetic_score <= 1.0


def test_copied_plates_are_caught_per_column_while_whole_rows_look_new(
    fleet: dict[str, dict[str, pa.Table]],
) -> None:
    res = evaluate_privacy(fleet["train"], fleet["holdout"], fleet["synth"], _fleet_schema(), seed=0)
    cars = res.tables["cars"]
    assert cars.exact_copy_share is not None and cars.exact_copy_share < 0.01  # the whole-row score: "pass"
    by_column = {c.column: c for c in cars.column_copies}
    plate = by_column["plate"]
    assert plate.copy_share == 1.0 and plate.role == "learned" and not plate.by_construction
    assert plate.holdout_share is not None and plate.holdout_share < 0.1
    assert plate.chance_share is not None and plate.chance_share < 1e-3  # 400 of 26*26*10**4 formats
    assert plate.excess > 0.9
    # Integer keys 0..n-1 equal the real ones by construction: listed, not a leak.
    assert by_column["id"].by_construction and by_column["id"].copy_share == 1.0
    assert res.worst_copy_column == "cars.plate" and res.max_column_copy_excess == pytest.approx(plate.excess)


def test_random_codes_of_a_small_format_are_no_leak() -> None:
    # Three-letter codes: 1,500 real of 17,576; fresh random codes hit real ones about 8.5% of the time by
    # chance. The chance baseline keeps that from reading as a copy.
    rng = np.random.default_rng(5)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    space = np.array(
        ["".join(t) for t in np.stack(np.meshgrid(letters, letters, letters), -1).reshape(-1, 3)]
    )
    real = rng.choice(space, size=1500, replace=False)
    fresh = rng.choice(space, size=1500, replace=False)
    table = Table(
        name="airports",
        columns=[Column(name="faa", type="VARCHAR(3)", nullable=False, kind=Kind.CATEGORICAL)],
        primary_key=PrimaryKey(columns=["faa"]),
    )
    (scored,) = column_copies(table, pa.table({"faa": real}), pa.table({"faa": fresh}))
    assert scored.role == "generated key" and not scored.by_construction  # a text key is scored
    assert scored.copy_share == pytest.approx(1500 / 17576, abs=0.03)
    assert scored.chance_share == pytest.approx(1500 / 17576, rel=1e-6)
    assert scored.excess < 0.03
    (copied,) = column_copies(table, pa.table({"faa": real}), pa.table({"faa": real}))
    assert copied.excess > 0.9


def test_report_warns_on_copied_plates_and_passes_exact_copies(
    fleet: dict[str, dict[str, pa.Table]], tmp_path: Path
) -> None:
    res = build_report(fleet["train"], fleet["synth"], _fleet_schema(), tmp_path, holdout=fleet["holdout"])
    report = json.loads(res.json_path.read_text())
    assert report["headline"]["exact_copies"]["status"] == "pass"
    copies = report["headline"]["column_copies"]
    assert copies["status"] == "warn" and copies["table"] == "cars" and copies["column"] == "plate"
    assert "column_copies" in res.warnings
    assert "cars.plate" in res.html_path.read_text()


def _tiny_schema() -> DatabaseSchema:
    def table(name: str) -> Table:
        return Table(
            name=name,
            columns=[
                Column(name="id", type="BIGINT", nullable=False, kind=Kind.ID),
                Column(name="x", type="DOUBLE", kind=Kind.NUMERIC),
                Column(name="c", type="VARCHAR(4)", kind=Kind.CATEGORICAL),
            ],
            primary_key=PrimaryKey(columns=["id"]),
        )

    child = table("child")
    child.columns.append(Column(name="one_id", type="BIGINT", kind=Kind.ID))
    child.foreign_keys = [ForeignKey(columns=["one_id"], ref_table="one", ref_columns=["id"])]
    return DatabaseSchema(tables=[table("one"), table("three"), table("gone"), child])


def _tiny(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {"id": pa.array(np.arange(n), pa.int64()), "x": rng.random(n), "c": rng.choice(["a", "b"], size=n)}
    )


def _tiny_db(seed: int, gone_rows: int) -> dict[str, pa.Table]:
    child = _tiny(3, seed).append_column("one_id", pa.array([0, 0, None], pa.int64()))
    return {"one": _tiny(1, seed), "three": _tiny(3, seed), "gone": _tiny(gone_rows, seed), "child": child}


def test_tables_of_one_and_three_rows_and_an_empty_synthetic_table(tmp_path: Path) -> None:
    real, holdout = _tiny_db(1, 50), _tiny_db(2, 5)
    synth = _tiny_db(3, 0)  # "gone" has no synthetic row
    res = build_report(real, synth, _tiny_schema(), tmp_path, holdout=holdout)
    report = json.loads(res.json_path.read_text())  # strict JSON: no NaN
    head = report["headline"]
    assert head["detection"]["status"] == "n/a"
    assert "30 needed" in head["detection"]["reason"]
    for item in head.values():
        assert (item["score"] is None) == (item["reason"] is not None)
    scopes = {(f["metric"], f["scope"]) for f in report["not_computed"]}
    assert {("detection", "one"), ("detection", "three"), ("detection", "gone")} <= scopes
    shapes = {(c["table"], c["column"]): c for c in report["fidelity"]["columns"]}
    assert shapes[("gone", "x")]["score"] is None  # no synthetic value to compare
    page = res.html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "could not be rendered" not in page  # the full page
    assert not [n for n in report["notes"] if n.startswith("html:")]  # every plot drawn


def test_a_metric_that_raises_is_na_with_its_reason_and_costs_only_itself(
    fleet: dict[str, dict[str, pa.Table]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synth_engine.metrics import _stats, fidelity

    real_ks = _stats.ks_complement

    def ks_failing_on_km(real: Any, synth: Any) -> float:
        if (real[~np.isnan(real)] > 1_000).any():  # only cars.km has values this large
            raise FloatingPointError("injected fault in KSComplement")
        return real_ks(real, synth)

    def detection_raises(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("window shape cannot be larger than input array shape")

    monkeypatch.setattr(fidelity._stats, "ks_complement", ks_failing_on_km)
    monkeypatch.setattr(fidelity, "_detection", detection_raises)
    res = build_report(fleet["train"], fleet["synth"], _fleet_schema(), tmp_path, holdout=fleet["holdout"])
    report = json.loads(res.json_path.read_text())
    failures = {(f["metric"], f["scope"]): f["reason"] for f in report["not_computed"]}
    assert failures[("column_shape", "cars.km")] == "FloatingPointError: injected fault in KSComplement"
    assert failures[("detection", "cars")].startswith("ValueError: window shape")
    head = report["headline"]
    assert head["detection"]["status"] == "n/a" and "window shape" in head["detection"]["reason"]
    assert head["column_shapes"]["score"] is not None  # every other column still scored
    assert head["column_copies"]["status"] == "warn"
    assert "injected fault in KSComplement" in res.html_path.read_text()


def test_a_whole_category_that_raises_is_na_and_the_report_is_still_written(
    fleet: dict[str, dict[str, pa.Table]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines._internal import report_html
    from synth_engine import metrics

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("injected: out of memory")

    monkeypatch.setattr(metrics, "evaluate_fidelity", boom)
    monkeypatch.setattr(report_html, "render_html", boom)
    res = build_report(fleet["train"], fleet["synth"], _fleet_schema(), tmp_path, holdout=fleet["holdout"])
    report = json.loads(res.json_path.read_text())
    assert report["headline"]["overall"]["status"] == "n/a"
    assert "injected: out of memory" in report["headline"]["overall"]["reason"]
    assert report["headline"]["column_copies"]["status"] == "warn"  # privacy did not depend on fidelity
    assert {f["metric"] for f in report["not_computed"]} >= {"fidelity", "html"}
    assert "could not be rendered" in res.html_path.read_text()
