"""How many children each parent row has, conditioned on the parent's columns.

The count is one more integer column for :class:`~synth_engine.copula.GaussianCopulaModel`, with the parent's
columns as the context. Its marginal is exact for up to a thousand distinct counts, so the share of parents without
children (count 0) is kept, and the copula carries how the count depends on the parent's columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.errors import ModelError, NotFittedError
from schemas.kinds import Kind
from synth_engine.copula import GaussianCopulaModel
from synth_engine.privacy import CopulaPrivacy, Spend

_COUNT = "__children__"


class CopulaCardinalityModel:
    """Children per parent, learned with a Gaussian copula conditioned on the parent's columns.

    Implements :class:`synth_engine.protocol.CardinalityModel`.

    Args:
        context_kinds: kinds of the parent's columns to condition on (learned kinds only are used); None infers
            them from the Arrow types. An empty mapping learns the count's distribution alone.
        max_count: when set, sampled counts are clipped to at most this.
        one_to_one: counts in {0, 1}, for a child whose primary key is also its foreign key.
        max_categories: passed to the copula.
        max_fit_rows: passed to the copula.
        epsilon: passed to the copula (see its DP notes).
        privacy: passed to the copula; give it ``sensitivity=2`` (a child row changes its parent's count) and
            ``prefix="cardinality"``.

    Attributes:
        model_: the fitted copula.
        mean_count_: the mean number of children per parent seen in training (not set under DP: it is exact).
    """

    def __init__(
        self,
        context_kinds: Mapping[str, Kind] | None = None,
        *,
        max_count: int | None = None,
        one_to_one: bool = False,
        max_categories: int = 100,
        max_fit_rows: int | None = None,
        epsilon: float | None = None,
        privacy: CopulaPrivacy | None = None,
    ) -> None:
        self.context_kinds = context_kinds
        self.max_count = max_count
        self.one_to_one = one_to_one
        self.max_categories = max_categories
        self.max_fit_rows = max_fit_rows
        self.epsilon = epsilon
        self.privacy = privacy

    def fit(self, parents: pa.Table, counts: pa.Array) -> Self:
        """Learn the count distribution from every parent (including those with zero children).

        Args:
            parents: one row per parent, with its columns.
            counts: the number of children of each parent, same order; NULL means 0.

        Raises:
            ModelError: when ``counts`` has a different length than ``parents`` or holds negative values.
        """
        if self.max_count is not None and self.max_count < 0:
            raise ModelError(f"max_count must be None or >= 0, got {self.max_count}")
        if isinstance(counts, pa.ChunkedArray):
            counts = counts.combine_chunks()
        if len(counts) != parents.num_rows:
            raise ModelError(
                f"counts has {len(counts)} values but parents has {parents.num_rows} rows; pass one count per parent"
            )
        values = pc.fill_null(counts, 0).cast(pa.int64())
        if len(values) and pc.min(values).as_py() < 0:
            raise ModelError("counts must be >= 0 (children per parent); found a negative count")
        if self.one_to_one:
            values = pc.min_element_wise(values, pa.scalar(1, pa.int64()))
        context = parents if parents.num_columns else None
        kinds = self.context_kinds
        if context is not None and kinds is not None and not any(Kind(k).is_learned for k in kinds.values()):
            context = None
        self.model_ = GaussianCopulaModel(
            {_COUNT: Kind.NUMERIC},
            kinds,
            max_categories=self.max_categories,
            max_fit_rows=self.max_fit_rows,
            epsilon=self.epsilon,
            privacy=self.privacy,
        ).fit(pa.table({_COUNT: values}), context=context)
        if self.privacy is None and self.epsilon is None:
            self.mean_count_ = float(pc.mean(values).as_py() or 0.0)
        return self

    @property
    def privacy_spent_(self) -> list[Spend]:
        """The Gaussian mechanisms the fit released (empty without DP)."""
        return list(self.model_.privacy_spent_)

    def expected_rank(self, parents: pa.Table) -> np.ndarray:
        """A score per parent row that orders parents by the count their columns predict (no sampling noise).

        The copula's conditional mean of the count's normal score; zeros for a model without parent columns.
        """
        if not hasattr(self, "model_"):
            raise NotFittedError("CopulaCardinalityModel.expected_rank was called before fit")
        if not self.model_.context_marginals_:
            return np.zeros(parents.num_rows)
        offset = 0
        for m in self.model_.marginals_:  # the count's value dimension among the target's latent dimensions
            if m.name == _COUNT:
                offset += int(m.has_null_dim)
                break
            offset += m.dims
        return np.asarray(self.model_.latent_mean(parents)[:, offset], dtype=np.float64)

    def sample(self, parents: pa.Table, *, seed: int) -> pa.Array:
        """One child count per parent row, conditioned on its columns.

        Returns:
            An int64 array without NULLs, ``len(parents)`` long.

        Raises:
            NotFittedError: when called before :meth:`fit`.
        """
        if not hasattr(self, "model_"):
            raise NotFittedError("CopulaCardinalityModel.sample was called before fit; call fit(parents, counts)")
        context = parents if self.model_.context_marginals_ else None
        out = self.model_.sample(n=parents.num_rows, context=context, seed=seed)
        counts = np.asarray(out.column(_COUNT).to_numpy(), dtype=np.int64)
        counts = np.maximum(counts, 0)
        if self.max_count is not None:
            counts = np.minimum(counts, self.max_count)
        if self.one_to_one:
            counts = np.minimum(counts, 1)
        return pa.array(counts, type=pa.int64())
