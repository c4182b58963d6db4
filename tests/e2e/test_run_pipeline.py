"""Whole runs on real Ray and real Spark local[2], on the tricky fixture schema, checked by SQL on the target."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from fixtures.tricky import (
    EXPECTED_FOREIGN_KEYS,
    EXPECTED_PRIMARY_KEYS,
    EXPECTED_UNIQUE,
    create_tricky_schema,
)

from pipelines.run import run_pipeline
from schemas.config import RunConfig, load_config
from schemas.errors import ConfigError, SynthdbError

pytestmark = pytest.mark.usefixtures("ray_session")


def _config(source: str, target: str, runs: Path, **over: Any) -> RunConfig:
    overrides = {"source.url": source, "target.url": target, "runs_dir": str(runs), "generation.seed": 11}
    overrides.update(over)
    return load_config(None, overrides=overrides, environ={})


def _q(engine: sa.Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote(name)


def _assert_integrity(url: str) -> dict[str, int]:
    """By SQL on the target: every FK points at a row, every PK and unique key is unique. Returns row counts."""
    engine = sa.create_engine(url)
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for table, pk in EXPECTED_PRIMARY_KEYS.items():
            t = _q(engine, table)
            counts[table] = conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            cols = ", ".join(_q(engine, c) for c in pk)
            dupes = conn.execute(
                sa.text(
                    f"SELECT count(*) FROM (SELECT {cols} FROM {t} GROUP BY {cols} HAVING count(*) > 1) d"
                )
            )
            assert dupes.scalar_one() == 0, f"duplicate primary keys in {table}"
        for table, keys in EXPECTED_UNIQUE.items():
            for key in keys:
                cols = ", ".join(_q(engine, c) for c in key)
                notnull = " AND ".join(f"{_q(engine, c)} IS NOT NULL" for c in key)
                sql = f"SELECT count(*) FROM (SELECT {cols} FROM {_q(engine, table)} WHERE {notnull} GROUP BY {cols} HAVING count(*) > 1) d"
                assert conn.execute(sa.text(sql)).scalar_one() == 0, f"duplicate unique key {key} in {table}"
        for table, cols, parent, ref in sorted(EXPECTED_FOREIGN_KEYS):
            if True:
                join = " AND ".join(
                    f"c.{_q(engine, a)} = p.{_q(engine, b)}" for a, b in zip(cols, ref, strict=True)
                )
                present = " AND ".join(f"c.{_q(engine, a)} IS NOT NULL" for a in cols)
                sql = (
                    f"SELECT count(*) FROM {_q(engine, table)} c LEFT JOIN {_q(engine, parent)} p ON {join} "
                    f"WHERE {present} AND p.{_q(engine, ref[0])} IS NULL"
                )
                orphans = conn.execute(sa.text(sql)).scalar_one()
                assert orphans == 0, f"{orphans} orphaned rows in {table}{tuple(cols)} -> {parent}"
    engine.dispose()
    return counts


def _segment_dependence(url: str) -> dict[str, float]:
    """Orders per customer by the customer's segment: the parent-child dependence the fixture builds in."""
    engine = sa.create_engine(url)
    o, c = _q(engine, "order"), _q(engine, "customer")
    sql = (
        f"SELECT c.segment, count(o.id) * 1.0 / count(DISTINCT c.id) FROM {c} c LEFT JOIN {o} o "
        f"ON o.customer_id = c.id GROUP BY c.segment"
    )
    with engine.connect() as conn:
        out = {row[0]: float(row[1]) for row in conn.execute(sa.text(sql))}
    engine.dispose()
    return out


def test_sqlite_to_sqlite_keeps_every_key_and_the_parent_dependence(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/src.sqlite"
    dst = f"sqlite:///{tmp_path}/out.sqlite"
    create_tricky_schema(src, rows=300)
    result = run_pipeline(_config(src, dst, tmp_path / "runs"))
    assert result.validation_success is True
    engine = sa.create_engine(dst)
    with engine.connect() as conn:
        assert list(conn.exec_driver_sql("PRAGMA foreign_key_check")) == []
    engine.dispose()
    counts = _assert_integrity(dst)
    for table, real in result.real_rows.items():
        if real >= 100:
            assert 0.6 * real <= counts[table] <= 1.6 * real, (table, real, counts[table])
    assert counts["empty_table"] == 0
    real_dep, synth_dep = _segment_dependence(src), _segment_dependence(dst)
    # enterprise customers have far more orders than retail ones in the real data; a model ignoring the parent
    # would give every segment the same rate
    assert real_dep["enterprise"] > 2 * real_dep["retail"]
    assert synth_dep["enterprise"] > 1.5 * synth_dep["retail"]
    manifest = (result.run_dir / "manifest.json").read_text()
    assert '"validate"' in manifest and '"done"' in manifest
    assert set(result.stage_seconds) >= {"extract", "train", "generate", "write", "validate"}


def test_same_seed_same_output_whatever_the_shard_count(tmp_path: Path) -> None:
    from connectors.inspect import inspect_source
    from connectors.source import open_source
    from pipelines.stages.extract import run_extract
    from pipelines.stages.generate import run_generate
    from pipelines.workspace import Workspace
    from pipelines.stages.train import run_train
    from schemas.plan import build_plan

    src = f"sqlite:///{tmp_path}/src.sqlite"
    create_tricky_schema(src, rows=300)
    digests = []
    for shard_rows in (32, 100_000):  # many shards vs one shard per table
        config = _config(
            src,
            "sqlite:///unused.sqlite",
            tmp_path / "runs",
            **{"generation.shard_rows": shard_rows, "generation.block_rows": 32},
        )
        run_dir = tmp_path / f"run-{shard_rows}"
        source = open_source(src)
        schema = inspect_source(source).schema
        run_extract(source, schema, run_dir, batch_rows=1000)
        source.close()
        plan = build_plan(schema)
        run_train(run_dir, schema, plan, config)
        run_generate(run_dir, schema, plan, config)
        h = hashlib.sha256()
        for table in plan.order:
            for part in Workspace(run_dir).parts(table):
                h.update(pl.read_parquet(part).hash_rows(seed=1).to_numpy().tobytes())
        digests.append(h.hexdigest())
    assert digests[0] == digests[1]


def _crash_after_three_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the Spark write load the first three tables into the staging area, then die (a fault we cannot cause)."""
    from connectors.spark import writer

    real_write = writer.write_tables

    def write_then_crash(
        spark: Any, dirs: Any, schema: Any, order: list[str], staging: Any, **kw: Any
    ) -> Any:
        real_write(spark, {k: v for k, v in dirs.items() if k in order[:3]}, schema, order[:3], staging, **kw)
        raise RuntimeError("injected fault: the executor died mid-write")

    monkeypatch.setattr(writer, "write_tables", write_then_crash)


def test_a_failure_mid_write_leaves_the_sqlite_target_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = f"sqlite:///{tmp_path}/src.sqlite"
    dst_path = tmp_path / "out.sqlite"
    create_tricky_schema(src, rows=60)
    dst_path.write_bytes(b"")  # an existing (empty) target the failed run must not touch
    engine = sa.create_engine(f"sqlite:///{dst_path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE keep_me (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO keep_me VALUES (42)")
    engine.dispose()
    before = hashlib.sha256(dst_path.read_bytes()).hexdigest()
    _crash_after_three_tables(monkeypatch)
    with pytest.raises(RuntimeError, match="injected fault"):
        run_pipeline(_config(src, f"sqlite:///{dst_path}", tmp_path / "runs"))
    assert hashlib.sha256(dst_path.read_bytes()).hexdigest() == before
    assert not list(tmp_path.glob("out.sqlite.synthdb-staging-*"))


def test_the_target_may_not_be_the_source(tmp_path: Path) -> None:
    src = f"sqlite:///{tmp_path}/src.sqlite"
    with pytest.raises(ConfigError, match="target is the source"):
        run_pipeline(_config(src, f"sqlite:///{tmp_path}/./src.sqlite", tmp_path / "runs"))


@pytest.mark.server
def test_postgresql_to_postgresql(pg_url: str, pg_admin: sa.Engine, tmp_path: Path) -> None:
    # the source and the target are two databases of the same server
    create_tricky_schema(pg_url, rows=150)
    target_db = "synthdb_e2e_target"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target_db}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target_db}"'))
    target = sa.make_url(pg_url).set(database=target_db).render_as_string(hide_password=False)
    try:
        result = run_pipeline(_config(pg_url, target, tmp_path / "runs"))
        assert result.validation_success is True
        _assert_integrity(target)
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target_db}" WITH (FORCE)'))


@pytest.mark.server
def test_mariadb_to_postgresql(mariadb_url: str, pg_url: str, tmp_path: Path) -> None:
    create_tricky_schema(mariadb_url, rows=120)
    result = run_pipeline(_config(mariadb_url, pg_url, tmp_path / "runs"))
    assert result.validation_success is True
    _assert_integrity(pg_url)


def test_bad_input_fails_before_any_engine_starts(tmp_path: Path) -> None:
    with pytest.raises(SynthdbError):
        run_pipeline(
            _config(f"sqlite:///{tmp_path}/missing.sqlite", f"sqlite:///{tmp_path}/o.sqlite", tmp_path / "r")
        )


@pytest.mark.server
def test_a_failure_mid_write_leaves_the_postgresql_target_row_for_row(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = f"sqlite:///{tmp_path}/src.sqlite"
    create_tricky_schema(src, rows=60)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE customer (id INTEGER PRIMARY KEY, "full name" TEXT)')
        conn.exec_driver_sql("INSERT INTO customer VALUES (1, 'kept'), (2, 'also kept')")
    _crash_after_three_tables(monkeypatch)
    with pytest.raises(RuntimeError, match="injected fault"):
        run_pipeline(_config(src, pg_url, tmp_path / "runs"))
    with engine.connect() as conn:
        rows = conn.exec_driver_sql('SELECT id, "full name" FROM customer ORDER BY id').fetchall()
        tables = {
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        }
    engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "kept"), (2, "also kept")]
    assert tables == {"public.customer"}  # no staging schema left behind


@pytest.mark.server
def test_a_failure_mid_write_leaves_the_mariadb_target_row_for_row(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = f"sqlite:///{tmp_path}/src.sqlite"
    create_tricky_schema(src, rows=60)
    engine = sa.create_engine(mariadb_url)
    database = engine.url.database
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customer (id INTEGER PRIMARY KEY, `full name` TEXT)")
        conn.exec_driver_sql("INSERT INTO customer VALUES (1, 'kept'), (2, 'also kept')")
    _crash_after_three_tables(monkeypatch)
    with pytest.raises(RuntimeError, match="injected fault"):
        run_pipeline(_config(src, mariadb_url, tmp_path / "runs"))
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, `full name` FROM customer ORDER BY id").fetchall()
        tables = {r[0] for r in conn.exec_driver_sql("SHOW TABLES")}
        names = [r[0] for r in conn.exec_driver_sql("SHOW DATABASES")]
        staging = [n for n in names if n != database and n.startswith(str(database))]
    engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "kept"), (2, "also kept")]
    assert tables == {"customer"} and staging == []  # no staging or backup database left behind


def test_scale_factor_scales_root_tables_and_children_follow(tmp_path: Path) -> None:
    from connectors.inspect import inspect_source
    from connectors.source import open_source
    from pipelines.stages.extract import run_extract
    from pipelines.stages.generate import run_generate
    from pipelines.stages.train import run_train
    from schemas.plan import build_plan

    src = f"sqlite:///{tmp_path}/src.sqlite"
    create_tricky_schema(src, rows=200)
    source = open_source(src)
    schema = inspect_source(source).schema
    run_dir = tmp_path / "run"
    real = run_extract(source, schema, run_dir, batch_rows=1000)
    source.close()
    plan = build_plan(schema)
    config = _config(src, "sqlite:///unused.sqlite", tmp_path / "runs", **{"generation.scale": 2.5})
    run_train(run_dir, schema, plan, config)
    rows = run_generate(run_dir, schema, plan, config)
    assert rows["customer"] == round(real["customer"] * 2.5)  # a root table
    assert (
        1.8 * real["order"] <= rows["order"] <= 3.2 * real["order"]
    )  # a child, through the cardinality model
