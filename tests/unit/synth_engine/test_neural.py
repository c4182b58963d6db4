"""NeuralTableModel: the TableModel contract, exact types and NULLs, conditioning, determinism, pickling, budgets."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from schemas.errors import ModelError, NotFittedError
from schemas.kinds import Kind
from synth_engine import GaussianCopulaModel, TableModel
from synth_engine.neural import NeuralTableModel

N = 3_000
SMALL = {"hidden": 32, "context_hidden": 16, "max_epochs": 3, "numeric_bins": 16, "fine_bins": 4, "num_threads": 1}


def _table(n: int = N, seed: int = 0) -> tuple[pa.Table, dict[str, Kind]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    seconds = rng.gamma(2.0, 3600 * 24 * 30, size=n).astype(np.int64)
    table = pa.table(
        {
            "x": pa.array(np.where(rng.random(n) < 0.2, np.nan, x), from_pandas=True),
            "y": pa.array(0.8 * x + 0.6 * rng.normal(size=n), pa.float32()),
            "age": pa.array(np.clip(40 + 12 * x, 18, 90).astype(np.int16)),
            "income": pa.array(np.round(np.exp(10 + 0.5 * x), 2)).cast(pa.decimal128(12, 2)),
            "colour": pa.array(np.where(x > 0.7, "red", np.where(x < -0.5, "blue", "green"))).dictionary_encode(),
            "flag": pa.array(x > 1.0),
            "at": pa.array(np.int64(start.timestamp() * 1e6) + seconds * 1_000_000).cast(pa.timestamp("us", tz="UTC")),
            "day": pa.array((18_000 + seconds // 86_400).astype(np.int32)).cast(pa.date32()),
            "doc": pa.array(rng.choice(['{"a": 1}', '{"b": 2}', None], size=n).tolist(), pa.string()),
            "nothing": pa.nulls(n, pa.int64()),
            "key": pa.array(np.arange(n)),
        }
    )
    kinds = {
        "x": Kind.NUMERIC, "y": Kind.NUMERIC, "age": Kind.NUMERIC, "income": Kind.NUMERIC,
        "colour": Kind.CATEGORICAL, "flag": Kind.BOOLEAN, "at": Kind.DATETIME, "day": Kind.DATE,
        "doc": Kind.JSON, "nothing": Kind.NUMERIC, "key": Kind.ID,
    }
    return table, kinds


def _conditioned(n: int = N, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """A target that is a deterministic function of a context category (and a context number)."""
    rng = np.random.default_rng(seed)
    parent = rng.choice(np.array(["a", "b", "c", "d"]), size=n)
    size = rng.uniform(0, 100, size=n)
    context = pa.table({"ctx.kind": pa.array(parent), "ctx.size": pa.array(size)})
    child = np.select([parent == "a", parent == "b", parent == "c"], ["x", "y", "z"], "w")
    level = np.select([parent == "a", parent == "b", parent == "c"], [10.0, 20.0, 30.0], 40.0)
    target = pa.table({"child": pa.array(child), "level": pa.array(level + rng.normal(0, 0.5, n))})
    return target, context


@pytest.fixture(scope="module")
def fitted() -> tuple[pa.Table, NeuralTableModel, pa.Table]:
    table, kinds = _table()
    model = NeuralTableModel(kinds, **{**SMALL, "max_epochs": 6, "batch_size": 64}).fit(table)
    return table, model, model.sample(n=N, seed=1)


@pytest.fixture(scope="module")
def conditioned() -> tuple[pa.Table, pa.Table, NeuralTableModel]:
    target, context = _conditioned()
    kinds = {"child": Kind.CATEGORICAL, "level": Kind.NUMERIC}
    model = NeuralTableModel(kinds, **{**SMALL, "max_epochs": 15, "learning_rate": 1e-2}).fit(target, context=context)
    return target, context, model


def test_is_a_table_model(fitted: tuple[pa.Table, NeuralTableModel, pa.Table]) -> None:
    _, model, _ = fitted
    assert isinstance(model, TableModel)
    assert model.privacy_spent_ == []
    report = model.train_report_
    assert {"epochs", "best_val_loss", "seconds", "device", "stopped_by", "rows", "params"} <= set(report)
    assert report["device"] == "cpu" and report["rows"] == N and report["params"] > 0
    assert report["stopped_by"] in {"early_stop", "time_budget", "max_epochs"}


def test_schema_matches_the_copula_and_nulls_follow_the_data(
    fitted: tuple[pa.Table, NeuralTableModel, pa.Table],
) -> None:
    table, model, sample = fitted
    kinds = _table(10)[1]
    copula = GaussianCopulaModel(kinds).fit(table).sample(n=10, seed=0)
    assert sample.schema == copula.schema == model.schema_
    assert "key" not in sample.column_names and sample.num_rows == N
    assert sample["nothing"].null_count == N
    for col in ("x", "doc"):
        assert abs(sample[col].null_count / N - table[col].null_count / N) < 0.05, col
    assert sample["y"].null_count == sample["age"].null_count == 0
    assert set(pc.unique(sample["colour"].combine_chunks().dictionary_decode()).to_pylist()) <= {"red", "blue", "green"}
    assert set(sample["doc"].drop_null().to_pylist()) <= {'{"a": 1}', '{"b": 2}'}
    # numbers stay within the observed range
    for col in ("age", "at", "day"):
        real, fake = table[col], sample[col]
        assert pc.min(fake).as_py() >= pc.min(real).as_py() and pc.max(fake).as_py() <= pc.max(real).as_py(), col


def test_marginals_and_a_dependence_are_learned(fitted: tuple[pa.Table, NeuralTableModel, pa.Table]) -> None:
    table, _, sample = fitted
    real_age = table["age"].to_numpy().astype(float)
    fake_age = sample["age"].to_numpy().astype(float)
    assert abs(np.median(fake_age) - np.median(real_age)) < 3.0
    assert abs(fake_age.std() - real_age.std()) < 0.2 * real_age.std()
    # age and y both depend on x: their correlation (0.8 in the data) must be clearly there
    r = np.corrcoef(fake_age, sample["y"].to_numpy())[0, 1]
    assert r > 0.5, r


def test_sample_follows_the_context(conditioned: tuple[pa.Table, pa.Table, NeuralTableModel]) -> None:
    _, _, model = conditioned
    parent = np.array(["d", "a", "b", "c"] * 250)
    context = pa.table({"ctx.kind": pa.array(parent), "ctx.size": pa.array(np.full(parent.size, 50.0))})
    out = model.sample(context=context, seed=3)
    assert out.num_rows == parent.size
    want = np.select([parent == "a", parent == "b", parent == "c"], ["x", "y", "z"], "w")
    got = np.asarray(out["child"].to_pylist())
    assert (got == want).mean() > 0.95  # row i follows context row i, in order
    level = out["level"].to_numpy()
    expected = np.select([parent == "a", parent == "b", parent == "c"], [10.0, 20.0, 30.0], 40.0)
    assert np.median(np.abs(level - expected)) < 2.0


def test_context_mismatch_and_missing_context_columns_raise(
    conditioned: tuple[pa.Table, pa.Table, NeuralTableModel],
) -> None:
    target, context, model = conditioned
    kinds = {"child": Kind.CATEGORICAL, "level": Kind.NUMERIC}
    with pytest.raises(ModelError, match="context has 10 rows but the target has"):
        NeuralTableModel(kinds, **SMALL).fit(target, context=context.slice(0, 10))
    with pytest.raises(ModelError, match="'ctx.size'"):
        model.sample(context=context.select(["ctx.kind"]), seed=0)
    with pytest.raises(ModelError, match="n=5 but the context has"):
        model.sample(n=5, context=context.slice(0, 4), seed=0)
    # unseen and NULL context values are allowed: they have their own tokens
    odd = pa.table({"ctx.kind": pa.array(["zz", None]), "ctx.size": pa.array([1e6, None], pa.float64())})
    assert model.sample(context=odd, seed=0).num_rows == 2


def test_missing_column_and_bad_parameters_raise() -> None:
    table, kinds = _table(200)
    with pytest.raises(ModelError, match="'ghost'"):
        NeuralTableModel({**kinds, "ghost": Kind.NUMERIC}, **SMALL).fit(table)
    with pytest.raises(ModelError, match="epsilon must be None or a number > 0, got 0"):
        NeuralTableModel(kinds, epsilon=0).fit(table)
    with pytest.raises(ModelError, match="hidden must be an integer >= 1, got 0"):
        NeuralTableModel(kinds, hidden=0).fit(table)
    with pytest.raises(ModelError, match="device must be one of"):
        NeuralTableModel(kinds, device="tpu").fit(table)
    with pytest.raises(ModelError, match="has kind numeric but Arrow type string"):
        NeuralTableModel({"colour": Kind.NUMERIC}, **SMALL).fit(table)


def test_sample_before_fit_raises() -> None:
    with pytest.raises(NotFittedError):
        NeuralTableModel({"x": Kind.NUMERIC}).sample(n=3, seed=0)


def test_same_seed_same_output_other_seed_other_output(
    fitted: tuple[pa.Table, NeuralTableModel, pa.Table],
) -> None:
    _, model, sample = fitted
    assert model.sample(n=N, seed=1).equals(sample)
    assert not model.sample(n=N, seed=2).equals(sample)
    assert model.sample(n=0, seed=1).num_rows == 0


def test_fit_is_deterministic() -> None:
    table, kinds = _table(800)
    a = NeuralTableModel(kinds, **SMALL).fit(table)
    b = NeuralTableModel(kinds, **SMALL).fit(table)
    assert a.train_report_["best_val_loss"] == b.train_report_["best_val_loss"]
    assert a.sample(n=500, seed=4).equals(b.sample(n=500, seed=4))


def test_pickle_round_trip_gives_identical_samples(
    conditioned: tuple[pa.Table, pa.Table, NeuralTableModel],
) -> None:
    _, context, model = conditioned
    loaded = pickle.loads(pickle.dumps(model))
    assert isinstance(loaded, NeuralTableModel)
    assert loaded.sample(context=context, seed=9).equals(model.sample(context=context, seed=9))
    again = NeuralTableModel.from_bytes(model.to_bytes())
    assert again.sample(context=context, seed=9).equals(model.sample(context=context, seed=9))


def test_time_budget_is_respected() -> None:
    table, kinds = _table()
    model = NeuralTableModel(kinds, **{**SMALL, "max_epochs": 1000, "batch_size": 64}, time_budget_s=0.3).fit(table)
    report = model.train_report_
    assert report["stopped_by"] == "time_budget"
    assert report["seconds"] < 5.0
    assert model.sample(n=10, seed=0).num_rows == 10  # the best weights so far are kept and usable


def test_continuous_values_are_interpolated_not_copied() -> None:
    rng = np.random.default_rng(5)
    table = pa.table({"v": pa.array(rng.lognormal(3.0, 1.0, size=N))})
    model = NeuralTableModel({"v": Kind.NUMERIC}, **SMALL).fit(table)
    fake = model.sample(n=N, seed=0)["v"].to_numpy()
    copied = np.isin(fake, table["v"].to_numpy()).mean()
    assert copied < 0.02, copied  # only quantile knots (min, max) can come back exactly


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_cuda_fit_and_sample_in_mixed_precision() -> None:
    table, kinds = _table()
    model = NeuralTableModel(kinds, **SMALL, device="auto", sample_device="cuda").fit(table)
    assert model.train_report_["device"].startswith("cuda")
    sample = model.sample(n=N, seed=1)
    assert sample.schema == model.schema_ and sample.num_rows == N
    assert model.sample(n=N, seed=1).equals(sample)
    # trained on the GPU, loaded and sampled on the CPU
    loaded = pickle.loads(pickle.dumps(model))
    loaded.sample_device = "cpu"
    assert loaded.sample(n=100, seed=1).schema == model.schema_


def test_dp_sgd_stays_within_its_budget_learns_and_is_deterministic() -> None:
    """Under epsilon (the model alone): DP marginals, then DP-SGD steps the accountant composes within the budget."""
    import numpy as np

    from synth_engine.privacy import Accountant

    rng = np.random.default_rng(0)
    n = 3000
    a = rng.normal(size=n)
    b = a * 0.8 + rng.normal(size=n) * 0.6
    table = pa.table({"a": a, "b": b})
    kinds = {"a": Kind.NUMERIC, "b": Kind.NUMERIC}
    fits = [NeuralTableModel(kinds, epsilon=1.0, device="cpu", num_threads=1).fit(table) for _ in range(2)]
    model = fits[0]
    network = [s for s in model.privacy_spent_ if s.statistic == "model.network"]
    assert len(network) == 1 and 0 < network[0].sampling_rate < 1 and network[0].count == model.train_report_["steps"]
    assert {s.statistic for s in model.privacy_spent_} == {"model.marginals", "model.network"}
    accountant = Accountant(1e-6)
    accountant.record(model.privacy_spent_)
    assert accountant.epsilon() <= 1.0 + 1e-6
    assert model.train_report_["validation_rows"] == 0 and model.train_report_["stopped_by"] == "max_epochs"
    out = model.sample(n=3000, seed=1)
    assert out.equals(fits[1].sample(n=3000, seed=1)), "the same data and seed give the same DP model"
    x = np.array(out["a"].to_pylist(), dtype=float)
    y = np.array(out["b"].to_pylist(), dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    assert np.corrcoef(x[ok], y[ok])[0, 1] > 0.2, "DP-SGD at epsilon 1 still learns the strong dependence"
