"""The model interface. A model learns from Arrow tables and samples Arrow tables; it knows no database.

Terms that stay fixed across synthdb: the *target* is the table being modelled, the *context* is the row of its
context parent that each target row is conditioned on.
"""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

import pyarrow as pa

from schemas.errors import ModelError


@runtime_checkable
class TableModel(Protocol):
    """A generative model of one table, optionally conditioned on a context (its parent's row).

    Contract:
        - ``fit`` returns ``self``; learned state ends in ``_``.
        - ``sample`` before ``fit`` raises :class:`schemas.errors.NotFittedError`.
        - ``sample(context=ctx)`` returns exactly one row per context row, in the same order.
        - ``sample(n=...)`` (no context) returns ``n`` rows.
        - The same ``seed`` gives the same output.
    """

    def fit(self, target: pa.Table, *, context: pa.Table | None = None) -> Self: ...

    def sample(self, *, n: int | None = None, context: pa.Table | None = None, seed: int) -> pa.Table: ...


@runtime_checkable
class CardinalityModel(Protocol):
    """How many children each parent row has, conditioned on the parent's columns."""

    def fit(self, parents: pa.Table, counts: pa.Array) -> Self: ...

    def sample(self, parents: pa.Table, *, seed: int) -> pa.Array: ...


def sample_rows(n: int | None, context: pa.Table | None) -> int:
    """The rows ``sample(n=..., context=...)`` returns: one per context row, else ``n``.

    Raises:
        ModelError: when neither is given, when they disagree, or when ``n`` is negative.
    """
    if context is not None:
        if n is not None and n != context.num_rows:
            raise ModelError(f"n={n} but the context has {context.num_rows} rows; pass one or make them equal")
        return context.num_rows
    if n is None:
        raise ModelError("sample needs n (rows to sample) or context (one row per parent); got neither")
    if n < 0:
        raise ModelError(f"n must be >= 0, got {n}")
    return n
