"""generation.rebalance: a categorical column's shares are set; the report shows them reached next to the real ones."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from connectors.demo import build_demo
from pipelines.cli import app
from pipelines.run import run_pipeline
from schemas.config import load_config
from schemas.errors import ConfigError

pytestmark = pytest.mark.usefixtures("ray_session")

WANTED = {"Reciprocating": 0.3, "Turbo-fan": 0.4, "Turbo-jet": 0.3}


def test_a_rare_engine_type_rebalanced_to_30_percent(tmp_path: Path) -> None:
    src = tmp_path / "demo.sqlite"
    build_demo(src, fraction=0.05, seed=3)
    overrides = {
        "source.url": f"sqlite:///{src}",
        "target.url": f"sqlite:///{tmp_path}/t.sqlite",
        "runs_dir": str(tmp_path / "runs"),
        "generation.rebalance": {"planes.engine": WANTED},
    }
    result = run_pipeline(load_config(None, overrides=overrides, environ={}))
    assert result.validation_success
    report = json.loads((result.run_dir / "report" / "report.json").read_text())
    shares = report["rebalance"]["planes.engine"]
    for value, wanted in WANTED.items():
        assert abs(shares[value]["reached"] - wanted) < 0.05, (value, shares[value])
    assert shares["Reciprocating"]["real"] < 0.05  # it was rare
    assert "Rebalanced columns" in (result.run_dir / "report" / "report.html").read_text()

    # synthdb sample: rows under a fixed value, from the same run's model store (nothing retrained)
    out = tmp_path / "reciprocating.parquet"
    args = ["sample", "--run", str(result.run_dir), "--table", "planes", "-n", "300", "--where", "engine=Reciprocating"]
    res = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert res.exit_code == 0, res.output
    planes = pq.read_table(out)
    assert planes.num_rows == 300 and set(planes.column("engine").to_pylist()) == {"Reciprocating"}
    assert len(set(planes.column("year").to_pylist())) > 1  # the rest of the row follows the model
    again = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "again.parquet")])
    assert again.exit_code == 0 and pq.read_table(tmp_path / "again.parquet").equals(planes)
    bad = CliRunner().invoke(app, ["sample", "--run", str(result.run_dir), "--table", "planes", "--where", "tailnum=N1",
                                   "-o", str(tmp_path / "x.parquet")])
    assert bad.exit_code == 2 and "'tailnum' not learned or kept columns of 'planes'" in " ".join(bad.output.split())


def test_rebalancing_a_key_or_unknown_column_is_refused(tmp_path: Path) -> None:
    from connectors.inspect import inspect_source
    from connectors.source import open_source
    from pipelines.run import check_scale
    from schemas.plan import build_plan

    src = tmp_path / "demo.sqlite"
    build_demo(src, fraction=0.01, seed=3)
    source = open_source(f"sqlite:///{src}")
    try:
        schema = inspect_source(source).schema
    finally:
        source.close()
    bad = {"planes.tailnum": {"N1": 1.0}, "planes.engin": {"x": 1.0}}
    config = load_config(None, overrides={"generation.rebalance": bad}, environ={})
    with pytest.raises(ConfigError) as info:
        check_scale(schema, build_plan(schema), config.generation)
    assert "'planes.tailnum' is id" in str(info.value) and "unknown column 'planes.engin'" in str(info.value)
    with pytest.raises(ConfigError, match="sum to 1"):
        load_config(None, overrides={"generation.rebalance": {"planes.engine": {"Turbo-fan": 0.5}}}, environ={})
