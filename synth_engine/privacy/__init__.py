"""Differential privacy: one budget over every statistic a run learns, Gaussian mechanisms, one RDP accountant.

- :class:`Budget` splits ``(epsilon, delta)`` over tables and statistics (explicit, reported shares);
- :mod:`synth_engine.privacy.mechanisms` holds the DP version of each statistic (counts, NULL shares,
  thresholded vocabularies, numeric ranges and histograms, children-per-parent counts (the largest one by one, a
  histogram of the others), grid steps, the copula's second moment);
- :class:`Accountant` composes what was actually spent with ``dp_accounting``'s RDP accountant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from synth_engine.privacy.accounting import (
    DEFAULT_SHARES,
    NOT_COVERED,
    STATISTICS,
    Accountant,
    Budget,
    PrivacyBudgetError,
    Spend,
    TableAllocation,
    calibrate_multiplier,
    calibrate_sgd_noise,
    optimal_order,
)


@dataclass(frozen=True)
class CopulaPrivacy:
    """How a Gaussian copula learns under DP.

    Attributes:
        table: the table whose rows are learned (for the accounting).
        marginals: noise multiplier of all the model's marginals together (None: every marginal is public).
        correlation: noise multiplier of the correlation (None: public).
        prefix: the statistics' prefix in the accounting (``model`` or ``cardinality``).
        sensitivity: 1 when a neighbouring table adds or removes a row; 2 when it changes one (the cardinality
            model's parents: a child row changes its parent's count).
        selection_delta: the delta of all the model's thresholded vocabularies together.
        public_columns: columns whose marginal is computed exactly (declared public).
        nullable: columns that may hold NULLs (the others get a NULL share of 0 without noise); None: all.
    """

    table: str
    marginals: float | None
    correlation: float | None
    prefix: str = "model"
    sensitivity: float = 1.0
    selection_delta: float = 0.0
    public_columns: frozenset[str] = frozenset()
    nullable: frozenset[str] | None = None

    @classmethod
    def from_epsilon(cls, epsilon: float, delta: float = 1e-6, *, table: str = "target") -> CopulaPrivacy:
        """A model alone with budget ``(epsilon, delta)``: 60% to the marginals, 40% to the correlation."""
        m = calibrate_multiplier(epsilon, delta / 2)
        return cls(table, m / math.sqrt(0.6), m / math.sqrt(0.4), selection_delta=delta / 2)


@dataclass(frozen=True)
class NetworkPrivacy:
    """How the neural model learns under DP: DP marginals (as the copula's), then DP-SGD for the network.

    Attributes:
        table: the table whose rows are learned (for the accounting).
        marginals: noise multiplier of all the model's marginals together (None: every marginal is public).
        network: the training's share of the budget, as the noise multiplier of one Gaussian mechanism; DP-SGD's
            noise is calibrated to cost no more at ``order`` (see :func:`calibrate_sgd_noise`). None: public.
        order: the Renyi order at which the run's budget is reached.
        prefix: the statistics' prefix in the accounting.
        sensitivity: the marginals' sensitivity (1: a neighbouring table adds or removes a row).
        selection_delta: the delta of all the model's thresholded vocabularies together.
        public_columns: columns whose marginal is computed exactly (declared public).
        nullable: columns that may hold NULLs; None: all.
        max_grad_norm: each row's gradient is clipped to this L2 norm.
        epochs: passes over the rows (in expectation: batches are Poisson samples); no early stopping, which
            would read the data outside the budget.
    """

    table: str
    marginals: float | None
    network: float | None
    order: float
    prefix: str = "model"
    sensitivity: float = 1.0
    selection_delta: float = 0.0
    public_columns: frozenset[str] = frozenset()
    nullable: frozenset[str] | None = None
    max_grad_norm: float = 1.0
    epochs: int = 10

    @classmethod
    def from_epsilon(cls, epsilon: float, delta: float = 1e-6, *, table: str = "target") -> NetworkPrivacy:
        """A model alone with budget ``(epsilon, delta)``: 50% to the marginals, 50% to the training."""
        m = calibrate_multiplier(epsilon, delta / 2)
        return cls(table, m / math.sqrt(0.5), m / math.sqrt(0.5), optimal_order(m, delta / 2), selection_delta=delta / 2)


__all__ = [
    "DEFAULT_SHARES",
    "NOT_COVERED",
    "STATISTICS",
    "Accountant",
    "Budget",
    "CopulaPrivacy",
    "NetworkPrivacy",
    "PrivacyBudgetError",
    "Spend",
    "TableAllocation",
    "calibrate_multiplier",
    "calibrate_sgd_noise",
    "optimal_order",
]
