"""Which model each table trains: ``training.model`` (copula | neural | auto), globally and per table.

The choice is made on the driver, before any task starts, so that only a neural task asks Ray for a GPU (and only
where the cluster has one). ``auto`` decides from the table's size, the time budget, the hardware and the privacy
setting, and says why; the reason is logged and kept with the table's artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.config import RunConfig

Model = Literal["copula", "neural"]

AUTO_MIN_ROWS = 5_000
"""Below this many training rows a network has too little to learn from: the copula is as good and far faster."""

CPU_ROW_EPOCHS_PER_S = 14_000.0
"""Rows times epochs the neural model trains per second on one CPU core (a training task has one): measured on
the demo's ``flights`` (200k rows, 16 columns: 43 epochs in 300 s on 2 threads)."""
GPU_ROW_EPOCHS_PER_S = 1_000_000.0
"""The same on a GPU: an estimate, not measured here (no GPU was lent); ``auto`` picks the network when
:data:`AUTO_MIN_EPOCHS` epochs fit the table's time budget at these speeds."""

AUTO_MIN_EPOCHS = 8
"""Epochs a neural model needs within its time budget before ``auto`` prefers it to the copula."""


@dataclass(frozen=True)
class ModelChoice:
    """The model one table trains, and why."""

    table: str
    model: Model
    reason: str
    time_budget_s: float
    gpu: bool = False


def dp_model(table: str, config: RunConfig) -> str:
    """The model ``table`` trains under differential privacy: neural only when asked for by name (DP-SGD), the
    copula otherwise (``auto`` included: its few statistics cost the budget less than DP-SGD's steps)."""
    override = config.training.tables.get(table)
    asked = (override.model if override and override.model else None) or config.training.model
    return "neural" if asked == "neural" else "copula"


def choose_model(table: str, rows: int, config: RunConfig, *, gpu: bool) -> ModelChoice:
    """The model ``table`` trains on ``rows`` training rows (``gpu``: the cluster has one and may use it)."""
    override = config.training.tables.get(table)
    asked = (override.model if override and override.model else None) or config.training.model
    budget = (
        override.time_budget_s if override and override.time_budget_s else None
    ) or config.training.time_budget_s
    dp = config.privacy.epsilon is not None
    if asked == "copula":
        return ModelChoice(table, "copula", "training.model is copula", budget)
    if asked == "neural":
        return ModelChoice(table, "neural", "training.model is neural", budget, gpu=gpu)
    if dp:
        return ModelChoice(
            table, "copula", "auto: differential privacy is on: the copula's statistics cost the budget less than "
            "DP-SGD", budget
        )
    if rows < AUTO_MIN_ROWS:
        return ModelChoice(table, "copula", f"auto: {rows:,} training rows < {AUTO_MIN_ROWS:,}", budget)
    speed = GPU_ROW_EPOCHS_PER_S if gpu else CPU_ROW_EPOCHS_PER_S
    epochs = budget * speed / rows
    where = "the GPU" if gpu else "one CPU core"
    if epochs < AUTO_MIN_EPOCHS:
        return ModelChoice(
            table,
            "copula",
            f"auto: {rows:,} rows allow only ~{epochs:.1f} epochs in {budget:.0f} s on {where} (< {AUTO_MIN_EPOCHS})",
            budget,
        )
    return ModelChoice(
        table,
        "neural",
        f"auto: {rows:,} training rows, ~{min(epochs, 999):.0f} epochs fit in {budget:.0f} s on {where}",
        budget,
        gpu=gpu,
    )
