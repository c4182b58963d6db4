"""The validation suite runs as set-based passes: one query per table, then only the failed checks on their own.

What a pass must survive: values that are SQL or ``str.format`` syntax (quotes, colons, braces, percent signs,
backslashes), a column name with a percent sign, a table with more checks than one pass holds, a column the target
lacks (the pass errors; the checks run one by one so only that column's checks fail), and a parent table that is
missing. And it must stay one scan per table: the count of pass queries is asserted, so a change that goes back to
a query per expectation fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.expectations import SuiteOptions, SuiteSpec, build_suite, validate_target
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from schemas.profile import ColumnProfile, TableProfile

HOSTILE = ("a:b", "x :y", "{z}", "100%", "it's", "c\\d", "plain")
WIDE = 160  # NOT NULL columns: more checks than one pass holds


def _schema() -> DatabaseSchema:
    parent = Table(
        name="parent",
        columns=[
            Column(name="id", type="INTEGER", nullable=False, kind=Kind.ID),
            Column(name="label", type="VARCHAR(10)", nullable=True, kind=Kind.CATEGORICAL),
            Column(name="rate %", type="INTEGER", nullable=True, kind=Kind.NUMERIC),
        ],
        primary_key=PrimaryKey(columns=["id"]),
    )
    wide = Table(
        name="wide",
        columns=[
            Column(name="id", type="INTEGER", nullable=False, kind=Kind.ID),
            Column(name="parent_id", type="INTEGER", nullable=True, kind=Kind.ID),
            *(Column(name=f"c{i}", type="INTEGER", nullable=False, kind=Kind.NUMERIC) for i in range(WIDE)),
        ],
        primary_key=PrimaryKey(columns=["id"]),
        foreign_keys=[ForeignKey(columns=["parent_id"], ref_table="parent", ref_columns=["id"])],
    )
    return DatabaseSchema(tables=[parent, wide]).validate_all()


def _profiles() -> dict[str, TableProfile]:
    parent = TableProfile(
        table="parent",
        row_count=14,
        sample_rows=14,
        columns={
            "label": ColumnProfile(name="label", sample_rows=14, null_count=0, distinct_count=len(HOSTILE),
                                   top_values=[(v, 2) for v in HOSTILE]),
            "rate %": ColumnProfile(name="rate %", sample_rows=14, null_count=0, distinct_count=14, min=0, max=100),
        },
    )
    return {"parent": parent}


def _suite() -> SuiteSpec:
    return build_suite(_schema(), _profiles(), name="passes", options=SuiteOptions(value_set_mostly=0.9))


def _create(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    md = sa.MetaData()
    parent = sa.Table(
        "parent", md, sa.Column("id", sa.Integer), sa.Column("label", sa.String(10)), sa.Column("rate %", sa.Integer)
    )
    wide = sa.Table(
        "wide", md, sa.Column("id", sa.Integer), sa.Column("parent_id", sa.Integer),
        *(sa.Column(f"c{i}", sa.Integer) for i in range(WIDE)),
    )
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(parent.insert(), [
            {"id": i, "label": HOSTILE[i % len(HOSTILE)], "rate %": 7 * i} for i in range(14)
        ])
        conn.execute(wide.insert(), [
            {"id": i, "parent_id": None if i == 0 else i % 14, **{f"c{j}": i + j for j in range(WIDE)}}
            for i in range(20)
        ])
    return engine


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine runs while the test does."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.Engine, "before_cursor_execute", record)


def test_hostile_values_wide_table_and_broken_rows(db_url: str, tmp_path: Path, statements: list[str]) -> None:
    engine = _create(db_url)
    suite = _suite()
    assert len(suite.table("wide").expectations) > 150  # two passes

    report = validate_target(db_url, _schema(), suite, tmp_path / "clean")
    assert report.success, report.integrity_failures
    assert report.profile_warnings == [] and report.statistics.evaluated == len(list(suite))
    passes = [s for s in statements if "synthdb_check" in s]
    assert len(passes) == 3, passes  # parent: one pass; wide: two
    assert not any("unexpected_row_count" in s for s in statements)  # each pass ran once, not again under COUNT(*)
    assert report.docs_path is not None and report.docs_path.is_file()

    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE parent SET label = 'new:{x}%' WHERE id < 3"))  # 3 of 14 outside the set
        conn.execute(sa.text("UPDATE wide SET c155 = NULL WHERE id = 4"))  # in the second pass of 'wide'
        conn.execute(sa.text("UPDATE wide SET parent_id = 99 WHERE id = 5"))  # an orphan
    report = validate_target(db_url, _schema(), suite, tmp_path / "broken")
    assert not report.success
    failures = report.integrity_failures
    assert len(failures) == 2, failures
    assert any("column 'c155'" in f and "1 unexpected row(s) of 20" in f and "not_be_null" in f for f in failures)
    assert any("(parent_id) -> parent(id)" in f and "orphans" in f for f in failures)
    (warning,) = report.profile_warnings
    assert "column 'label'" in warning and "3 unexpected row(s) of 14" in warning and "'new:{x}%'" in warning
    engine.dispose()


def test_missing_column_and_missing_parent(sqlite_url: str, tmp_path: Path) -> None:
    engine = _create(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text('ALTER TABLE wide DROP COLUMN "c7"'))
    report = validate_target(sqlite_url, _schema(), _suite(), tmp_path / "no_column")
    assert not report.success
    # The pass over 'wide' errors; its checks run one by one, so only the missing column's check fails.
    assert len(report.integrity_failures) == 1, report.integrity_failures
    assert "column 'c7'" in report.integrity_failures[0]

    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE parent"))
    report = validate_target(sqlite_url, _schema(), _suite(), tmp_path / "no_parent")
    assert not report.success
    assert any("table 'parent'" in f and "found none" in f for f in report.integrity_failures)
    assert any("(parent_id) -> parent(id)" in f and "no parent table 'parent'" in f for f in report.integrity_failures)
    engine.dispose()
