"""Privacy metrics: a copying generator is flagged, an honest one (an independent draw) is not."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from synth_engine.metrics import MetricsError, evaluate_privacy


def _schema() -> DatabaseSchema:
    return DatabaseSchema(
        tables=[
            Table(
                name="patients",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="name", type="VARCHAR(40)", kind=Kind.PERSON_NAME),
                    Column(name="age", type="INTEGER", kind=Kind.NUMERIC),
                    Column(name="weight", type="DOUBLE", kind=Kind.NUMERIC),
                    Column(name="admitted", type="TIMESTAMP", kind=Kind.DATETIME),
                    Column(name="ward", type="VARCHAR(10)", kind=Kind.CATEGORICAL),
                    Column(name="smoker", type="BOOLEAN", kind=Kind.BOOLEAN),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            ),
            Table(
                name="visits",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="patient_id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="kind", type="VARCHAR(10)", kind=Kind.CATEGORICAL),
                    Column(name="urgent", type="BOOLEAN", kind=Kind.BOOLEAN),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[ForeignKey(columns=["patient_id"], ref_table="patients", ref_columns=["id"])],
            ),
        ]
    )


def make_db(n: int, seed: int, id_offset: int = 0) -> dict[str, pa.Table]:
    """Patients with continuous values (rows almost never repeat) and visits with two categories (rows repeat
    a lot, so distances tie)."""
    rng = np.random.default_rng(seed)
    ward_idx = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    age = rng.normal(45 + 5 * ward_idx, 15).clip(0, 100).round()
    weight = rng.normal(60 + 0.3 * age, 12)
    weight[rng.random(n) < 0.03] = np.nan
    admitted = np.datetime64("2021-01-01T00:00:00") + (rng.random(n) * 3e7).astype("timedelta64[s]")
    patients = pa.table(
        {
            "id": pa.array(np.arange(n) + id_offset, pa.int64()),
            "name": pa.array([f"Person {seed}-{i}" for i in range(n)]),
            "age": pa.array(age.astype(np.int64)),
            "weight": pa.array(weight, from_pandas=True),
            "admitted": pa.array(admitted.astype("datetime64[us]")),
            "ward": pa.array(np.array(["A", "B", "C", "D"])[ward_idx]),
            "smoker": pa.array(rng.random(n) < 0.2),
        }
    )
    counts = rng.poisson(1.5, size=n)
    parent = np.repeat(np.arange(n), counts)
    visits = pa.table(
        {
            "id": pa.array(np.arange(parent.size) + id_offset, pa.int64()),
            "patient_id": pa.array(parent + id_offset, pa.int64()),
            "kind": pa.array(np.array(["checkup", "surgery", "lab"])[rng.choice(3, size=parent.size)]),
            "urgent": pa.array(rng.random(parent.size) < 0.3),
        }
    )
    return {"patients": patients, "visits": visits}


@pytest.fixture(scope="module")
def train() -> dict[str, pa.Table]:
    return make_db(2000, seed=1)


@pytest.fixture(scope="module")
def holdout() -> dict[str, pa.Table]:
    return make_db(2000, seed=2, id_offset=100_000)


def test_copying_the_training_data_is_flagged(
    train: dict[str, pa.Table], holdout: dict[str, pa.Table]
) -> None:
    res = evaluate_privacy(train, holdout, train, _schema(), sample_rows=2_000)
    p = res.tables["patients"]
    assert p.exact_copy_share == 1.0
    assert p.holdout_copy_share < 0.01
    assert p.dcr_closer_to_train_share is not None and p.dcr_closer_to_train_share > 0.95
    assert p.dcr_synthetic["p5"] == 0.0 and p.dcr_holdout["p5"] > 0.0
    assert p.mia_auc is not None and p.mia_auc > 0.95
    # equal-sized training and holdout samples, bounded and stated
    assert p.dcr_sample_rows == 2000 and p.mia_candidates == 4000 and p.copy_synthetic_rows == 2000
    assert p.dcr_train_coverage == 1.0
    # keys and PII are not compared: they are generated, so a copy is a copy whatever they hold
    assert p.copy_columns == ["age", "weight", "admitted", "ward", "smoker"]
    assert res.max_exact_copy_share == 1.0
    json.dumps(res.to_dict(), allow_nan=False)


def test_a_small_holdout_dilutes_the_dcr_share_as_stated(holdout: dict[str, pa.Table]) -> None:
    # Training 4x the holdout: the training sample holds a quarter of the training rows, so a pure copier is seen
    # closer to it for about 1/4 + 3/4 * 1/2 = 0.625 of its rows; the result says so through dcr_train_coverage.
    big = make_db(8000, seed=5)
    res = evaluate_privacy(big, holdout, big, _schema(), sample_rows=20_000)
    p = res.tables["patients"]
    assert p.dcr_train_coverage == pytest.approx(0.25)
    expected = p.dcr_train_coverage + (1 - p.dcr_train_coverage) / 2
    assert p.dcr_closer_to_train_share == pytest.approx(expected, abs=0.05)
    assert p.exact_copy_share == 1.0  # exact copies are looked up among all training rows


def test_fresh_keys_and_fakes_do_not_hide_a_copy(
    train: dict[str, pa.Table], holdout: dict[str, pa.Table]
) -> None:
    copied = train["patients"]
    copied = copied.set_column(0, "id", pa.array(np.arange(copied.num_rows) + 7_000_000, pa.int64()))
    copied = copied.set_column(1, "name", pa.array(["Fake Name"] * copied.num_rows))
    res = evaluate_privacy(train, holdout, {"patients": copied}, _schema(), sample_rows=2_000)
    assert res.tables["patients"].exact_copy_share == 1.0
    assert "visits" not in res.tables
    assert any("'visits'" in n and "synthetic" in n for n in res.notes)


def test_an_independent_draw_looks_like_the_holdout(
    train: dict[str, pa.Table], holdout: dict[str, pa.Table]
) -> None:
    synth = make_db(2000, seed=3, id_offset=500_000)
    res = evaluate_privacy(train, holdout, synth, _schema(), sample_rows=2_000)
    for name in ("patients", "visits"):
        t = res.tables[name]
        assert t.dcr_closer_to_train_share == pytest.approx(0.5, abs=0.1), name
        assert t.mia_auc == pytest.approx(0.5, abs=0.1), name
        # the copy share matches the holdout's baseline (near 0 for patients, large for the few visit types)
        assert t.exact_copy_share == pytest.approx(t.holdout_copy_share, abs=0.05), name
    assert res.tables["patients"].exact_copy_share < 0.01
    assert (
        res.tables["visits"].holdout_copy_share > 0.9
    )  # 6 possible rows: every holdout row is "in" training
    p = res.tables["patients"]
    assert p.dcr_synthetic["p5"] == pytest.approx(p.dcr_holdout["p5"], rel=0.5)


def test_partial_copying_moves_the_measures_in_between(
    train: dict[str, pa.Table], holdout: dict[str, pa.Table]
) -> None:
    fresh = make_db(2000, seed=4)["patients"]
    half = pa.concat_tables([train["patients"].slice(0, 1000), fresh.slice(1000)])
    res = evaluate_privacy(train, holdout, {"patients": half}, _schema(), sample_rows=2_000)
    p = res.tables["patients"]
    assert p.exact_copy_share == pytest.approx(0.5, abs=0.01)
    # half the rows are certainly closer to training, the other half by chance: 0.5 + 0.5 / 2
    assert p.dcr_closer_to_train_share == pytest.approx(0.75, abs=0.05)
    assert p.mia_auc is not None and 0.65 < p.mia_auc < 0.9


def test_missing_column_names_table_and_column(
    train: dict[str, pa.Table], holdout: dict[str, pa.Table]
) -> None:
    synth = {"patients": train["patients"].drop_columns(["ward"])}
    with pytest.raises(MetricsError, match=r"synthetic table 'patients' lacks column\(s\) 'ward'"):
        evaluate_privacy(train, holdout, synth, _schema())
