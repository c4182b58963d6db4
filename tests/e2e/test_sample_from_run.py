"""``synthdb sample --run RUN --target URL``: a whole new database from a finished run's models, at a new scale and
seed, with nothing retrained and the source never read.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.demo import build_demo
from pipelines.cli import app
from pipelines.manifest import Manifest
from pipelines.run import run_pipeline
from schemas.config import load_config

pytestmark = pytest.mark.usefixtures("ray_session")


def _rows(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}


def test_sample_a_whole_database_again_at_twice_the_scale_without_the_source(tmp_path: Path) -> None:
    src = tmp_path / "demo.sqlite"
    build_demo(src, fraction=0.05, seed=5)
    runs = tmp_path / "runs"
    first = run_pipeline(load_config(None, overrides={
        "source.url": f"sqlite:///{src}", "target.url": f"sqlite:///{tmp_path}/first.sqlite", "runs_dir": str(runs),
        "generation.seed": 3,
    }, environ={}))
    assert first.validation_success
    src.rename(tmp_path / "gone.sqlite")  # the source is not read: it is not even there

    target = tmp_path / "again.sqlite"
    args = ["sample", "--run", first.run_id, "--runs-dir", str(runs), "--target", f"sqlite:///{target}",
            "--scale", "2", "--seed", "8", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["run_id"] != first.run_id and out["seed"] == 8
    assert out["validation"]["success"] is True

    # twice the rows, every table full, every key valid (validation above checks the foreign keys)
    before, after = _rows(tmp_path / "first.sqlite"), _rows(target)
    assert set(after) == set(before)
    assert all(after[t] > 0 for t in after), after
    ratio = sum(after.values()) / sum(before.values())
    assert 1.7 < ratio < 2.3, (before, after)

    # nothing retrained: the new run took the first run's stages and files as they are (same checksums)
    old, new = Manifest.load(first.run_dir), Manifest.load(Path(out["run_dir"]))
    for stage in ("inspect", "extract", "train"):
        assert new.stages[stage].detail.get("from_run") == first.run_id, stage
        assert new.stages[stage].outputs == old.stages[stage].outputs, stage
    assert new.stages["train"].seconds == 0.0
    assert new.stages["generate"].status == "done" and new.stages["generate"].detail.get("from_run") is None
    assert new.config["generation"]["scale"] == 2 and new.status == "done"
    assert (Path(out["run_dir"]) / "report" / "report.json").exists()  # scored against the first run's real copies

    # the same run, seed and scale again give the same database
    again = tmp_path / "again2.sqlite"
    res2 = CliRunner().invoke(app, [*args[:6], f"sqlite:///{again}", *args[7:]])
    assert res2.exit_code == 0, res2.output
    with sqlite3.connect(target) as a, sqlite3.connect(again) as b:
        for t in after:
            assert sorted(a.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) == sorted(
                b.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr
            ), t

    # a model store that changed since the run is refused, naming the stage and the file
    victim = next(p for p in sorted((first.run_dir / "models").rglob("*")) if p.is_file())
    victim.write_bytes(victim.read_bytes() + b"x")
    bad = CliRunner().invoke(app, [*args[:6], f"sqlite:///{tmp_path}/bad.sqlite", *args[7:]])
    assert bad.exit_code == 2, bad.output
    said = " ".join(bad.output.split())
    assert "train stage changed or are missing" in said and victim.name in said
    assert not (tmp_path / "bad.sqlite").exists()


def test_sample_refuses_unknown_runs_and_mixed_modes(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["sample", "--run", "nope", "--runs-dir", str(tmp_path), "--target",
                              f"sqlite:///{tmp_path}/t.sqlite"])
    assert res.exit_code == 2 and "no run 'nope'" in " ".join(res.output.split())
    res = runner.invoke(app, ["sample", "--run", "nope", "--runs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "give --target URL" in " ".join(res.output.split())
    res = runner.invoke(app, ["sample", "--run", "nope", "--table", "planes", "--target", "sqlite:///x.sqlite"])
    assert res.exit_code == 2 and "not both" in " ".join(res.output.split())
    res = runner.invoke(app, ["sample", "--run", "nope", "--table", "planes", "--scale", "2", "-o", "x.parquet"])
    assert res.exit_code == 2 and "--scale applies to a whole database" in " ".join(res.output.split())
