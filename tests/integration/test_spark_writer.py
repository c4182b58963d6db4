"""Spark loads Parquet shards through JDBC into real SQLite, PostgreSQL and MariaDB staging areas, then commits."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from connectors.spark.session import find_java_home, jdbc_url
from connectors.spark.writer import write_parquet_folder, write_tables
from connectors.sql.ddl import build_metadata
from connectors.staging import staging_for
from schemas.errors import ConnectorError
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table

pytestmark = pytest.mark.spark

UTC = dt.UTC


def _schema() -> DatabaseSchema:
    return DatabaseSchema(
        tables=[
            Table(
                name="customer",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False),
                    Column(name="prénom", type="VARCHAR(50)"),
                    Column(name="vip", type="BOOLEAN"),
                    Column(name="token", type="UUID"),
                    Column(name="joined", type="DATE"),
                    Column(name="balance", type="NUMERIC(12, 2)"),
                    Column(name="Segment", type="VARCHAR(10)"),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            ),
            Table(
                name="order",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False),
                    Column(name="customer_id", type="BIGINT", nullable=False),
                    Column(name="amount", type="NUMERIC(10, 2)"),
                    Column(name="at", type="TIMESTAMP WITH TIME ZONE"),
                    Column(name="local at", type="TIMESTAMP"),
                    Column(name="meta", type="JSON"),
                    Column(name="payload", type="BLOB"),
                    Column(name="slot", type="TIME"),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[ForeignKey(columns=["customer_id"], ref_table="customer", ref_columns=["id"])],
            ),
        ]
    ).validate_all()


def _data() -> dict[str, list[dict[str, Any]]]:
    customers = [
        {"id": i, "prénom": f"Zoë {i}" if i % 3 else None, "vip": i % 2 == 0,
         "token": f"00000000-0000-4000-8000-{i:012d}", "joined": dt.date(2020, 1, 1) + dt.timedelta(days=i),
         "balance": Decimal(f"{i * 101}.{i % 100:02d}"), "Segment": "ABC"[i % 3]}
        for i in range(1, 41)
    ]
    orders = [
        {"id": 1000 + j, "customer_id": 1 + j % 40, "amount": Decimal(f"{j}.05") if j % 7 else None,
         "at": dt.datetime(2024, 3, 10, 1, 2, 3, 456789, tzinfo=UTC) + dt.timedelta(hours=j),
         "local at": dt.datetime(1999, 12, 31, 23, 59, 59, 999999) - dt.timedelta(minutes=j),
         "meta": json.dumps({"j": j, "tags": ["x", "é"]}), "payload": bytes([j % 256, 0, 255]),
         "slot": dt.time(j % 24, 30, 15, 250000) if j % 5 else None}
        for j in range(100)
    ]
    return {"customer": customers, "order": orders}


def _write_shards(tmp: Path, schema: DatabaseSchema, data: dict[str, list[dict[str, Any]]]) -> dict[str, Path]:
    dirs = {}
    for table in schema.tables:
        arrow_schema = pa.schema([pa.field(c.name, c.sql_type.to_arrow()) for c in table.columns])
        rows = data[table.name]
        folder = tmp / "shards" / table.name
        folder.mkdir(parents=True)
        half = len(rows) // 2
        for i, part in enumerate((rows[:half], rows[half:])):
            pq.write_table(pa.Table.from_pylist(part, schema=arrow_schema), folder / f"part-{i:05d}.parquet")
        dirs[table.name] = folder
    return dirs


def _read_live(url: str, schema: DatabaseSchema) -> dict[str, list[dict[str, Any]]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    md = build_metadata(schema, dialect=engine.dialect.name)
    try:
        with engine.connect() as conn:
            return {
                name: [dict(r) for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings()]
                for name, t in md.tables.items()
            }
    finally:
        engine.dispose()


def _normalise(value: Any, dialect: str, column: str) -> Any:
    if column == "meta" and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def test_jdbc_url_conversions() -> None:
    assert jdbc_url("postgresql+psycopg://u:s3cret@db.example:5433/app?sslmode=require") == (
        "jdbc:postgresql://db.example:5433/app",
        {"driver": "org.postgresql.Driver", "user": "u", "password": "s3cret", "sslmode": "require"},
    )
    url, props = jdbc_url("mariadb+pymysql://root@127.0.0.1:3306/shop?charset=utf8mb4")
    assert url == "jdbc:mysql://127.0.0.1:3306/shop?permitMysqlScheme"
    assert props == {"driver": "org.mariadb.jdbc.Driver", "user": "root"}
    url, props = jdbc_url("sqlite:///relative/x.db")
    assert url == f"jdbc:sqlite:{Path('relative/x.db').absolute()}" and props == {"driver": "org.sqlite.JDBC"}
    with pytest.raises(ConnectorError, match="oracle"):
        jdbc_url("oracle://u@h/db")


def test_find_java_home_skips_unsupported_java(monkeypatch: pytest.MonkeyPatch) -> None:
    newer = sorted(Path("/usr/lib/jvm").glob("*25*"))
    if not newer or not (newer[0] / "bin" / "java").exists():
        pytest.skip("no Java 25 on this machine to play the unsupported default")
    monkeypatch.setenv("JAVA_HOME", str(newer[0]))
    home = find_java_home()
    assert home is not None and ("17" in home.name or "21" in home.name)


def test_spark_writes_staging_then_commits(spark: Any, db_url: str, tmp_path: Path) -> None:
    schema = _schema()
    data = _data()
    dirs = _write_shards(tmp_path, schema, data)
    staging = staging_for(db_url, run_id="sparkrun")
    staging.prepare(schema)
    try:
        counts = write_tables(spark, dirs, schema, ["customer", "order"], staging, batch_rows=32)
        staging.finalize(schema)  # PostgreSQL/MariaDB add the foreign key here, checking every row
    except BaseException:
        staging.abort()
        raise
    staging.commit()

    assert counts == {"customer": 40, "order": 100}
    dialect = make_url(db_url).get_backend_name()
    live = _read_live(db_url, schema)
    for name, expected_rows in data.items():
        got = [{k: _normalise(v, dialect, k) for k, v in row.items()} for row in live[name]]
        want = [{k: _normalise(v, dialect, k) for k, v in row.items()} for row in expected_rows]
        assert got == want, f"{name} differs on {dialect}"


def test_failed_write_leaves_live_untouched(spark: Any, sqlite_url: str, tmp_path: Path) -> None:
    schema = _schema()
    data = _data()
    data["customer"][1]["id"] = data["customer"][0]["id"]  # a duplicate primary key: the database refuses it
    dirs = _write_shards(tmp_path, schema, data)
    live_path = Path(str(make_url(sqlite_url).database))
    live_path.write_bytes(b"")  # an existing (empty) live database
    staging = staging_for(sqlite_url, run_id="broken")
    staging.prepare(schema)
    with pytest.raises(ConnectorError, match="customer") as failure:
        try:
            write_tables(spark, dirs, schema, ["customer", "order"], staging)
        except BaseException:
            staging.abort()
            raise
    assert "UNIQUE constraint failed" in str(failure.value)  # the database's reason reaches the user
    assert live_path.read_bytes() == b""
    assert not list(tmp_path.glob("*.synthdb-staging-*"))


def test_parquet_folder_target_replaces_folder(spark: Any, tmp_path: Path) -> None:
    schema = _schema()
    dirs = _write_shards(tmp_path, schema, _data())
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old run")

    counts = write_parquet_folder(spark, dirs, out)

    assert counts == {"customer": 40, "order": 100}
    assert not (out / "stale.txt").exists()
    assert pq.read_table(out / "order").num_rows == 100
    assert sorted(pq.read_table(out / "customer").column("id").to_pylist()) == list(range(1, 41))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
