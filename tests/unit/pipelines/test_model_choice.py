"""training.model: copula | neural | auto, globally and per table, and why auto picks what it picks."""

from __future__ import annotations

from pipelines.stages._models import AUTO_MIN_ROWS, choose_model
from schemas.config import load_config


def _config(**overrides: object):  # type: ignore[no-untyped-def]
    return load_config(overrides=overrides, environ={})


def test_explicit_choices_and_per_table_overrides() -> None:
    cfg = _config(**{"training.model": "neural", "training.tables": {"small": {"model": "copula", "time_budget_s": 5}}})
    assert choose_model("big", 10, cfg, gpu=False).model == "neural"
    small = choose_model("small", 10**6, cfg, gpu=True)
    assert small.model == "copula" and small.time_budget_s == 5 and not small.gpu
    assert choose_model("big", 10, cfg, gpu=True).gpu


def test_auto_picks_by_size_budget_hardware_and_privacy() -> None:
    cfg = _config(**{"training.model": "auto", "training.time_budget_s": 600})
    tiny = choose_model("t", AUTO_MIN_ROWS - 1, cfg, gpu=False)
    assert tiny.model == "copula" and "training rows <" in tiny.reason
    mid = choose_model("t", 200_000, cfg, gpu=False)
    assert mid.model == "neural" and "epochs fit in 600 s on one CPU core" in mid.reason
    huge = choose_model("t", 10**9, cfg, gpu=False)
    assert huge.model == "copula" and "epochs in 600 s" in huge.reason
    assert choose_model("t", 10**7, cfg, gpu=True).model == "neural"  # the GPU trains it in time
    short = _config(**{"training.model": "auto", "training.time_budget_s": 1})
    assert choose_model("t", 200_000, short, gpu=False).model == "copula"
    dp = _config(**{"training.model": "auto", "privacy.epsilon": 1.0})
    private = choose_model("t", 200_000, dp, gpu=True)
    assert private.model == "copula" and "differential privacy" in private.reason
