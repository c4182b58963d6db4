"""A run a person can follow: each progress line once, the noise (JVM, Ray, warnings) in the run's log, and
``--quiet`` / ``--json`` for scripts.

The run is a real process (``python -m pipelines.cli run``), since what matters is what reaches a terminal's
standard error: the JVM and Ray write there below Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.tricky import create_tricky_schema

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('console')}/src.sqlite"
    create_tricky_schema(url, rows=200)
    return url


def _run(source: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp / "run.yaml"
    tmp.mkdir(parents=True, exist_ok=True)
    cfg.write_text("generation:\n  seed: 5\nreport:\n  enabled: false\n")
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "--source", source, "--target", f"sqlite:///{tmp}/out.sqlite",
           "--config", str(cfg), "--runs-dir", str(tmp / "runs"), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_progress_lines_once_and_the_noise_in_the_run_log(source: str, tmp_path: Path) -> None:
    done = _run(source, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    err = done.stderr
    for noise in ("log4j", "WARN Utils", "NativeCodeLoader", "incubator modules", "Token authentication"):
        assert noise not in err, f"{noise!r} reached the console:\n{err}"
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    assert len(lines) == len(set(lines)), f"a line was printed twice:\n{err}"
    assert "INFO" not in err  # INFO records are in the log; the progress lines say the same once
    assert "synthetic rows" in err and "staging area swapped into the live target" in err
    (run_dir,) = (tmp_path / "runs").iterdir()
    log = (run_dir / "run.log").read_text()
    assert "log4j" in log or "WARN" in log  # the JVM's lines were kept, in the log
    assert "INFO pipelines" in log or "INFO connectors" in log  # and the run's own records
    assert f"run log: {run_dir / 'run.log'}" in done.stdout


def test_quiet_json_prints_the_result_and_no_progress(source: str, tmp_path: Path) -> None:
    done = _run(source, tmp_path, "--json", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert all("WARNING" in ln or not ln.strip() or ln.startswith(" ") for ln in done.stderr.splitlines()), done.stderr
    result = json.loads(done.stdout)  # standard output holds the JSON and nothing else
    assert result["validation"]["success"] is True and result["seed"] == 5
    assert sum(result["rows"]["synthetic"].values()) > 0 and Path(result["run_dir"]).is_dir()
