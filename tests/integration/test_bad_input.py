"""Bad input: one clear message naming the table and column and the fix, exit code 2, before any engine starts.

Each case goes through the CLI (``synthdb run``) as a script sees it. Ray and Spark are replaced by stubs that
fail the test when called: a case caught before the engines start must never reach them, and a case caught later
(inspect, plan, extract) must not need them either, so these tests run in seconds.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from connectors.source import open_source
from pipelines.cli import app
from pipelines.stages.extract import read_orphans, run_extract
from pipelines.workspace import Workspace
from schemas.errors import SourceInputError

runner = CliRunner()


class EngineStarted(AssertionError):
    pass


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ray and Spark stubs: each call is recorded, and fails the run (a real engine must not be needed)."""
    import connectors.spark.session as spark_session
    from pipelines import ray_runtime

    started: list[str] = []

    def stub(name: str):  # type: ignore[no-untyped-def]
        def start(*args: object, **kwargs: object) -> None:
            started.append(name)

        return start

    monkeypatch.setattr(spark_session, "start_spark_in_background", stub("spark"))
    monkeypatch.setattr(ray_runtime, "init_ray", stub("ray"))
    monkeypatch.setattr(ray_runtime, "warm_workers", stub("ray workers"))
    return started


def _source(path: Path, *, orphans: int = 20, not_null_fk: bool = False) -> str:
    """parent(id) <- child(parent_id) with ``orphans`` child rows pointing at missing parents."""
    con = sqlite3.connect(path)
    null = " NOT NULL" if not_null_fk else ""
    con.executescript(
        f"""
        CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER{null} REFERENCES parent(id), qty INTEGER);
        """
    )
    con.executemany("INSERT INTO parent VALUES (?, ?)", [(i, f"p{i % 5}") for i in range(1, 51)])
    con.executemany(
        "INSERT INTO child VALUES (?, ?, ?)",
        [(i, (i % 50) + 1 if i > orphans else 1000 + i, i % 7) for i in range(1, 201)],
    )
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def _run(*args: str, runs: Path) -> tuple[int, str]:
    res = runner.invoke(app, ["run", *args, "--runs-dir", str(runs)])
    assert "Traceback" not in res.output, res.output
    return res.exit_code, " ".join(res.output.split())  # Rich wraps long lines


def _manifests(runs: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(runs.glob("*/manifest.json"))]


# ---------------------------------------------------------------------------------------------------------------
# Caught before the run directory is created and before any engine starts


def test_unknown_source_dialect(tmp_path: Path, engines: list[str]) -> None:
    code, out = _run(
        "--source", "foo://u:pw@h/db", "--target", f"sqlite:///{tmp_path}/t.sqlite", runs=tmp_path / "r"
    )
    assert code == 2
    assert "source.url: unknown database dialect 'foo'" in out and "postgresql://" in out
    assert "pw@" not in out
    assert engines == [] and not (tmp_path / "r").exists()


def test_unknown_target_dialect(tmp_path: Path, engines: list[str]) -> None:
    src = _source(tmp_path / "s.sqlite")
    code, out = _run("--source", src, "--target", "oracle://u:secret@h/db", runs=tmp_path / "r")
    assert code == 2
    assert "target.url: synthdb cannot write to a 'oracle' database" in out
    assert "secret" not in out
    assert engines == [] and not (tmp_path / "r").exists()


def test_missing_postgresql_target_database(tmp_path: Path, pg_admin: sa.Engine, engines: list[str]) -> None:
    src = _source(tmp_path / "s.sqlite")
    url = pg_admin.url.set(database="synthdb_no_such_db", password="sekret").render_as_string(
        hide_password=False
    )
    code, out = _run("--source", src, "--target", url, runs=tmp_path / "r")
    assert code == 2
    assert "database 'synthdb_no_such_db' does not exist" in out and "create it first" in out
    assert out.count("error:") == 1 and "sekret" not in out
    assert engines == [] and not (tmp_path / "r").exists()


@pytest.mark.parametrize("admin", ["pg_admin", "mariadb_admin"])
def test_missing_source_database(
    admin: str, tmp_path: Path, request: pytest.FixtureRequest, engines: list[str]
) -> None:
    engine: sa.Engine = request.getfixturevalue(admin)
    # PostgreSQL trusts local logins whatever the password: it must still not be printed; MariaDB's root has none
    password = "sekret" if admin == "pg_admin" else None
    url = engine.url.set(database="synthdb_no_such_source", password=password).render_as_string(hide_password=False)
    code, out = _run("--source", url, "--target", f"sqlite:///{tmp_path}/t.sqlite", runs=tmp_path / "r")
    assert code == 2
    assert "source.url: database 'synthdb_no_such_source' does not exist" in out and "check its name" in out
    assert out.count("error:") == 1 and "sekret" not in out
    assert engines == [] and not (tmp_path / "r").exists()


def test_missing_target_folder(tmp_path: Path, engines: list[str]) -> None:
    src = _source(tmp_path / "s.sqlite")
    code, out = _run("--source", src, "--target", str(tmp_path / "nope" / "out"), runs=tmp_path / "r")
    assert code == 2
    assert f"the folder {tmp_path / 'nope'} that would hold the target folder 'out' does not exist" in out
    assert "mkdir -p" in out
    assert engines == [] and not (tmp_path / "r").exists()
    code, out = _run("--source", src, "--target", f"sqlite:///{tmp_path}/nope/t.sqlite", runs=tmp_path / "r")
    assert code == 2 and "of the SQLite target does not exist" in out


def _read_only_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (
        folder,
        Path("/sys/fs"),
    ):  # root ignores permission bits; /sys is a read-only file system
        try:
            os.rmdir(tempfile.mkdtemp(dir=candidate))
        except OSError:
            return candidate
    pytest.skip("no read-only folder available to this user")


def test_read_only_target_folder(tmp_path: Path, engines: list[str]) -> None:
    src = _source(tmp_path / "s.sqlite")
    ro = _read_only_folder(tmp_path)
    code, out = _run("--source", src, "--target", str(ro / "out"), runs=tmp_path / "r")
    assert code == 2
    assert f"target.url: the folder {ro} is not writable" in out
    assert engines == [] and not (tmp_path / "r").exists()


def test_runs_dir_that_cannot_be_written(tmp_path: Path, engines: list[str]) -> None:
    # a container's volume owned by another user: a clear message, not a PermissionError traceback
    src = _source(tmp_path / "s.sqlite")
    ro = _read_only_folder(tmp_path)
    code, out = _run("--source", src, "--target", f"sqlite:///{tmp_path}/t.sqlite", runs=ro / "runs")
    assert code == 2
    assert f"runs_dir: {ro} is not writable" in out and "--runs-dir" in out
    (tmp_path / "a-file").write_text("x")
    code, out = _run("--source", src, "--target", f"sqlite:///{tmp_path}/t.sqlite", runs=tmp_path / "a-file" / "r")
    assert code == 2 and "is not a folder" in out
    assert engines == [] and not (tmp_path / "t.sqlite").exists()


# ---------------------------------------------------------------------------------------------------------------
# The schema file: caught when the source is opened, before any engine starts


@pytest.fixture
def schema_file(tmp_path: Path) -> tuple[str, Path]:
    src = _source(tmp_path / "s.sqlite")
    out = tmp_path / "schema.yaml"
    assert runner.invoke(app, ["inspect", src, "-o", str(out)]).exit_code == 0
    return src, out


def test_schema_file_with_unknown_table_and_column(
    tmp_path: Path, schema_file: tuple[str, Path], engines: list[str]
) -> None:
    src, path = schema_file
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        path.read_text()
        .replace("- name: child\n", "- name: chld\n")
        .replace("- name: name\n", "- name: nme\n")
    )
    code, out = _run(
        "--source",
        src,
        "--target",
        f"sqlite:///{tmp_path}/t.sqlite",
        "--schema",
        str(bad),
        runs=tmp_path / "r",
    )
    assert code == 2
    assert "table 'chld' is not in the database (did you mean 'child'?" in out
    assert "table 'parent', column 'nme' is not in the database (did you mean 'name'?" in out
    assert "OperationalError" not in out
    assert engines == []
    # the run directory it created says why it failed, never "running"
    (manifest,) = _manifests(tmp_path / "r")
    assert manifest["status"] == "failed" and "chld" in str(manifest["error"])
    # plan and inspect refuse the same file the same way
    res = runner.invoke(app, ["plan", src, "--schema", str(bad)])
    assert res.exit_code == 2 and "chld" in res.output


# ---------------------------------------------------------------------------------------------------------------
# Caught at inspect, plan or extract (no engine is needed to get there)


def test_a_scale_that_would_leave_a_table_empty_gives_it_one_row(tmp_path: Path) -> None:
    src = _source(tmp_path / "s.sqlite")
    dst = tmp_path / "t.sqlite"
    code, out = _run("--source", src, "--target", f"sqlite:///{dst}", "--scale", "0.000001", runs=tmp_path / "r")
    assert code == 0, out
    assert "table 'parent' (50 source rows) would be empty at scale 1e-06: it gets one row" in out
    assert "(scale >= 0.02 fills it on its own)" in out
    with sqlite3.connect(dst) as con:
        assert con.execute("SELECT count(*) FROM parent").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM child WHERE parent_id IS NOT NULL").fetchone()[0] >= 1  # it follows its parent
        orphans = (
            "SELECT count(*) FROM child c LEFT JOIN parent p ON c.parent_id = p.id "
            "WHERE c.parent_id IS NOT NULL AND p.id IS NULL"
        )
        assert con.execute(orphans).fetchone()[0] == 0


def test_null_inside_a_composite_primary_key(tmp_path: Path, engines: list[str]) -> None:
    path = tmp_path / "s.sqlite"
    con = sqlite3.connect(
        path
    )  # SQLite alone lets NULL into a primary key that is not an INTEGER PRIMARY KEY
    con.execute(
        "CREATE TABLE line (order_id INTEGER, line_no INTEGER, qty INTEGER, PRIMARY KEY (order_id, line_no))"
    )
    con.executemany(
        "INSERT INTO line VALUES (?, ?, ?)", [(i // 3, None if i % 10 == 0 else i % 3, i) for i in range(60)]
    )
    con.commit()
    con.close()
    code, out = _run(
        "--source", f"sqlite:///{path}", "--target", f"sqlite:///{tmp_path}/t.sqlite", runs=tmp_path / "r"
    )
    assert code == 2
    assert (
        "table 'line': its primary key (order_id, line_no) holds NULLs: column 'line_no' is NULL in 6 of 60 rows"
        in out
    )
    assert "Java" not in out and "excluded: true" in out


def test_orphans_fail_names_table_columns_parent_and_count(tmp_path: Path, engines: list[str]) -> None:
    src = _source(tmp_path / "s.sqlite")
    config = tmp_path / "c.yaml"
    config.write_text("source: {orphans: fail}\n")
    code, out = _run(
        "--source", src, "--target", f"sqlite:///{tmp_path}/t.sqlite", "-c", str(config), runs=tmp_path / "r"
    )
    assert code == 2
    assert "foreign key child(parent_id) -> parent(id): 20 row(s) of 'child' point at no parent row" in out
    assert "source.orphans: drop" in out


# ---------------------------------------------------------------------------------------------------------------
# Orphaned foreign keys at extract, per policy


def _extract(src: str, run_dir: Path, policy: str) -> dict[str, int]:
    source = open_source(src)
    try:
        schema = source.read_schema()
        return run_extract(source, schema, run_dir, batch_rows=64, orphans=policy)  # type: ignore[arg-type]
    finally:
        source.close()


def test_orphans_default_to_null_on_a_nullable_key_and_are_counted(tmp_path: Path) -> None:
    rows = _extract(_source(tmp_path / "s.sqlite"), tmp_path / "run", "auto")
    assert rows == {"parent": 50, "child": 200}  # nothing is lost
    assert read_orphans(tmp_path / "run") == [
        {
            "table": "child",
            "columns": ["parent_id"],
            "ref_table": "parent",
            "ref_columns": ["id"],
            "orphans": 20,
            "action": "null",
        }
    ]
    child = pq.read_table(Workspace(tmp_path / "run").real("child"))
    assert child.column("parent_id").null_count == 20


def test_orphans_on_a_not_null_key_fail_by_default(tmp_path: Path) -> None:
    src = _source(tmp_path / "s.sqlite", not_null_fk=True)
    with pytest.raises(
        SourceInputError, match=r"child\(parent_id\) -> parent\(id\): 20 row\(s\).*'parent_id' are NOT NULL"
    ):
        _extract(src, tmp_path / "run", "auto")
    with pytest.raises(SourceInputError, match="source.orphans: null cannot apply"):
        _extract(src, tmp_path / "run", "null")


def test_orphans_drop_removes_them_and_what_hangs_off_them(tmp_path: Path) -> None:
    src = _source(tmp_path / "s.sqlite", not_null_fk=True)
    engine = sa.create_engine(src)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE item (id INTEGER PRIMARY KEY, child_id INTEGER NOT NULL REFERENCES child(id))"
            )
        )
        conn.execute(
            sa.text("INSERT INTO item SELECT id, id FROM child")
        )  # items 1..20 hang off orphaned children
    engine.dispose()
    rows = _extract(src, tmp_path / "run", "drop")
    assert rows == {"parent": 50, "child": 180, "item": 180}
    found = {(o["table"], o["orphans"], o["action"]) for o in read_orphans(tmp_path / "run")}
    assert found == {("child", 20, "drop"), ("item", 20, "drop")}


def test_unknown_dialect_is_bad_input_for_inspect_too() -> None:
    res = runner.invoke(app, ["inspect", "foo://u:pw@h/db"])
    assert res.exit_code == 2
    assert "unknown database dialect or driver 'foo'" in res.output and "pw@" not in res.output


def test_training_settings_for_an_unknown_table(tmp_path: Path, engines: list[str]) -> None:
    src = _source(tmp_path / "s.sqlite")
    cfg = tmp_path / "synthdb.yaml"
    cfg.write_text("training:\n  tables:\n    chld:\n      model: copula\n")
    code, out = _run(
        "--source", src, "--target", f"sqlite:///{tmp_path}/t.sqlite", "--config", str(cfg), runs=tmp_path / "r"
    )
    assert code == 2
    assert "training.tables: unknown table 'chld'" in out and "child" in out
