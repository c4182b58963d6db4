"""Target DDL and staging against real SQLite, PostgreSQL and MariaDB: create, load, commit, and abort."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fixtures.staging import staging_areas
from sqlalchemy.engine import make_url

from connectors.sql.ddl import build_metadata, cyclic_foreign_keys
from connectors.staging import Staging, staging_for
from schemas.errors import ValidationFailed
from schemas.model import (
    CheckConstraint,
    Column,
    DatabaseSchema,
    ForeignKey,
    PrimaryKey,
    Table,
    UniqueConstraint,
)

TABLES = {"café", "order", "employee", "dept", "person"}


def _schema() -> DatabaseSchema:
    """Reserved word, composite PK/FK, self-reference, a 2-table cycle, non-ASCII names, every awkward type."""
    return DatabaseSchema(
        dialect="postgresql",
        tables=[
            Table(
                name="café",
                columns=[
                    Column(name="région", type="TEXT", nullable=False),
                    Column(name="no", type="INTEGER", nullable=False),
                    Column(name="label", type="VARCHAR(40)"),
                ],
                primary_key=PrimaryKey(columns=["région", "no"]),
                checks=[CheckConstraint(sqltext='"no" >= 0', name="no_pos")],
            ),
            Table(
                name="order",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False),
                    Column(name="full name", type="VARCHAR(100)"),
                    Column(name="amount", type="NUMERIC(10, 2)"),
                    Column(name="created", type="TIMESTAMP WITH TIME ZONE"),
                    Column(name="token", type="UUID"),
                    Column(name="meta", type="JSONB"),
                    Column(name="paid", type="BOOLEAN"),
                    Column(name="blob", type="BYTEA"),
                    Column(name="cafe_region", type="TEXT"),
                    Column(name="cafe_no", type="INTEGER"),
                    Column(name="secret", type="TEXT", excluded=True),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                unique=[UniqueConstraint(columns=["token"])],
                foreign_keys=[
                    ForeignKey(columns=["cafe_region", "cafe_no"], ref_table="café", ref_columns=["région", "no"])
                ],
            ),
            Table(
                name="employee",
                columns=[
                    Column(name="id", type="INTEGER", nullable=False, autoincrement=True),
                    Column(name="manager_id", type="INTEGER"),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[ForeignKey(columns=["manager_id"], ref_table="employee", ref_columns=["id"])],
            ),
            Table(
                name="dept",
                columns=[Column(name="id", type="INTEGER", nullable=False), Column(name="head_id", type="INTEGER")],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[ForeignKey(columns=["head_id"], ref_table="person", ref_columns=["id"])],
            ),
            Table(
                name="person",
                columns=[
                    Column(name="id", type="INTEGER", nullable=False),
                    Column(name="dept_id", type="INTEGER", nullable=False),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[ForeignKey(columns=["dept_id"], ref_table="dept", ref_columns=["id"])],
            ),
            Table(name="gone", excluded=True, columns=[Column(name="x", type="INTEGER")]),
        ],
    ).validate_all()


CREATED = dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.UTC)
TOKEN = str(uuid.UUID(int=0xC0FFEE))
META = {"tags": ["a", "b"], "n": 1}


def _rows(dialect: str, *, broken: bool = False) -> dict[str, list[dict[str, Any]]]:
    aware = dialect == "postgresql"
    return {
        "café": [{"région": "nord", "no": 1, "label": "un"}, {"région": "sud", "no": 2, "label": None}],
        "order": [
            {
                "id": 10, "full name": "Zoë O'Brien", "amount": Decimal("12.50"),
                "created": CREATED if aware else CREATED.replace(tzinfo=None), "token": TOKEN,
                "meta": json.dumps(META) if dialect == "sqlite" else META, "paid": True, "blob": b"\x00\xffbin",
                "cafe_region": "nord", "cafe_no": 1,
            },
            {
                "id": 11, "full name": None, "amount": None, "created": None, "token": None, "meta": None,
                "paid": False, "blob": None, "cafe_region": "sud" if not broken else "est", "cafe_no": 2,
            },
        ],
        "employee": [{"id": 1, "manager_id": None}, {"id": 2, "manager_id": 1}, {"id": 3, "manager_id": 2}],
        # The cycle: dept 1's head is person 7, who works in dept 1. Loaded in either order.
        "dept": [{"id": 1, "head_id": 7}],
        "person": [{"id": 7, "dept_id": 1}],
    }


def _load(staging: Staging, schema: DatabaseSchema, rows: dict[str, list[dict[str, Any]]]) -> None:
    engine = sa.create_engine(staging.staging_url, poolclass=sa.pool.NullPool)
    md = build_metadata(schema, dialect=staging.dialect, db_schema=staging.staging_db_schema)
    try:
        with engine.begin() as conn:
            for name, table_rows in rows.items():
                conn.execute(sa.insert(_table(md, name, staging.staging_db_schema)), table_rows)
    finally:
        engine.dispose()


def _table(md: sa.MetaData, name: str, db_schema: str | None) -> sa.Table:
    return md.tables[f"{db_schema}.{name}" if db_schema else name]


def _dialect(url: str) -> str:
    name = make_url(url).get_backend_name()
    return "mysql" if name in ("mysql", "mariadb") else name


def _run(url: str, run_id: str, rows: dict[str, list[dict[str, Any]]] | None = None) -> Staging:
    schema = _schema()
    staging = staging_for(url, run_id=run_id)
    staging.prepare(schema)
    try:
        _load(staging, schema, rows or _rows(_dialect(url)))
        staging.finalize(schema)
    except BaseException:
        staging.abort()
        raise
    staging.commit()
    return staging


def _seed_live(url: str) -> None:
    """The live target before synthdb: an old `order` table and, on servers, an unrelated table."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        q = engine.dialect.identifier_preparer.quote
        conn.execute(sa.text(f"CREATE TABLE {q('order')} (id INTEGER PRIMARY KEY, old_col VARCHAR(10))"))
        conn.execute(sa.text(f"INSERT INTO {q('order')} VALUES (1, 'old')"))
        conn.execute(sa.text("CREATE TABLE keep_me (k INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO keep_me VALUES (42)"))
    engine.dispose()


def _snapshot(url: str) -> Any:
    """SQLite: the file's hash. Servers: every table's rows, sorted."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        if engine.dialect.name == "sqlite":
            return hashlib.sha256(Path(str(engine.url.database)).read_bytes()).hexdigest()
        md = sa.MetaData()
        md.reflect(engine)
        with engine.connect() as conn:
            return {
                name: sorted(map(repr, conn.execute(sa.select(t)).all())) for name, t in sorted(md.tables.items())
            }
    finally:
        engine.dispose()


def test_cyclic_foreign_keys_include_self_reference_and_two_table_cycle() -> None:
    schema = _schema()
    assert cyclic_foreign_keys(schema) == {("employee", 0), ("dept", 0), ("person", 0)}
    pg = build_metadata(schema, dialect="postgresql")
    use_alter = {fk.constraint.table.name: fk.constraint.use_alter for t in pg.tables.values() for fk in t.foreign_keys}
    assert use_alter == {"order": False, "employee": True, "dept": True, "person": True}
    assert not any(fk.constraint.use_alter for t in build_metadata(schema, dialect="sqlite").tables.values()
                   for fk in t.foreign_keys)


def test_mariadb_text_keys_become_varchar() -> None:
    md = build_metadata(_schema(), dialect="mariadb")
    assert str(md.tables["café"].c["région"].type) == "VARCHAR(255)"
    assert str(md.tables["order"].c["cafe_region"].type) == "VARCHAR(255)"
    assert "secret" not in md.tables["order"].c and "gone" not in md.tables
    assert not md.tables["café"].constraints - {md.tables["café"].primary_key}  # PG check skipped on MariaDB


def test_commit_replaces_live_with_staged_tables(db_url: str) -> None:
    dialect = _dialect(db_url)
    _seed_live(db_url)

    _run(db_url, "run-1")

    assert staging_areas(db_url) == []
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        insp = sa.inspect(engine)
        expected = TABLES | ({"keep_me"} if dialect != "sqlite" else set())  # SQLite swaps the whole file
        assert set(insp.get_table_names()) == expected
        assert insp.get_pk_constraint("café")["constrained_columns"] == ["région", "no"]
        order_cols = [c["name"] for c in insp.get_columns("order")]
        assert order_cols == ["id", "full name", "amount", "created", "token", "meta", "paid", "blob",
                              "cafe_region", "cafe_no"]
        fks = {
            t: sorted((tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                      for fk in insp.get_foreign_keys(t))
            for t in TABLES
        }
        assert fks["order"] == [(("cafe_region", "cafe_no"), "café", ("région", "no"))]
        assert fks["employee"] == [(("manager_id",), "employee", ("id",))]
        assert fks["dept"] == [(("head_id",), "person", ("id",))]
        assert fks["person"] == [(("dept_id",), "dept", ("id",))]
        assert [u["column_names"] for u in insp.get_unique_constraints("order")] == [["token"]]
        if dialect == "postgresql":
            types = {c["name"]: str(c["type"]) for c in insp.get_columns("order")}
            assert (types["token"], types["meta"], types["created"]) == ("UUID", "JSONB", "TIMESTAMP")
            assert insp.get_columns("order")[3]["type"].timezone is True
            assert [c["sqltext"] for c in insp.get_check_constraints("café")] == ["no >= 0"]

        with engine.connect() as conn:
            q = engine.dialect.identifier_preparer.quote
            row = conn.execute(sa.text(f"SELECT * FROM {q('order')} ORDER BY id")).mappings().first()
            assert row is not None
            assert Decimal(str(row["amount"])) == Decimal("12.50")
            assert row["full name"] == "Zoë O'Brien"
            assert str(row["token"]) == TOKEN
            meta = row["meta"]
            assert (json.loads(meta) if isinstance(meta, str) else meta) == META
            assert bool(row["paid"]) is True
            assert bytes(row["blob"]) == b"\x00\xffbin"
            created = row["created"]
            if isinstance(created, str):  # SQLite keeps text
                created = dt.datetime.fromisoformat(created)
            assert created.replace(tzinfo=None) == CREATED.replace(tzinfo=None)
            if dialect != "sqlite":
                assert conn.execute(sa.text("SELECT k FROM keep_me")).scalar() == 42
        with engine.begin() as conn:
            # The identity column counts on from the loaded keys (PostgreSQL needs its sequence moved).
            conn.execute(sa.text("INSERT INTO employee (manager_id) VALUES (1)"))
            assert conn.execute(sa.text("SELECT MAX(id) FROM employee")).scalar() == 4
    finally:
        engine.dispose()


def test_abort_after_partial_load_leaves_live_as_it_was(db_url: str) -> None:
    dialect = _dialect(db_url)
    _run(db_url, "first")
    before = _snapshot(db_url)

    # Second run: rows with a dangling composite foreign key reach the staging area; finalize finds them (a real
    # failure, not a mock) and the run aborts.
    schema = _schema()
    staging = staging_for(db_url, run_id="second")
    staging.prepare(schema)
    with pytest.raises(ValidationFailed, match="order"):
        try:
            _load(staging, schema, _rows(dialect, broken=True))
            staging.finalize(schema)
        except Exception:
            staging.abort()
            raise

    assert _snapshot(db_url) == before
    assert staging_areas(db_url) == []
    # The failed staging area is gone and another run can still commit.
    _run(db_url, "third")
    assert staging_areas(db_url) == []


def test_staging_names_fit_identifier_limits(mariadb_url: str, pg_url: str) -> None:
    long_run = "2024-01-01T00-00-00_" + "x" * 80
    long_db = make_url(mariadb_url).set(database="d" * 64).render_as_string(hide_password=False)
    maria = staging_for(long_db, run_id=long_run)
    assert len(make_url(maria.staging_url).database or "") <= 64
    pg = staging_for(pg_url, run_id=long_run)
    assert pg.staging_db_schema is not None and len(pg.staging_db_schema) <= 63
