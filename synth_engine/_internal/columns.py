"""The columns a table model learns: one resolution shared by the copula and the neural model."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from schemas.errors import ModelError
from schemas.kinds import Kind
from synth_engine._internal.arrow_numbers import infer_kind


def model_columns(
    kinds: Mapping[str, Kind],
    context_kinds: Mapping[str, Kind] | None,
    target: pa.Table,
    context: pa.Table | None,
) -> tuple[dict[str, Kind], dict[str, Kind]]:
    """The learned target columns and the learned context columns a model fits, checked against the tables.

    Context kinds not given are inferred from the context's Arrow types.

    Raises:
        ModelError: a context whose row count differs from the target's, or a column named in the kinds that the
            table lacks.
    """
    if context is not None and context.num_rows != target.num_rows:
        raise ModelError(
            f"the context has {context.num_rows} rows but the target has {target.num_rows}; pass one context "
            "row (the parent's row) per target row"
        )
    target_cols = learned_columns(kinds, target, "target")
    context_cols: dict[str, Kind] = {}
    if context is not None:
        given = context_kinds
        if given is None:
            given = {f.name: k for f in context.schema if (k := infer_kind(f.type)) is not None}
        context_cols = learned_columns(given, context, "context")
    return target_cols, context_cols


def learned_columns(kinds: Mapping[str, Kind], table: pa.Table, what: str) -> dict[str, Kind]:
    """The learned columns among ``kinds``, checked against the table."""
    out: dict[str, Kind] = {}
    missing = []
    for name, raw in kinds.items():
        kind = Kind(raw)
        if not kind.is_learned:
            continue
        if name not in table.column_names:
            missing.append(name)
            continue
        out[name] = kind
    if missing:
        raise ModelError(
            f"the {what} table has no column(s) {', '.join(map(repr, missing))} named in its kinds "
            f"(its columns: {', '.join(table.column_names)}); fix the kinds or pass those columns"
        )
    return out


def privacy_columns(context_cols: Mapping[str, Kind], target_cols: Mapping[str, Kind]) -> list[tuple[str, str, Kind]]:
    """``(side, name, kind)`` of every column whose marginal a model releases, context first."""
    return [("context", c, k) for c, k in context_cols.items()] + [("target", c, k) for c, k in target_cols.items()]
