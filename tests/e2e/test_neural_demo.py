"""The demo end to end with ``training.model: neural`` (real Ray, real Spark): every key valid, and the manifest
says which model each table trained, why, and how the network's training went."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.demo import build_demo
from pipelines.run import run_pipeline
from schemas.config import load_config

pytestmark = pytest.mark.usefixtures("ray_session")


def test_demo_with_the_neural_model_and_a_per_table_override(tmp_path: Path) -> None:
    src = tmp_path / "demo.sqlite"
    build_demo(src, fraction=0.05, seed=3)
    overrides = {
        "source.url": f"sqlite:///{src}",
        "target.url": f"sqlite:///{tmp_path}/t.sqlite",
        "runs_dir": str(tmp_path / "runs"),
        "training.model": "neural",
        "training.time_budget_s": 20,
        "training.tables": {"planes": {"model": "copula"}},
        "report.enabled": False,
    }
    result = run_pipeline(load_config(None, overrides=overrides, environ={}))
    assert result.validation_success is True, result.validation_failures
    models = json.loads((result.run_dir / "manifest.json").read_text())["stages"]["train"]["detail"]["models"]
    assert models["planes"] == {"model": "copula", "reason": "training.model is copula"}
    flights = models["flights"]
    assert flights["model"] == "neural" and flights["training"]["device"] == "cpu"
    assert flights["training"]["seconds"] <= 20 + 5 and flights["training"]["epochs"] >= 1
