"""On the demo (nycflights13), the metrics that SDMetrics also computes agree with SDMetrics, computed here.

SDMetrics (a dev dependency; the project pins pandas < 3, which SDMetrics needs) scores the same real tables and
the same deliberately imperfect twin: column shapes, column pairs (numeric pairs by correlation, categorical and
mixed numeric/categorical pairs by contingency tables), and children per parent. Nothing is pinned: a change in
either implementation shows up here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_FRACTION = 0.02


def _demo_tables(tmp: Path, seed: int) -> dict[str, pa.Table]:
    from connectors.demo import build_demo
    from connectors.source import open_source

    path = tmp / f"demo-{seed}.sqlite"
    build_demo(path, fraction=_FRACTION, seed=seed)
    source = open_source(f"sqlite:///{path}")
    try:
        return {
            t.name: pa.Table.from_batches(list(source.read_table(t.name)))
            for t in source.read_schema().tables
        }
    finally:
        source.close()


def _twin(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """A deliberately imperfect 'synthetic' copy: floats stretched by 3%, a fifth of the categories shuffled."""
    rng = np.random.default_rng(11)
    out = {}
    for name, t in tables.items():
        cols = {}
        for field in t.schema:
            col = t.column(field.name)
            if pa.types.is_floating(field.type):
                col = pc.multiply(col, 1.03)
            elif pa.types.is_string(field.type) and name == "planes" and field.name != "tailnum":
                arr = col.combine_chunks()
                idx = np.arange(len(arr))
                pick = rng.random(len(arr)) < 0.2
                idx[pick] = rng.permutation(idx[pick])
                col = arr.take(pa.array(idx))
            cols[field.name] = col
        out[name] = pa.table(cols)
    return out


_CACHE: dict[str, tuple[dict[str, pa.Table], dict[str, pa.Table], Any]] = {}


def _data(tmp: Path) -> tuple[dict[str, pa.Table], dict[str, pa.Table], Any]:
    """The real demo tables, the twin and the inferred schema (built once per folder)."""
    if str(tmp) not in _CACHE:
        _CACHE[str(tmp)] = _build(tmp)
    return _CACHE[str(tmp)]


def _build(tmp: Path) -> tuple[dict[str, pa.Table], dict[str, pa.Table], Any]:
    from connectors.inspect import inspect_source
    from connectors.source import open_source

    real = _demo_tables(tmp, seed=0)
    twin = _twin(_demo_tables(tmp, seed=1))
    source = open_source(f"sqlite:///{tmp}/demo-0.sqlite")
    schema = inspect_source(source).schema
    source.close()
    return real, twin, schema


def _ours(tmp: Path) -> dict[str, float]:
    from synth_engine.metrics import evaluate_fidelity

    real, twin, schema = _data(tmp)
    res = evaluate_fidelity(real, twin, schema, sample_rows=10**9, detection=False)
    out = {
        f"{c.metric}/{c.table}.{c.column}": c.score
        for c in res.columns
        if c.metric in ("KSComplement", "TVComplement")
    }
    categorical = {
        (t.name, c.name) for t in schema.tables for c in t.columns if c.kind in ("categorical", "boolean")
    }
    for p in res.pairs:
        both_cat = (p.scope, p.column_a) in categorical and (p.scope, p.column_b) in categorical
        if p.metric == "CorrelationSimilarity" or (p.metric == "ContingencySimilarity" and both_cat):
            out[f"{p.metric}/{p.scope}.{p.column_a}+{p.column_b}"] = p.score
    for c in res.cardinalities:
        columns = c.foreign_key.split(")")[0].lstrip("(")
        if "," not in columns:  # SDMetrics takes single-column keys only
            out[f"CardinalityShapeSimilarity/{c.child}.{columns}->{c.parent}"] = c.score
    return {k: float(v) for k, v in out.items() if v is not None}


def _sdmetrics(tmp: Path, keys: list[str]) -> dict[str, float]:
    """SDMetrics' own figures, computed here on the same data, for every key our side produced."""
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.multi_table import CardinalityShapeSimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    real_t, twin_t, schema = _data(tmp)
    real = {n: t.to_pandas() for n, t in real_t.items()}
    twin = {n: t.to_pandas() for n, t in twin_t.items()}
    fns: dict[str, Any] = {
        "KSComplement": KSComplement,
        "TVComplement": TVComplement,
        "CorrelationSimilarity": CorrelationSimilarity,
        "ContingencySimilarity": ContingencySimilarity,
    }
    result: dict[str, float] = {}
    for key in keys:
        metric, rest = key.split("/", 1)
        if metric == "CardinalityShapeSimilarity":
            continue
        table, cols = rest.split(".", 1)
        pair = cols.split("+")
        picked = pair if len(pair) == 2 else cols
        result[key] = float(fns[metric].compute(real[table][picked], twin[table][picked]))
    pks = {t.name: t.primary_key.columns for t in schema.tables if t.primary_key}
    for t in schema.tables:
        for fk in t.foreign_keys:
            if len(fk.columns) != 1:
                continue
            column, ref = fk.columns[0], fk.ref_columns[0]
            metadata = {
                "tables": {
                    fk.ref_table: {"primary_key": ref, "columns": {ref: {"sdtype": "id"}}},
                    t.name: {
                        "primary_key": pks[t.name][0],
                        "columns": {column: {"sdtype": "id"}, pks[t.name][0]: {"sdtype": "id"}},
                    },
                },
                "relationships": [
                    {
                        "parent_table_name": fk.ref_table,
                        "parent_primary_key": ref,
                        "child_table_name": t.name,
                        "child_foreign_key": column,
                    }
                ],
            }
            breakdown = CardinalityShapeSimilarity.compute_breakdown(real, twin, metadata)
            for value in breakdown.values():
                result[f"CardinalityShapeSimilarity/{t.name}.{column}->{fk.ref_table}"] = float(
                    value["score"]
                )
    return result


def test_demo_metrics_agree_with_sdmetrics(tmp_path: Path) -> None:
    import pytest

    ours = _ours(tmp_path)
    reference = _sdmetrics(tmp_path, list(ours))
    assert len(reference) >= 100
    assert set(reference) == set(ours)
    by_metric = {
        m: sum(k.startswith(m + "/") for k in reference) for m in {k.split("/")[0] for k in reference}
    }
    assert set(by_metric) == {
        "KSComplement",
        "TVComplement",
        "CorrelationSimilarity",
        "ContingencySimilarity",
        "CardinalityShapeSimilarity",
    }, by_metric
    off = {k: (ours[k], v) for k, v in reference.items() if ours[k] != pytest.approx(v, abs=0.02)}
    assert not off, off


def test_mixed_numeric_categorical_pairs_agree_with_sdmetrics(tmp_path: Path) -> None:
    """A numeric column against a categorical one: our ContingencySimilarity on the numbers' quantile bins of the
    real data equals SDMetrics' ContingencySimilarity on the same bins (given as labels), to float precision."""
    import pandas as pd
    import pytest
    from sdmetrics.column_pairs import ContingencySimilarity

    from synth_engine.metrics import _stats, evaluate_fidelity
    from synth_engine.metrics._encode import to_float

    real, twin, schema = _data(tmp_path)
    res = evaluate_fidelity(real, twin, schema, sample_rows=10**9, detection=False, bins=10)
    kinds = {(t.name, c.name): c.kind for t in schema.tables for c in t.columns}
    categorical = {k for k, kind in kinds.items() if kind in ("categorical", "boolean")}
    numeric = {k for k, kind in kinds.items() if kind in ("numeric", "datetime", "date", "time")}
    mixed = [
        p
        for p in res.pairs
        if {(p.scope, p.column_a), (p.scope, p.column_b)} & categorical
        and {(p.scope, p.column_a), (p.scope, p.column_b)} & numeric
    ]
    assert len(mixed) >= 5, [f"{p.scope}.{p.column_a}+{p.column_b}" for p in res.pairs]

    def frame(table: str, cols: list[str], side: str) -> pd.DataFrame:
        data = {}
        for c in cols:
            if (table, c) in numeric:
                r = to_float(real[table].column(c), where=c)
                s = to_float(twin[table].column(c), where=c)
                codes = _stats.quantile_bins(r, s, 10)[0 if side == "real" else 1]
                data[c] = pd.Series([f"bin{k}" for k in codes], dtype=object)
            else:
                data[c] = (real if side == "real" else twin)[table].column(c).to_pandas()
        return pd.DataFrame(data)

    for p in mixed:
        cols = [p.column_a, p.column_b]
        expected = float(
            ContingencySimilarity.compute(frame(p.scope, cols, "real"), frame(p.scope, cols, "twin"))
        )
        assert p.metric == "ContingencySimilarity"
        assert p.score == pytest.approx(expected, abs=1e-9), (p.scope, cols)
