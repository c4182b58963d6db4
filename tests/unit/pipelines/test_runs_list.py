"""``synthdb runs``: every run under a folder, newest first, with its status and headline scores."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.runs import list_runs


def _run(runs: Path, run_id: str, status: str, *, pid: int = 1, report: dict | None = None, **extra: object) -> None:
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    manifest = {
        "run_id": run_id, "status": status, "created_at": "2026-12-01T00:00:00+00:00",
        "config": {"source": {"url": "sqlite:///real.db"}, "target": {"url": "sqlite:///synth.db"}},
        "owner": {"pid": pid, "host": socket.gethostname(), "started": -1},
        "stages": {"generate": {"rows": {"a": 10, "b": 5}, "seconds": 2.0}, "train": {"seconds": 1.5}},
        **extra,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    if report is not None:
        (run_dir / "report").mkdir()
        (run_dir / "report" / "report.json").write_text(json.dumps({"headline": report}))


def test_runs_are_listed_newest_first_with_status_rows_and_scores(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _run(runs, "20261201T000000Z-aaaaaa", "done", committed_at="x", resumed=[{"status": "running"}], report={
        "overall": {"score": 0.93, "status": "pass"}, "dcr_share": {"score": 0.61, "status": "warn"},
        "mia_auc": {"score": 0.5, "status": "pass"}, "detection": {"score": 0.9, "status": "warn"},
    })
    _run(runs, "20261202T000000Z-bbbbbb", "running", pid=2**22 + 12345)  # no such process: it died
    _run(runs, "20261203T000000Z-cccccc", "failed", error="validation failed")
    (runs / "demo").mkdir()  # not a run: no manifest
    found = list_runs(runs)
    assert [r.run_id[-6:] for r in found] == ["cccccc", "bbbbbb", "aaaaaa"]
    failed, killed, done = found
    assert failed.status == "failed" and failed.error == "validation failed"
    assert killed.status == "killed" and killed.headline == {}
    assert done.status == "done" and done.committed and done.resumed == 1
    assert done.synthetic_rows == 15 and done.seconds == 3.5
    assert done.headline == {"overall": 0.93, "dcr_share": 0.61, "mia_auc": 0.5}
    assert done.warnings == ["dcr_share", "detection"]

    res = CliRunner().invoke(app, ["runs", "--runs-dir", str(runs), "--json", "--limit", "2"])
    assert res.exit_code == 0, res.output
    assert [r["status"] for r in json.loads(res.output)] == ["failed", "killed"]
    res = CliRunner().invoke(app, ["runs", "--runs-dir", str(runs)], env={"COLUMNS": "160"})
    assert res.exit_code == 0 and "done, resumed 1x" in res.output and "0.930" in res.output


def test_an_empty_or_missing_folder_lists_nothing(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["runs", "--runs-dir", str(tmp_path / "none")])
    assert res.exit_code == 0 and "no runs under" in res.output
