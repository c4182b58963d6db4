"""GaussianCopulaModel: marginals, dependence, conditioning on a context, NULLs, exact types, DP mode."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy import stats

from schemas.errors import ModelError, NotFittedError
from schemas.kinds import Kind
from synth_engine import GaussianCopulaModel, TableModel

N = 20_000


def _table(n: int = N, seed: int = 0) -> tuple[pa.Table, dict[str, Kind]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.8 * x + 0.6 * rng.normal(size=n)  # corr(x, y) = 0.8
    income = np.exp(10 + 0.5 * x)  # skewed, depends on x
    colour = np.where(x > 0.7, "red", np.where(x < -0.5, "blue", "green"))
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    seconds = (rng.gamma(2.0, 3600 * 24 * 30, size=n)).astype(np.int64)
    # NULL when y is high: the null indicator depends on another column
    maybe = np.where(y > 0.8, np.nan, rng.normal(size=n))
    table = pa.table(
        {
            "x": pa.array(x, pa.float64()),
            "y": pa.array(y, pa.float32()),
            "age": pa.array(np.clip(40 + 12 * y, 18, 90).astype(np.int16)),
            "income": pa.array(np.round(income, 2)).cast(pa.decimal128(12, 2)),
            "colour": pa.array(colour),
            "flag": pa.array(x > 1.0),
            "at": pa.array(np.int64(start.timestamp() * 1e6) + seconds * 1_000_000).cast(pa.timestamp("us", tz="UTC")),
            "day": pa.array((18_000 + seconds // 86_400).astype(np.int32)).cast(pa.date32()),
            "clock": pa.array(rng.integers(0, 86_400, size=n) * 1_000_000).cast(pa.time64("us")),
            "maybe": pa.array(maybe, from_pandas=True),
            "doc": pa.array(rng.choice(['{"a": 1}', '{"b": 2}', None], size=n).tolist(), pa.string()),
        }
    )
    kinds = {
        "x": Kind.NUMERIC, "y": Kind.NUMERIC, "age": Kind.NUMERIC, "income": Kind.NUMERIC,
        "colour": Kind.CATEGORICAL, "flag": Kind.BOOLEAN, "at": Kind.DATETIME, "day": Kind.DATE,
        "clock": Kind.TIME, "maybe": Kind.NUMERIC, "doc": Kind.JSON,
    }
    return table, kinds


@pytest.fixture(scope="module")
def fitted() -> tuple[pa.Table, GaussianCopulaModel, pa.Table]:
    table, kinds = _table()
    model = GaussianCopulaModel(kinds).fit(table)
    return table, model, model.sample(n=N, seed=1)


def _numbers(col: pa.ChunkedArray) -> np.ndarray:
    arr = col.combine_chunks()
    if pa.types.is_temporal(arr.type):
        arr = arr.cast(pa.int64() if arr.type.bit_width == 64 else pa.int32())
    return np.asarray(arr.cast(pa.float64()).drop_null().to_numpy())


def _tv(a: pa.ChunkedArray, b: pa.ChunkedArray) -> float:
    pa_, pb = a.to_pandas().value_counts(normalize=True), b.to_pandas().value_counts(normalize=True)
    keys = set(pa_.index) | set(pb.index)
    return 0.5 * sum(abs(pa_.get(k, 0.0) - pb.get(k, 0.0)) for k in keys)


def test_implements_the_protocol() -> None:
    _, kinds = _table(100)
    assert isinstance(GaussianCopulaModel(kinds), TableModel)


def test_output_types_are_exactly_the_targets(fitted: tuple[pa.Table, GaussianCopulaModel, pa.Table]) -> None:
    real, _, synth = fitted
    assert synth.schema == real.schema
    assert synth.num_rows == N


@pytest.mark.parametrize("column", ["x", "y", "age", "income", "at", "day", "clock"])
def test_numeric_and_temporal_marginals_are_kept(
    fitted: tuple[pa.Table, GaussianCopulaModel, pa.Table], column: str
) -> None:
    real, _, synth = fitted
    ks = stats.ks_2samp(_numbers(real[column]), _numbers(synth[column])).statistic
    assert ks < 0.03, f"{column}: KS {ks:.3f}"
    # bounded to the observed range
    assert _numbers(synth[column]).min() >= _numbers(real[column]).min()
    assert _numbers(synth[column]).max() <= _numbers(real[column]).max()


def test_integers_stay_integers_and_decimals_keep_scale(
    fitted: tuple[pa.Table, GaussianCopulaModel, pa.Table],
) -> None:
    _, _, synth = fitted
    assert synth["age"].type == pa.int16()
    assert synth["income"].type == pa.decimal128(12, 2)
    cents = _numbers(synth["income"]) * 100
    assert np.allclose(cents, np.round(cents))


def test_category_frequencies_are_kept(fitted: tuple[pa.Table, GaussianCopulaModel, pa.Table]) -> None:
    real, _, synth = fitted
    assert _tv(real["colour"], synth["colour"]) < 0.02
    assert _tv(real["flag"], synth["flag"]) < 0.02
    assert set(synth["doc"].drop_null().to_pylist()) <= {'{"a": 1}', '{"b": 2}'}


def test_correlation_is_kept(fitted: tuple[pa.Table, GaussianCopulaModel, pa.Table]) -> None:
    real, _, synth = fitted
    r_real = stats.spearmanr(_numbers(real["x"]), _numbers(real["y"])).statistic
    r_synth = stats.spearmanr(_numbers(synth["x"]), _numbers(synth["y"])).statistic
    assert r_real > 0.7
    assert abs(r_real - r_synth) < 0.05
    # a categorical that depends on x: red rows have a higher x
    red = pc.equal(synth["colour"], "red")
    assert _numbers(synth["x"].filter(red)).mean() > _numbers(synth["x"]).mean() + 0.5


def test_null_share_and_null_dependence_are_kept(fitted: tuple[pa.Table, GaussianCopulaModel, pa.Table]) -> None:
    real, _, synth = fitted
    share_real = real["maybe"].null_count / real.num_rows
    share_synth = synth["maybe"].null_count / synth.num_rows
    assert abs(share_real - share_synth) < 0.02
    # in the real data NULL goes with high y; the copula's null indicator must carry that
    y_when_null = _numbers(synth["y"].filter(pc.is_null(synth["maybe"]))).mean()
    y_when_set = _numbers(synth["y"].filter(pc.is_valid(synth["maybe"]))).mean()
    assert y_when_null > y_when_set + 0.8
    # columns without NULLs get none
    assert synth["x"].null_count == 0 and synth["colour"].null_count == 0


def test_same_seed_same_output_other_seed_other_output(
    fitted: tuple[pa.Table, GaussianCopulaModel, pa.Table],
) -> None:
    _, model, synth = fitted
    assert model.sample(n=N, seed=1).equals(synth)
    assert not model.sample(n=N, seed=2).equals(synth)


def test_sample_before_fit_raises_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        GaussianCopulaModel({"x": Kind.NUMERIC}).sample(n=3, seed=0)


def test_bad_arguments_raise_model_errors() -> None:
    table, kinds = _table(200)
    with pytest.raises(ModelError, match="no column"):
        GaussianCopulaModel({"missing": Kind.NUMERIC}).fit(table)
    with pytest.raises(ModelError, match="kind numeric"):
        GaussianCopulaModel({"colour": Kind.NUMERIC}).fit(table)
    with pytest.raises(ModelError, match="max_categories"):
        GaussianCopulaModel(kinds, max_categories=1).fit(table)
    model = GaussianCopulaModel(kinds).fit(table)
    with pytest.raises(ModelError, match="neither"):
        model.sample(seed=0)


def test_keys_and_pii_are_not_learned() -> None:
    table = pa.table({"id": [1, 2, 3], "email": ["a@x", "b@x", "c@x"], "v": [1.0, 2.0, 3.0]})
    model = GaussianCopulaModel({"id": Kind.ID, "email": Kind.EMAIL, "v": Kind.NUMERIC}).fit(table)
    assert model.sample(n=5, seed=0).column_names == ["v"]


def _family_data(n_parents: int = 3000, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """Children whose amount depends on the parent's segment in a non-monotone way, and on its size."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["a", "b", "c"], size=n_parents, p=[0.5, 0.3, 0.2])
    size = rng.normal(size=n_parents)
    per_parent = rng.integers(1, 5, size=n_parents)
    parent_idx = np.repeat(np.arange(n_parents), per_parent)
    means = {"a": 10.0, "b": 50.0, "c": 20.0}
    seg = segment[parent_idx]
    amount = np.array([means[s] for s in seg]) + 3.0 * size[parent_idx] + rng.normal(size=parent_idx.size)
    context = pa.table({"segment": seg, "size": size[parent_idx]})
    target = pa.table({"amount": amount, "kind": np.where(amount > 30, "big", "small")})
    return target, context


def test_conditioning_on_the_context() -> None:
    target, context = _family_data()
    model = GaussianCopulaModel(
        {"amount": Kind.NUMERIC, "kind": Kind.CATEGORICAL},
        {"segment": Kind.CATEGORICAL, "size": Kind.NUMERIC},
    ).fit(target, context=context)
    new_context = pa.table({"segment": ["a"] * 2000 + ["b"] * 2000 + ["c"] * 2000, "size": np.zeros(6000)})
    out = model.sample(context=new_context, seed=3)
    assert out.num_rows == new_context.num_rows
    amount = _numbers(out["amount"])
    mean_a, mean_b, mean_c = amount[:2000].mean(), amount[2000:4000].mean(), amount[4000:].mean()
    # the training means are 10 / 50 / 20: the order b > c > a is not the frequency order, so only a model that
    # uses the context (per category) gets it right
    assert mean_b > mean_c + 10 > mean_a + 15
    assert abs(mean_b - 50) < 8 and abs(mean_a - 10) < 8
    big_share_b = np.mean(np.array(out["kind"].to_pylist()[2000:4000]) == "big")
    big_share_a = np.mean(np.array(out["kind"].to_pylist()[:2000]) == "big")
    # a categorical target follows too (attenuated: a Gaussian copula under-states discrete dependence)
    assert big_share_b > big_share_a + 0.4
    # the numeric context column matters too: bigger parents, bigger amounts
    sized = pa.table({"segment": ["a"] * 4000, "size": np.r_[np.full(2000, -1.5), np.full(2000, 1.5)]})
    by_size = _numbers(model.sample(context=sized, seed=4)["amount"])
    assert by_size[2000:].mean() > by_size[:2000].mean() + 4
    # one output row per context row, in order: the same context row twice gives rows from the same segment
    assert model.sample(context=new_context.slice(0, 10), seed=3).num_rows == 10
    # without a context: the target's marginal
    marginal = model.sample(n=5000, seed=5)
    assert abs(_numbers(marginal["amount"]).mean() - _numbers(target["amount"]).mean()) < 2.0


def test_context_with_unseen_category_and_nulls_still_samples() -> None:
    target, context = _family_data(500)
    model = GaussianCopulaModel({"amount": Kind.NUMERIC}, None).fit(target, context=context)
    odd = pa.table({"segment": pa.array(["zzz", None, "a"]), "size": pa.array([None, 0.0, 1.0])})
    out = model.sample(context=odd, seed=0)
    assert out.num_rows == 3 and out["amount"].null_count == 0


def test_context_row_count_must_match_target() -> None:
    target, context = _family_data(100)
    with pytest.raises(ModelError, match="one context"):
        GaussianCopulaModel({"amount": Kind.NUMERIC}).fit(target, context=context.slice(1))


def test_rare_categories_are_merged_and_text_is_categorical() -> None:
    rng = np.random.default_rng(0)
    common = rng.choice(["alpha", "beta", "gamma"], size=5000)
    rare = np.array([f"note {i}" for i in range(1000)])
    text = np.concatenate([common, rare])
    table = pa.table({"t": text})
    model = GaussianCopulaModel({"t": Kind.TEXT}, max_categories=10).fit(table)
    out = model.sample(n=6000, seed=0)["t"].to_pylist()
    assert set(out) <= set(text.tolist())
    share_rare = np.mean([v.startswith("note") for v in out])
    assert abs(share_rare - 1000 / 6000) < 0.03


def test_max_fit_rows_and_all_null_and_constant_columns() -> None:
    table = pa.table(
        {
            "v": np.arange(10_000, dtype=np.int64),
            "nothing": pa.nulls(10_000, pa.int32()),
            "same": pa.array(["k"] * 10_000),
        }
    )
    kinds = {"v": Kind.NUMERIC, "nothing": Kind.NUMERIC, "same": Kind.CATEGORICAL}
    model = GaussianCopulaModel(kinds, max_fit_rows=1000).fit(table)
    assert model.n_rows_ == 1000
    out = model.sample(n=100, seed=0)
    assert out.schema == table.schema
    assert out["nothing"].null_count == 100
    assert set(out["same"].to_pylist()) == {"k"}


def test_dictionary_and_chunked_inputs() -> None:
    table = pa.Table.from_batches(
        [
            pa.record_batch({"c": pa.array(["x", "y"] * 50).dictionary_encode(), "n": pa.array(range(100))}),
            pa.record_batch({"c": pa.array(["y", "z"] * 50).dictionary_encode(), "n": pa.array(range(100, 200))}),
        ]
    )
    model = GaussianCopulaModel({"c": Kind.CATEGORICAL, "n": Kind.NUMERIC}).fit(table)
    out = model.sample(n=50, seed=0)
    assert out.schema == table.schema
    assert set(out["c"].to_pylist()) <= {"x", "y", "z"}


def test_differential_privacy_mode_runs_and_keeps_types() -> None:
    table, kinds = _table(5000)
    model = GaussianCopulaModel(kinds, epsilon=1.0).fit(table)
    out = model.sample(n=2000, seed=0)
    assert out.schema == table.schema
    # noised, but still recognisable on a large table
    assert abs(_numbers(out["x"]).mean() - _numbers(table["x"]).mean()) < 0.3
    plain = GaussianCopulaModel(kinds).fit(table)
    same_shape = plain.correlation_.shape == model.correlation_.shape
    assert not same_shape or not np.allclose(plain.correlation_, model.correlation_)
    assert model.privacy_spent_ and {s.statistic for s in model.privacy_spent_} == {
        "model.marginals", "model.correlation"
    }
    with pytest.raises(ModelError, match="epsilon"):
        GaussianCopulaModel(kinds, epsilon=0.0).fit(table)


def test_pickle_and_bytes_round_trip(fitted: tuple[pa.Table, GaussianCopulaModel, pa.Table]) -> None:
    _, model, synth = fitted
    again = GaussianCopulaModel.from_bytes(model.to_bytes())
    assert again.sample(n=N, seed=1).equals(synth)
    assert pickle.loads(pickle.dumps(model)).sample(n=100, seed=7).equals(model.sample(n=100, seed=7))


def test_scales_to_large_tables() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    cols = {f"n{i}": rng.normal(size=n) for i in range(10)}
    cols.update({f"c{i}": rng.choice(["a", "b", "c", "d"], size=n) for i in range(10)})
    table = pa.table(cols)
    kinds = {c: (Kind.NUMERIC if c.startswith("n") else Kind.CATEGORICAL) for c in cols}
    import time

    began = time.perf_counter()
    model = GaussianCopulaModel(kinds).fit(table)
    fit_s = time.perf_counter() - began
    began = time.perf_counter()
    out = model.sample(n=500_000, seed=0)
    sample_s = time.perf_counter() - began
    assert out.num_rows == 500_000
    # generous bounds for a shared 2-core machine; typical figures are ~1.5 s and ~1.5 s
    assert fit_s < 15 and sample_s < 15, (fit_s, sample_s)


def test_values_on_a_grid_stay_on_it() -> None:
    """Hourly timestamps and prices in steps of 5 come out on their grid, not interpolated between its points."""
    rng = np.random.default_rng(0)
    hours = rng.integers(0, 8_000, 5_000)
    table = pa.table(
        {
            "at": pa.array([dt.datetime(2013, 1, 1) + dt.timedelta(hours=int(h)) for h in hours], pa.timestamp("us")),
            "price": pa.array(5 * rng.integers(1, 4_000, 5_000), pa.int64()),
        }
    )
    out = GaussianCopulaModel({"at": Kind.DATETIME, "price": Kind.NUMERIC}).fit(table).sample(n=2_000, seed=1)
    assert all(t.minute == 0 and t.second == 0 and t.microsecond == 0 for t in out.column("at").to_pylist())
    assert all(p % 5 == 0 for p in out.column("price").to_pylist())


def test_few_rows_per_value_are_not_reproduced_exactly() -> None:
    # 1,320 airports, 843 altitudes: an exact marginal gave back a training airport's altitude in every row, and
    # 1,000 knots over 1,320 latitudes put every generated one between two real neighbours (the DCR share saw it)
    rng = np.random.default_rng(0)
    alt = rng.choice(np.arange(-50, 9000), size=1320)
    lat = rng.normal(40.0, 8.0, 1320)
    tz = rng.choice([-5, -6, -8, -9], size=1320)
    table = pa.table({"alt": pa.array(alt, pa.int64()), "lat": lat, "tz": pa.array(tz, pa.int64())})
    model = GaussianCopulaModel({"alt": Kind.NUMERIC, "lat": Kind.NUMERIC, "tz": Kind.NUMERIC}).fit(table)
    m = {mg.name: mg for mg in model.marginals_}
    assert not m["alt"].exact and m["alt"].knots_p.size <= 1320 // 5
    assert m["lat"].knots_p.size <= 1320 // 5
    assert m["tz"].exact  # a few values held by many rows each stay exact
    out = model.sample(n=1320, seed=1)
    assert np.isin(out["alt"].to_numpy(), alt).mean() < 0.5  # by chance only: 843 of 9,050 integers are real
    assert stats.ks_2samp(out["lat"].to_numpy(), lat).pvalue > 0.01
    assert set(out["tz"].to_pylist()) <= {-5, -6, -8, -9}
