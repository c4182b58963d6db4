"""``synthdb run --resume``: a driver SIGKILLed inside any stage resumes to the output of an uninterrupted run.

Each case starts ``synthdb run`` on the demo's 5% sample as its own process, waits until the manifest says the stage
is running, and kills the driver with SIGKILL (then whatever it had started: Ray's workers and the JVM, as a lost
node would lose them). The live target must be untouched, and ``run --resume`` must reuse every stage before the
killed one (their outputs verified by checksum), run the rest, and give the same target, table by table and row
by row, as one uninterrupted run with the same seed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.digest import sqlite_digest
from typer.testing import CliRunner

from connectors.demo import build_demo
from pipelines.cli import app
from pipelines.run import run_pipeline
from schemas.config import load_config

pytestmark = pytest.mark.usefixtures("ray_session")

REPO = Path(__file__).resolve().parents[2]
KILLED_IN = ["extract", "train", "generate", "write", "validate"]
BEFORE = {s: ["extract", "train", "generate", "write", "validate"][: i] for i, s in enumerate(KILLED_IN)}


def _config_file(tmp: Path, demo: Path, target: Path) -> Path:
    cfg = tmp / "run.yaml"
    cfg.write_text(
        f"source:\n  url: sqlite:///{demo}\ntarget:\n  url: sqlite:///{target}\nruns_dir: {tmp / 'runs'}\n"
        "generation:\n  seed: 11\nreport:\n  enabled: false\n"
    )
    return cfg


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "demo.sqlite"
    build_demo(path, fraction=0.05)
    return path


@pytest.fixture(scope="module")
def reference(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("reference")
    target = tmp / "synthetic.sqlite"
    result = run_pipeline(load_config(_config_file(tmp, demo, target), environ={}))
    assert result.validation_success is True
    return sqlite_digest(target)


def _kill_inside(stage: str, cfg: Path, runs: Path) -> Path:
    """Start a run as its own process and SIGKILL it while the manifest says ``stage`` is running."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--config", str(cfg)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the run ended before its {stage} stage: {proc.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
            for path in runs.glob("*/manifest.json"):
                try:
                    status = json.loads(path.read_text())["stages"][stage]["status"]
                except (ValueError, KeyError):  # caught between write and rename: look again
                    continue
                if status == "running":
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return path.parent
            time.sleep(0.01)
        pytest.fail(f"the run never reached its {stage} stage")
    finally:
        try:  # what the driver had started (Ray's workers, the JVM) goes with it, as on a lost node
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    raise AssertionError("unreachable")


@pytest.mark.parametrize("stage", KILLED_IN)
def test_a_run_killed_inside_a_stage_resumes_to_the_uninterrupted_output(
    stage: str, demo: Path, reference: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "synthetic.sqlite"
    cfg = _config_file(tmp_path, demo, target)
    run_dir = _kill_inside(stage, cfg, tmp_path / "runs")
    killed = json.loads((run_dir / "manifest.json").read_text())
    assert killed["status"] == "running" and killed["stages"][stage]["status"] == "running"
    assert not target.exists(), "a killed run touched the live target"
    if stage == "validate":  # a damaged output is found by its checksum: generate runs again, not train
        part = sorted((run_dir / "synth" / "flights").glob("part-*.parquet"))[0]
        part.write_bytes(part.read_bytes()[:-1] + b"\0")
    resumed_before = BEFORE[stage] if stage != "validate" else ["extract", "train"]

    res = CliRunner().invoke(app, ["run", "--resume", run_dir.name, "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["committed_at"]
    assert [r["status"] for r in manifest["resumed"]] == ["running"]
    reused = [s for s, r in manifest["stages"].items() if r["detail"].get("reused")]
    assert reused == [s for s in resumed_before if s not in ("write", "validate")]
    for name in ("extract", "train", "generate", "validate"):
        assert manifest["stages"][name]["status"] == "done" and manifest["stages"][name]["outputs"], name
    assert sqlite_digest(target) == reference


def test_resume_refuses_what_it_cannot_continue(demo: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    missing = CliRunner().invoke(app, ["run", "--resume", "nope", "--runs-dir", str(runs)])
    assert missing.exit_code == 2 and "no run 'nope'" in " ".join(missing.output.split())
    run_dir = runs / "20261201T000000Z-abcdef"
    run_dir.mkdir(parents=True)
    config = json.loads(load_config(_config_file(tmp_path, demo, tmp_path / "t.sqlite"), environ={}).model_dump_json())
    manifest = {"run_id": run_dir.name, "run_dir": str(run_dir), "status": "done", "config": config,
                "seed": {"value": 11, "source": "config"}, "stages": {}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    done = CliRunner().invoke(app, ["run", "--resume", run_dir.name, "--runs-dir", str(runs)])
    assert done.exit_code == 2 and "the run finished" in " ".join(done.output.split())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "status": "failed"}))
    changed = CliRunner().invoke(
        app, ["run", "--resume", run_dir.name, "--config", str(tmp_path / "run.yaml"), "--scale", "0.5"]
    )
    assert changed.exit_code == 2, changed.output
    assert "generation.scale: 1.0 in the run, 0.5 now" in " ".join(changed.output.split())
