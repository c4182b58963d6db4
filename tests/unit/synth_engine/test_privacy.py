"""Privacy metrics: a copying generator is flagged, an honest one (an independent draw) is not."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from synth_engine.metrics import MetricsError, evaluate_privacy
from synth_engine.metrics.privacy import auc_with_ci, dcr_share


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
    assert p.dcr_share_ci is not None and p.dcr_share_ci[0] > 0.9
    assert p.dcr_synthetic["p5"] == 0.0 and p.dcr_holdout["p5"] > 0.0
    assert p.mia_auc is not None and p.mia_auc > 0.95
    assert p.mia_auc_ci is not None and p.mia_auc_ci[0] > 0.9 and p.mia_auc_ci[1] <= 1.0
    # every training and holdout row indexed; the attack on 500 members and 500 non-members
    assert (p.dcr_train_rows, p.dcr_holdout_rows, p.dcr_synthetic_rows) == (2000, 2000, 2000)
    assert p.dcr_chance_share == 0.5 and p.dcr_train_coverage == 1.0
    assert (p.mia_members, p.mia_non_members, p.mia_synthetic_rows) == (500, 500, 2000)
    assert p.copy_synthetic_rows == 2000
    # keys and PII are not compared: they are generated, so a copy is a copy whatever they hold
    assert p.copy_columns == ["age", "weight", "admitted", "ward", "smoker"]
    assert res.max_exact_copy_share == 1.0
    # visits has 6 possible rows, all of which fresh data repeats: copying them gives nothing away
    v = res.tables["visits"]
    assert v.dcr_closer_to_train_share == pytest.approx(0.5, abs=0.02) and v.mia_auc == pytest.approx(0.5)
    json.dumps(res.to_dict(), allow_nan=False)


@pytest.mark.parametrize("train_rows", [2_000, 8_000, 20_000])
def test_a_copier_is_caught_and_an_independent_sampler_is_not_whatever_the_holdout_size(
    holdout: dict[str, pa.Table], train_rows: int
) -> None:
    # The copier test. With a training set 4x or 10x the holdout, a copy of a training row outside an
    # equal-size training sample used to look fresh: a copier scored 0.52-0.56. Every training row is indexed
    # now, and chance (a fresh row's nearest real row is a training row with probability N / (N + m)) is
    # rescaled to 0.5.
    big = make_db(train_rows, seed=5)
    copier = evaluate_privacy(big, holdout, big, _schema(), sample_rows=2_000).tables["patients"]
    assert copier.dcr_chance_share == pytest.approx(train_rows / (train_rows + 2000))
    assert copier.dcr_raw_share == 1.0
    assert copier.dcr_closer_to_train_share is not None and copier.dcr_closer_to_train_share >= 0.95
    assert copier.mia_auc is not None and copier.mia_auc >= 0.9
    assert copier.exact_copy_share == 1.0

    sampler = make_db(2000, seed=6, id_offset=900_000)  # an independent draw from the same distribution
    fresh = evaluate_privacy(big, holdout, sampler, _schema(), sample_rows=2_000).tables["patients"]
    assert fresh.dcr_closer_to_train_share == pytest.approx(0.5, abs=0.07)
    assert fresh.dcr_share_ci is not None and fresh.dcr_share_ci[0] < 0.5 < fresh.dcr_share_ci[1] + 0.02
    assert fresh.mia_auc == pytest.approx(0.5, abs=0.05)
    assert fresh.mia_auc_ci is not None and fresh.mia_auc_ci[0] - 0.02 < 0.5 < fresh.mia_auc_ci[1] + 0.02


def test_a_capped_index_states_its_coverage(holdout: dict[str, pa.Table]) -> None:
    # index_rows bounds memory: a quarter of the training rows indexed, so 3/4 of a copier's rows look fresh and
    # it scores about 0.5 + 0.25 / 2; the result says so through dcr_train_coverage.
    big = make_db(8000, seed=5)
    res = evaluate_privacy(big, holdout, big, _schema(), sample_rows=4_000, index_rows=2_000)
    p = res.tables["patients"]
    assert p.dcr_train_coverage == pytest.approx(0.25) and p.dcr_train_rows == 2000
    assert p.dcr_closer_to_train_share == pytest.approx(0.5 + p.dcr_train_coverage / 2, abs=0.05)
    assert p.exact_copy_share == 1.0  # exact copies are looked up among all training rows
    assert res.index_rows == 2000


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
    # the same at 4x more training rows than holdout rows: the share is linear in the copied share
    big = {"patients": pa.concat_tables([train["patients"], make_db(6000, seed=7)["patients"]])}
    half_big = pa.concat_tables([big["patients"].slice(0, 1000), fresh.slice(1000)])
    q = evaluate_privacy(big, holdout, {"patients": half_big}, _schema(), sample_rows=2_000).tables[
        "patients"
    ]
    assert q.dcr_chance_share == pytest.approx(0.8)
    assert q.dcr_closer_to_train_share == pytest.approx(0.75, abs=0.05)


def test_missing_column_names_table_and_column(
    train: dict[str, pa.Table], holdout: dict[str, pa.Table]
) -> None:
    synth = {"patients": train["patients"].drop_columns(["ward"])}
    with pytest.raises(MetricsError, match=r"synthetic table 'patients' lacks column\(s\) 'ward'"):
        evaluate_privacy(train, holdout, synth, _schema())


def test_the_attack_auc_and_its_delong_interval() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.5, 1, 400).round(1), rng.normal(0, 1, 300).round(1)  # rounded: ties count half
    auc, low, high = auc_with_ci(pos, neg)
    labels = np.r_[np.ones(400), np.zeros(300)]
    assert auc == pytest.approx(roc_auc_score(labels, np.r_[pos, neg]))
    assert low is not None and high is not None and low < auc < high
    # DeLong's standard error against a bootstrap's
    boots = [roc_auc_score(labels, np.r_[rng.choice(pos, 400), rng.choice(neg, 300)]) for _ in range(300)]
    assert (high - low) / (2 * 1.96) == pytest.approx(np.std(boots), rel=0.2)
    assert auc_with_ci(np.ones(3), np.zeros(3))[0] == 1.0
    assert auc_with_ci(np.ones(1), np.zeros(5))[1:] == (None, None)


def test_dcr_share_rescales_chance_to_one_half() -> None:
    fresh = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    # a copier: every synthetic row is 0 from a training row and farther from the holdout
    share, raw, chance, ci = dcr_share(np.zeros(5), fresh, 9_000, 1_000)
    assert (share, raw, chance) == (1.0, 1.0, 0.9) and ci == [1.0, 1.0]
    # ties count chance's share: a table whose every row fresh data repeats scores 0.5
    assert dcr_share(np.zeros(5), np.zeros(5), 9_000, 1_000)[0] == pytest.approx(0.5)
    # never closer to training: 0
    assert dcr_share(fresh + 1, fresh, 9_000, 1_000)[0] == 0.0


def test_nearest_distances_is_exact_with_either_search() -> None:
    from scipy.spatial.distance import cdist

    from synth_engine.metrics._encode import nearest_distances

    rng = np.random.default_rng(0)
    index = rng.normal(size=(3_000, 4)).astype(np.float32)
    queries = np.vstack([index[:500], rng.normal(size=(1_000, 4)).astype(np.float32)])
    expected = cdist(queries.astype(np.float64), index.astype(np.float64)).min(axis=1)
    for data in (index, np.hstack([index, np.zeros((3_000, 40), np.float32)])):  # k-d tree, then brute force
        q = queries if data.shape[1] == 4 else np.hstack([queries, np.zeros((1_500, 40), np.float32)])
        got = nearest_distances(data, q)
        assert np.all(got[:500] == 0.0)  # equal rows are exactly 0 apart
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_table_too_small_is_not_estimable_with_its_reason(holdout: dict[str, pa.Table]) -> None:
    # a lookup table of 16 rows holds out 2: the share would swing by 0.3 for a generator that copies nothing
    tiny_train = {"patients": make_db(14, seed=11)["patients"]}
    tiny_hold = {"patients": make_db(2, seed=12, id_offset=50_000)["patients"]}
    fresh = {"patients": make_db(16, seed=13, id_offset=60_000)["patients"]}
    res = evaluate_privacy(tiny_train, tiny_hold, fresh, _schema(), sample_rows=100)
    p = res.tables["patients"]
    assert p.dcr_closer_to_train_share is None and p.dcr_share_ci is None
    assert p.dcr_not_estimable is not None and "2 holdout row(s)" in p.dcr_not_estimable
    assert p.dcr_raw_share is not None and p.dcr_chance_share == pytest.approx(14 / 16)  # still shown
    assert p.mia_auc is None and p.mia_not_estimable is not None
    assert {(f.metric, f.scope) for f in res.not_computed} >= {("dcr_share", "patients"), ("mia_auc", "patients")}
    assert res.max_dcr_closer_to_train_share is None and res.dcr_share is None
    # the other sizes of this module are estimable
    big = evaluate_privacy(make_db(2000, seed=1), holdout, make_db(2000, seed=3), _schema(), sample_rows=2_000)
    assert big.tables["patients"].dcr_not_estimable is None and big.tables["patients"].mia_not_estimable is None


def test_the_share_is_unbiased_on_both_sides_of_chance() -> None:
    # one affine map: as far below chance as above it, by the same step (the old kink shrank the steps below)
    above = dcr_share(np.r_[np.zeros(910), np.ones(90)], np.r_[np.ones(910), np.zeros(90)], 9_000, 1_000)[0]
    below = dcr_share(np.r_[np.zeros(890), np.ones(110)], np.r_[np.ones(890), np.zeros(110)], 9_000, 1_000)[0]
    assert above - 0.5 == pytest.approx(0.5 - below) == pytest.approx(0.05)
    # a fresh generator beside a small holdout: the mean share over many splits is 0.5, not above it
    shares = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        real = rng.normal(size=(330, 2))
        synth = rng.normal(size=(330, 2))
        train, hold = real[:300], real[300:]
        d_t = np.linalg.norm(synth[:, None] - train[None], axis=2).min(axis=1)
        d_h = np.linalg.norm(synth[:, None] - hold[None], axis=2).min(axis=1)
        shares.append(dcr_share(d_t, d_h, 300, 30)[0])
    assert np.mean(shares) == pytest.approx(0.5, abs=0.025)  # the kinked map: 0.54


def test_the_interval_counts_rows_that_share_a_nearest_real_row_once() -> None:
    rng = np.random.default_rng(3)
    d_t, d_h = rng.random(200), rng.random(200)
    _, _, _, alone = dcr_share(d_t, d_h, 1_000, 1_000, clusters=np.arange(200))
    _, _, _, plain = dcr_share(d_t, d_h, 1_000, 1_000)
    assert alone == pytest.approx(plain, abs=0.01)
    # the same 20 nearest real rows, ten synthetic rows each: the interval is about sqrt(10) times wider
    d_t10, d_h10 = np.repeat(d_t[:20], 10), np.repeat(d_h[:20], 10)
    _, _, _, clustered = dcr_share(d_t10, d_h10, 1_000, 1_000, clusters=np.repeat(np.arange(20), 10))
    _, _, _, naive = dcr_share(d_t10, d_h10, 1_000, 1_000)
    ratio = (clustered[1] - clustered[0]) / (naive[1] - naive[0])
    assert 2.5 < ratio < 4.0


def test_the_database_share_weighs_tables_by_their_rows(
    train: dict[str, pa.Table], holdout: dict[str, pa.Table]
) -> None:
    res = evaluate_privacy(train, holdout, train, _schema(), sample_rows=2_000)
    tables = [t for t in res.tables.values() if t.dcr_closer_to_train_share is not None]
    w = np.array([t.train_rows for t in tables], dtype=float)
    expected = float(np.dot(w / w.sum(), [t.dcr_closer_to_train_share for t in tables]))
    assert res.dcr_share == pytest.approx(expected)
    assert res.dcr_share_ci is not None and res.dcr_share_ci[0] <= res.dcr_share <= res.dcr_share_ci[1]
    json.dumps(res.to_dict(), allow_nan=False)
