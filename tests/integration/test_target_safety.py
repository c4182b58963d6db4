"""The target is never destroyed and killed runs leave nothing behind, with real processes and real databases.

A kind check and ``target.if_exists`` refuse before any engine starts (exit 2); one run per target at a time (a
lock; exit 1 for the second); staging areas, Spark warm-up folders and real-data copies of killed processes are
removed by the next run or ``synthdb clean``, and a live owner's never are.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fixtures.staging import staging_areas
from typer.testing import CliRunner

from connectors.debris import sweep_spark_temp, sweep_target
from connectors.staging import staging_for
from connectors.target_guard import check_if_exists, check_target_kind, lock_target
from pipelines.cli import app
from pipelines.manifest import Manifest
from schemas.config import load_config
from schemas.errors import TargetBusy, TargetInputError
from schemas.model import Column, DatabaseSchema, PrimaryKey, Table

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _tiny_source(path: Path) -> str:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT)")
        con.executemany("INSERT INTO item VALUES (?, ?)", [(i, f"l{i % 3}") for i in range(20)])
    con.close()
    return f"sqlite:///{path}"


def _schema() -> DatabaseSchema:
    return DatabaseSchema(
        dialect="sqlite",
        tables=[
            Table(
                name="item",
                columns=[Column(name="id", type="INTEGER", nullable=False), Column(name="label", type="TEXT")],
                primary_key=PrimaryKey(columns=["id"]),
            )
        ],
    ).validate_all()


@pytest.fixture
def no_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if Ray or Spark is started: every refusal here must come before them."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an engine was started")

    monkeypatch.setattr("pipelines.ray_runtime.init_ray", boom)
    monkeypatch.setattr("connectors.spark.session.start_spark_in_background", boom)


def _python(code: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )


def _killed_after(code: str) -> None:
    """Run ``code`` in a fresh process that then SIGKILLs itself (nothing of Python's clean-up runs)."""
    proc = _python(textwrap.dedent(code) + "\nimport os, signal; os.kill(os.getpid(), signal.SIGKILL)\n")
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _holding(code: str) -> subprocess.Popen[str]:
    """Start a process that runs ``code``, prints 'ready' and sleeps until killed."""
    proc = _python(textwrap.dedent(code) + "\nprint('ready', flush=True)\nimport time; time.sleep(120)\n")
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


# --- the target's kind -----------------------------------------------------------------------------------------


def test_a_text_file_as_sqlite_target_is_refused_before_any_engine(tmp_path: Path, no_engines: None) -> None:
    src = _tiny_source(tmp_path / "src.sqlite")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n")
    res = runner.invoke(app, ["run", "--source", src, "--target", f"sqlite:///{notes}", "--runs-dir",
                              str(tmp_path / "runs")])
    assert res.exit_code == 2, res.output
    assert str(notes) in res.output and "not a SQLite database" in res.output and "choose a new path" in res.output
    assert notes.read_text() == "my notes, not a database\n"
    assert not (tmp_path / "runs").exists()  # refused before the run directory


def test_an_empty_file_is_an_empty_sqlite_database_and_a_folder_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    check_target_kind(f"sqlite:///{empty}")  # accepted: SQLite treats a 0-byte file as an empty database
    with pytest.raises(TargetInputError, match="not a file"):
        check_target_kind(f"sqlite:///{tmp_path}")


# --- target.if_exists ------------------------------------------------------------------------------------------


def test_if_exists_fail_refuses_a_sqlite_target_with_tables(tmp_path: Path, no_engines: None) -> None:
    src = _tiny_source(tmp_path / "src.sqlite")
    target = tmp_path / "out.sqlite"
    with sqlite3.connect(target) as con:
        con.execute("CREATE TABLE precious (x INTEGER)")
    con.close()
    before = target.read_bytes()
    cfg = tmp_path / "synthdb.yaml"
    cfg.write_text(f"target: {{url: 'sqlite:///{target}', if_exists: fail}}\n")
    res = runner.invoke(app, ["run", "--source", src, "--config", str(cfg), "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2, res.output
    assert "if_exists is 'fail'" in res.output and "precious" in res.output
    assert target.read_bytes() == before
    assert not target.with_name("out.sqlite.synthdb-lock").exists()  # the lock was released


@pytest.mark.server
@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_if_exists_fail_refuses_a_server_target_holding_a_table_to_write(
    dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "mariadb_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE other (x INTEGER)"))
    check_if_exists(url, "fail", ["item"])  # an unrelated table is no reason to refuse
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE item (x INTEGER)"))
    engine.dispose()
    with pytest.raises(TargetInputError, match="if_exists is 'fail'.*item") as info:
        check_if_exists(url, "fail", ["item"])
    assert info.value.exit_code == 2
    check_if_exists(url, "replace", ["item"])  # replace keeps today's swap


# --- one run per target ----------------------------------------------------------------------------------------


def test_a_second_run_into_a_locked_sqlite_target_fails_at_once(tmp_path: Path, no_engines: None) -> None:
    src = _tiny_source(tmp_path / "src.sqlite")
    target = f"sqlite:///{tmp_path}/out.sqlite"
    holder = _holding(f"from connectors.target_guard import lock_target\nlock = lock_target({target!r}, "
                      "run_id='first-run')")
    try:
        res = runner.invoke(app, ["run", "--source", src, "--target", target, "--runs-dir", str(tmp_path / "r")])
        assert res.exit_code == 1, res.output
        assert "being written by another synthdb run" in res.output and "first-run" in res.output
    finally:
        holder.kill()
        holder.wait()
    # the OS released the killed holder's lock: the next run may take it
    lock_target(target, run_id="next").release()


@pytest.mark.server
@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_a_second_run_into_a_locked_server_target_fails_at_once(dialect: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "mariadb_url")
    holder = _holding(f"from connectors.target_guard import lock_target\nlock = lock_target({url!r}, "
                      "run_id='first-run')")
    try:
        with pytest.raises(TargetBusy, match="another synthdb run") as info:
            lock_target(url, run_id="second-run")
        assert info.value.exit_code == 1 and info.value.retryable
        if dialect == "postgresql":
            assert "first-run" in info.value.message
        else:
            assert "MariaDB connection" in info.value.message
    finally:
        holder.kill()
        holder.wait()
    lock_target(url, run_id="next").release()  # the server ended the killed session, and its lock


# --- debris of killed processes --------------------------------------------------------------------------------


def test_a_killed_processs_staging_area_is_removed_and_a_live_ones_kept(db_url: str) -> None:
    code = f"""
    from connectors.staging import staging_for
    from schemas.model import Column, DatabaseSchema, PrimaryKey, Table
    _schema = lambda: DatabaseSchema(dialect="sqlite", tables=[Table(name="item", columns=[
        Column(name="id", type="INTEGER", nullable=False), Column(name="label", type="TEXT")],
        primary_key=PrimaryKey(columns=["id"]))]).validate_all()
    staging_for({db_url!r}, run_id="killed01").prepare(_schema())
    """
    _killed_after(code)
    left = staging_areas(db_url, backups=False)
    assert len(left) >= 1 and any("killed01" in n for n in left), left
    live = staging_for(db_url, run_id="live0022")
    live.prepare(_schema())
    try:
        removed = sweep_target(db_url)
        assert any("killed01" in n for n in removed)
        names = staging_areas(db_url, backups=False)
        assert not any("killed01" in n for n in names)
        assert any("live0022" in n for n in names)  # its owner (this process) lives
    finally:
        live.abort()
    assert staging_areas(db_url, backups=False) == []


def test_the_next_run_removes_the_staging_file_a_killed_run_left(tmp_path: Path, no_engines: None) -> None:
    from pipelines._internal.target_claim import claim_target

    target = f"sqlite:///{tmp_path}/out.sqlite"
    _killed_after(f"""
    from connectors.staging import staging_for
    from schemas.model import Column, DatabaseSchema, PrimaryKey, Table
    _schema = lambda: DatabaseSchema(dialect="sqlite", tables=[Table(name="item", columns=[
        Column(name="id", type="INTEGER", nullable=False), Column(name="label", type="TEXT")],
        primary_key=PrimaryKey(columns=["id"]))]).validate_all()
    staging_for({target!r}, run_id="killed01").prepare(_schema())
    """)
    assert staging_areas(target, backups=False)
    config = load_config(None, overrides={"source.url": "sqlite:///x.sqlite", "target.url": target}, environ={})
    claim_target(config, "nextrun").release()
    assert staging_areas(target, backups=False) == []


def test_clean_cli_removes_a_killed_runs_staging_area(tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path}/out.sqlite"
    _killed_after(f"""
    from connectors.staging import staging_for
    from schemas.model import Column, DatabaseSchema, PrimaryKey, Table
    _schema = lambda: DatabaseSchema(dialect="sqlite", tables=[Table(name="item", columns=[
        Column(name="id", type="INTEGER", nullable=False), Column(name="label", type="TEXT")],
        primary_key=PrimaryKey(columns=["id"]))]).validate_all()
    staging_for({target!r}, run_id="killed01").prepare(_schema())
    """)
    res = runner.invoke(app, ["clean", "--target", target])
    assert res.exit_code == 0, res.output
    assert "removed staging area" in res.output and "killed01" in res.output
    assert staging_areas(target, backups=False) == []


def test_spark_warm_up_folders_of_dead_processes_are_removed() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = Path(tempfile.gettempdir())
    gone = Path(tempfile.mkdtemp(prefix=f"synthdb-spark-warmup-{dead.pid}-", dir=tmp))
    (gone / "w.sqlite").write_bytes(b"x")
    mine = Path(tempfile.mkdtemp(prefix=f"synthdb-spark-warmup-{os.getpid()}-", dir=tmp))
    try:
        removed = sweep_spark_temp()
        assert str(gone) in removed and not gone.exists()
        assert mine.is_dir()
    finally:
        mine.rmdir()


def test_clean_marks_a_killed_run_and_deletes_its_real_data_copies(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _killed_after(f"""
    from pathlib import Path
    from pipelines.manifest import Manifest
    m = Manifest.create(Path({str(runs)!r}), run_id="killed-run")
    with m.stage("extract"):
        for area in ("real", "holdout"):
            (m.run_dir / area / "item").mkdir(parents=True)
            (m.run_dir / area / "item" / "part-0.parquet").write_bytes(b"real rows" * 1000)
        (m.run_dir / "report").mkdir()
        (m.run_dir / "report" / "report.json").write_text("{{}}")
        import os, signal; os.kill(os.getpid(), signal.SIGKILL)
    """)
    live = Manifest.create(runs, run_id="live-run")  # this process: alive
    (live.run_dir / "real").mkdir()
    res = runner.invoke(app, ["clean", "--runs-dir", str(runs)])
    assert res.exit_code == 0, res.output
    assert "killed-run: marked killed" in res.output
    killed = runs / "killed-run"
    data = json.loads((killed / "manifest.json").read_text())
    assert data["status"] == "killed" and data["stages"]["extract"]["status"] == "killed"
    assert not (killed / "real").exists() and not (killed / "holdout").exists()
    assert (killed / "report" / "report.json").exists()
    assert json.loads(live.path.read_text())["status"] == "running" and (live.run_dir / "real").is_dir()
