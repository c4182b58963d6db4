"""The demo's 5% sample end to end under differential privacy (epsilon 1, delta 1e-6), on real Ray and Spark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.demo import build_demo
from pipelines.run import run_pipeline
from schemas.config import load_config
from synth_engine.privacy import PrivacyBudgetError

pytestmark = pytest.mark.usefixtures("ray_session")

FOREIGN_KEYS = [
    ("flights", "carrier", "airlines", "carrier"),
    ("flights", "tailnum", "planes", "tailnum"),
    ("flights", "origin", "airports", "faa"),
    ("flights", "dest", "airports", "faa"),
    ("weather", "origin", "airports", "faa"),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dp") / "demo.sqlite"
    build_demo(path, fraction=0.05)
    return path


def _overrides(demo: Path, tmp: Path, **extra: object) -> dict[str, object]:
    return {
        "source.url": f"sqlite:///{demo}",
        "target.url": f"sqlite:///{tmp / 'synth.sqlite'}",
        "runs_dir": str(tmp / "runs"),
        "privacy.epsilon": 1.0,
        "privacy.delta": 1e-6,
        # a reference table of 16 carriers: no count of 16 survives epsilon 1 within 10%, and it is public data
        "privacy.public": ["airlines"],
        **extra,
    }


def test_demo_with_epsilon_one(demo: Path, tmp_path: Path) -> None:
    # planes trains the neural model (DP-SGD with Opacus), the other tables the copula, under one budget
    over = _overrides(demo, tmp_path, **{"training.tables": {"planes": {"model": "neural", "time_budget_s": 120}}})
    config = load_config(None, overrides=over, environ={})
    result = run_pipeline(config)
    assert result.validation_success is True
    for table, real in result.real_rows.items():
        assert abs(result.synth_rows[table] - real) <= 0.10 * real, table
    engine = sa.create_engine(config.target.url or "")
    with engine.connect() as conn:
        for child, col, parent, ref in FOREIGN_KEYS:
            orphans = conn.execute(
                sa.text(
                    f"SELECT count(*) FROM {child} c LEFT JOIN {parent} p ON c.{col} = p.{ref} "
                    f"WHERE c.{col} IS NOT NULL AND p.{ref} IS NULL"
                )
            ).scalar_one()
            assert orphans == 0, f"{child}.{col}"
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    accounted = manifest["stages"]["train"]["detail"]["privacy"]
    assert accounted["epsilon"] <= 1.0 + 1e-6
    assert accounted["delta"] <= 1e-6
    assert set(accounted["tables"]) == {"airports", "planes", "weather", "flights"}
    flights = accounted["tables"]["flights"]["statistics"]
    assert {"row_count", "model.marginals", "model.correlation", "children_per_parent", "indegree"} <= set(flights)
    assert all(0 < s["epsilon"] <= 1.0 for s in flights.values())
    planes = accounted["tables"]["planes"]["statistics"]
    assert "model.network" in planes and "model.correlation" not in planes
    assert 0 < planes["model.network"]["sampling_rate"] < 1 and planes["model.network"]["releases"] > 1
    models = manifest["stages"]["train"]["detail"]["models"]
    assert models["planes"]["model"] == "neural" and models["planes"]["training"]["steps"] > 0
    assert "privacy_allocation" in manifest["stages"]["plan"]["detail"]
    report = json.loads((result.run_dir / "report" / "report.json").read_text())
    assert report["privacy_budget"]["epsilon"] == accounted["epsilon"]
    assert report["privacy_budget"]["tables"]["weather"]["statistics"]["row_count"]["epsilon"] > 0
    assert "privacy-budget" in (result.run_dir / "report" / "report.html").read_text()


def test_a_budget_that_cannot_cover_the_tables_stops_before_training(demo: Path, tmp_path: Path) -> None:
    over = _overrides(demo, tmp_path, **{"privacy.tables": {"flights": {"epsilon": 1.5}}})
    with pytest.raises(PrivacyBudgetError) as err:
        run_pipeline(load_config(None, overrides=over, environ={}))
    message = str(err.value)
    assert "flights: epsilon 1.5" in message and "weather: a share of what the requests leave" in message
    assert "privacy.public" in message
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["plan"]["status"] == "failed"
    assert manifest["stages"]["train"]["status"] == "pending"


def test_a_public_table_asked_for_as_neural_trains_without_dp_sgd(demo: Path, tmp_path: Path) -> None:
    """airlines is declared public: its neural model trains as without DP and spends nothing."""
    over = _overrides(
        demo, tmp_path, **{"training.tables": {"airlines": {"model": "neural", "time_budget_s": 20}},
                           "report.enabled": False}
    )
    result = run_pipeline(load_config(None, overrides=over, environ={}))
    assert result.validation_success is True
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["stages"]["train"]["detail"]["models"]["airlines"]["model"] == "neural"
    assert "airlines" not in manifest["stages"]["train"]["detail"]["privacy"]["tables"]
