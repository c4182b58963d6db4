"""Machine-learning utility: does a model trained on synthetic rows predict real held-out rows as well as one trained
on real rows? (train-synthetic-test-real against train-real-test-real.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.model import Table
from synth_engine.metrics._encode import (
    MetricsError,
    ValueColumn,
    check_columns,
    informative_columns,
    joint_codes,
    json_safe,
    sample_indices,
    single_threaded,
    table_rng,
    to_float,
    tree_features,
    value_columns,
)


@dataclass(frozen=True)
class UtilityResult:
    """Scores of the two models on the real holdout.

    Attributes:
        target: the predicted column.
        task: ``classification`` or ``regression``.
        metric: the main score: ``f1_macro`` (classification) or ``r2`` (regression).
        real_score: the main score of the model trained on real rows.
        synthetic_score: the main score of the model trained on synthetic rows.
        ratio: ``synthetic_score / real_score`` (1 = as useful as the real data); None when the real score is <= 0.
        real_accuracy: accuracy of the real-trained model (classification only).
        synthetic_accuracy: accuracy of the synthetic-trained model (classification only).
        features: the feature columns used.
        train_rows: real training rows used.
        synthetic_rows: synthetic training rows used.
        holdout_rows: holdout rows scored.
    """

    target: str
    task: str
    metric: str
    real_score: float
    synthetic_score: float
    ratio: float | None
    real_accuracy: float | None
    synthetic_accuracy: float | None
    features: list[str]
    train_rows: int
    synthetic_rows: int
    holdout_rows: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (NaN as None)."""
        result: dict[str, Any] = json_safe(asdict(self))
        return result


def _infer_columns(t: pa.Table) -> list[ValueColumn]:
    """Without a schema: numbers and temporal types are continuous, strings and booleans categorical; string
    columns that are mostly distinct (identifiers, free text) are left out."""
    from schemas.kinds import Kind

    out = []
    for name in t.column_names:
        typ = t.schema.field(name).type
        if pa.types.is_dictionary(typ):
            typ = typ.value_type
        if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
            out.append(ValueColumn(name, Kind.NUMERIC, True))
        elif pa.types.is_temporal(typ):
            out.append(ValueColumn(name, Kind.DATETIME, True))
        elif pa.types.is_boolean(typ):
            out.append(ValueColumn(name, Kind.BOOLEAN, False))
        elif (pa.types.is_string(typ) or pa.types.is_large_string(typ)) and (
            t.num_rows and pc.count_distinct(t.column(name)).as_py() <= 0.5 * t.num_rows
        ):
            out.append(ValueColumn(name, Kind.CATEGORICAL, False))
    return out


def utility(
    real_train: pa.Table,
    real_holdout: pa.Table,
    synth: pa.Table,
    target_column: str,
    *,
    table: Table | None = None,
    sample_rows: int = 20_000,
    seed: int = 0,
) -> UtilityResult:
    """Train on synthetic and on real rows, test both on the real holdout, and compare.

    Args:
        real_train: real rows the generator was trained on.
        real_holdout: real rows it never saw.
        synth: synthetic rows.
        target_column: the column to predict. A categorical or boolean target is a classification (macro F1 and
            accuracy); a numeric or temporal one a regression (R^2).
        table: the table's schema, so keys and PII are not used as features; without it, kinds are inferred from
            the Arrow types and mostly-distinct string columns are dropped.
        sample_rows: at most this many rows of each table are used.
        seed: seeds the samples and the models.

    Raises:
        MetricsError: the target is missing from a table, is a key or PII column, or no feature is left.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    where = f"utility on {table.name!r}" if table is not None else "utility"
    cols = value_columns(table)[0] if table is not None else _infer_columns(real_train)
    by_name = {c.name: c for c in cols}
    if target_column not in by_name:
        raise MetricsError(
            f"{where}: target column {target_column!r} is not a value column (found: "
            f"{', '.join(by_name) or 'none'}); choose a categorical, boolean or numeric column that is not a key or PII"
        )
    target = by_name[target_column]
    features = [c for c in cols if c.name != target_column]
    if not features:
        raise MetricsError(
            f"{where}: no feature column besides the target {target_column!r}; nothing to learn from"
        )
    names = [c.name for c in cols]
    parts = []
    for label, t in (("training", real_train), ("holdout", real_holdout), ("synthetic", synth)):
        check_columns(t, names, table.name if table else "(table)", label)
        idx = sample_indices(t.num_rows, sample_rows, table_rng(seed, "utility", label))
        parts.append(t.take(idx) if len(idx) < t.num_rows else t)

    if target.continuous:
        ys = [to_float(p.column(target_column), where=f"{where}, target {target_column!r}") for p in parts]
        present = [~np.isnan(y) for y in ys]
    else:
        ys_int, _ = joint_codes([p.column(target_column) for p in parts])
        ys = [y.astype(np.float64) for y in ys_int]
        present = [y >= 0 for y in ys_int]
    parts = [p.filter(pa.array(m)) for p, m in zip(parts, present, strict=True)]
    ys = [y[m] for y, m in zip(ys, present, strict=True)]
    if min(p.num_rows for p in parts) < 2:
        raise MetricsError(
            f"{where}: fewer than 2 rows with a non-null {target_column!r} in a table; cannot score"
        )
    feats = tree_features(parts, features, where=where)
    x_train, x_hold, x_synth = feats.matrices
    y_train, y_hold, y_synth = ys
    is_cat = np.asarray(feats.categorical, dtype=bool)

    def fit_predict(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if not target.continuous and np.unique(y).size < 2:
            return np.full(len(x_hold), y[0])  # one class only: a classifier cannot be fitted; predict it
        # Features with one value in these rows (constant, all-NULL) say nothing, and histogram binning raises on
        # an all-NaN column: fit without them; with none left, predict the commonest class or the mean.
        keep = informative_columns(x)
        if not keep.any():
            if target.continuous:
                return np.full(len(x_hold), float(np.mean(y)))
            values, counts = np.unique(y, return_counts=True)
            return np.full(len(x_hold), values[np.argmax(counts)])
        model = (HistGradientBoostingRegressor if target.continuous else HistGradientBoostingClassifier)(
            max_iter=100, categorical_features=is_cat[keep] if is_cat[keep].any() else None, random_state=seed
        )
        return np.asarray(model.fit(x[:, keep], y).predict(x_hold[:, keep]))

    with single_threaded():
        pred_real, pred_synth = fit_predict(x_train, y_train), fit_predict(x_synth, y_synth)
    if target.continuous:
        task, metric = "regression", "r2"
        real_score, synth_score = float(r2_score(y_hold, pred_real)), float(r2_score(y_hold, pred_synth))
        real_acc = synth_acc = None
    else:
        task, metric = "classification", "f1_macro"
        real_score = float(f1_score(y_hold, pred_real, average="macro"))
        synth_score = float(f1_score(y_hold, pred_synth, average="macro"))
        real_acc, synth_acc = (
            float(accuracy_score(y_hold, pred_real)),
            float(accuracy_score(y_hold, pred_synth)),
        )
    return UtilityResult(
        target=target_column,
        task=task,
        metric=metric,
        real_score=real_score,
        synthetic_score=synth_score,
        ratio=synth_score / real_score if real_score > 0 else None,
        real_accuracy=real_acc,
        synthetic_accuracy=synth_acc,
        features=[c.name for c in features],
        train_rows=len(y_train),
        synthetic_rows=len(y_synth),
        holdout_rows=len(y_hold),
    )
