"""Types, not strings: each dialect's types round-trip into the same type, or inspect refuses them by name.

One whole pipeline run per dialect covers every round-tripping type; refusals are checked at ``inspect`` (the CLI's
exit code 2 and message) and at the target DDL for a dialect that lacks the type.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from connectors.inspect import inspect_source
from connectors.source import open_source
from connectors.sql.ddl import build_metadata
from connectors.sql.reflect import reflect_schema
from pipelines.cli import app
from pipelines.run import run_pipeline
from schemas.config import load_config
from schemas.errors import SchemaError
from schemas.kinds import Kind
from schemas.schema_file import load_schema

runner = CliRunner()

# column -> (SQL type in the source, the value expression over g = 1..80)
_PG_COLUMNS: dict[str, tuple[str, str]] = {
    "dur": ("interval", "(g || ' minutes')::interval + '1 day'::interval * (g % 3)"),
    "r": ("int4range", "int4range(g, g + 1 + g % 7)"),
    "tr": ("tstzrange", "tstzrange('2024-01-01'::timestamptz + g * interval '1 hour', '2024-02-01'::timestamptz)"),
    "tv": ("tsvector", "to_tsvector('english', 'the quick brown fox number ' || g)"),
    "arr": ("integer[]", "ARRAY[g, g + 1, g * 2]"),
    "ip": ("inet", "('192.168.' || (100 + g) || '.' || (100 + g))::inet"),
    "net": ("cidr", "('10.' || (g % 8) || '.0.0/16')::cidr"),
    "mac": ("macaddr", "('08:00:2b:01:02:' || lpad(to_hex(g % 256), 2, '0'))::macaddr"),
    "pt": ("point", "point(g, g * 0.5)"),
    "b": ("bit(4)", "(g % 16)::bit(4)"),
    "vb": ("bit varying(8)", "(g % 200)::bit(8)::varbit"),
    "x": ("xml", "('<item n=\"' || g || '\">x</item>')::xml"),
}
_PG_TARGET_TYPES = {
    "dur": "interval",
    "r": "int4range",
    "tr": "tstzrange",
    "tv": "tsvector",
    "arr": "integer[]",
    "ip": "inet",
    "net": "cidr",
    "mac": "macaddr",
    "pt": "point",
    "b": "bit(4)",
    "vb": "bit varying(8)",
    "x": "xml",
}


@pytest.fixture
def pg_target_url(second_db: Callable[[str], str]) -> str:
    return second_db("postgresql")


@pytest.fixture
def mariadb_target_url(second_db: Callable[[str], str]) -> str:
    return second_db("mariadb")


def _run(source: str, target: str, runs: Path) -> None:
    overrides = {"source.url": source, "target.url": target, "runs_dir": str(runs), "generation.seed": 5}
    result = run_pipeline(load_config(None, overrides=overrides, environ={}))
    assert result.validation_success is True


def _make_pg_source(url: str) -> None:
    cols = ", ".join(f"{name} {sql}" for name, (sql, _) in _PG_COLUMNS.items())
    values = ", ".join(expr for _, expr in _PG_COLUMNS.values())
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE t (id integer PRIMARY KEY, {cols})"))
        conn.execute(sa.text(f"INSERT INTO t SELECT g, {values} FROM generate_series(1, 80) g"))
        conn.execute(sa.text("INSERT INTO t (id) VALUES (81)"))  # NULLs in every typed column
    engine.dispose()


@pytest.mark.usefixtures("ray_session")
def test_postgres_types_round_trip_into_the_same_types(pg_url: str, pg_target_url: str, tmp_path: Path) -> None:
    _make_pg_source(pg_url)
    # inspect: no crash on interval (duration[us]), every type kept, kinds from the one policy
    source = open_source(pg_url)
    try:
        inspected = inspect_source(source)
        sample = source.sample_table("t", rows=100)
    finally:
        source.close()
    cols = {c.name: c for c in inspected.schema.table("t").columns}
    assert {n: cols[n].type for n in _PG_COLUMNS} == {
        "dur": "INTERVAL", "r": "INT4RANGE", "tr": "TSTZRANGE", "tv": "TSVECTOR", "arr": "INTEGER[]",
        "ip": "INET", "net": "CIDR", "mac": "MACADDR", "pt": "POINT", "b": "BIT(4)", "vb": "BIT VARYING(8)",
        "x": "XML",
    }  # fmt: skip
    assert cols["dur"].kind is Kind.NUMERIC and cols["ip"].kind is Kind.IP
    assert cols["r"].kind is Kind.CATEGORICAL and cols["x"].kind is Kind.TEXT and cols["tv"].kind is Kind.TEXT
    assert sample.schema.field("dur").type == pa.duration("us")
    assert inspected.profiles["t"].columns["dur"].max is not None
    by_id = {row["id"]: row for row in sample.to_pylist()}
    assert by_id[3]["r"] == "[3,7)" and by_id[3]["arr"] == "{3,4,6}" and by_id[3]["ip"] == "192.168.103.103"
    assert by_id[3]["pt"] == "(3,1.5)" and by_id[3]["b"] == "0011"

    _run(pg_url, pg_target_url, tmp_path / "runs")

    engine = sa.create_engine(pg_target_url)
    with engine.connect() as conn:
        types = dict(
            conn.execute(
                sa.text(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'public.t'::regclass AND attnum > 0 AND NOT attisdropped"
                )
            ).all()
        )
        assert {n: types[n] for n in _PG_TARGET_TYPES} == _PG_TARGET_TYPES
        # the values are of the types (they were parsed on insert), and they make sense as such
        checks = {
            "dur": "SELECT count(*) FROM t WHERE dur > interval '0'",
            "r": "SELECT count(*) FROM t WHERE NOT isempty(r) AND lower(r) < upper(r)",
            "tr": "SELECT count(*) FROM t WHERE lower(tr) < upper(tr)",
            "tv": "SELECT count(*) FROM t WHERE length(tv) > 0",
            "arr": "SELECT count(*) FROM t WHERE array_length(arr, 1) = 3",
            "ip": "SELECT count(*) FROM t WHERE family(ip) = 4 AND masklen(ip) = 32",
            "net": "SELECT count(*) FROM t WHERE masklen(net) = 16",
            "mac": "SELECT count(*) FROM t WHERE trunc(mac) <> '08:00:2b:00:00:00'",  # faked, never copied
            "pt": "SELECT count(*) FROM t WHERE pt[0] * 0.5 = pt[1]",
            "b": "SELECT count(*) FROM t WHERE length(b) = 4",
            "vb": "SELECT count(*) FROM t WHERE length(vb) = 8",
            "x": "SELECT count(*) FROM t WHERE xml_is_well_formed_content(x::text)",
        }
        rows = conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one()
        assert rows > 20
        for name, sql in checks.items():
            found = conn.execute(sa.text(sql)).scalar_one()
            assert found >= rows // 2, (name, found, rows)
    engine.dispose()


def test_postgres_types_without_counterpart_are_refused_at_inspect(pg_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TYPE pair AS (a integer, b text)"))
        conn.execute(
            sa.text("CREATE TABLE odd (id integer PRIMARY KEY, at_tz timetz, p pair, spans int4multirange, ok int)")
        )
        conn.execute(sa.text("INSERT INTO odd VALUES (1, '10:00+02', ROW(1, 'x'), '{[1,3)}', 7)"))
    engine.dispose()

    res = runner.invoke(app, ["inspect", pg_url])
    assert res.exit_code == 2, res.output
    message = " ".join(res.output.split())
    for column, native in (("at_tz", "TIME WITH TIME ZONE"), ("p", "pair"), ("spans", "INT4MULTIRANGE")):
        assert f"table 'odd', column '{column}': type {native}" in message, message
    assert "set `excluded: true` on the column, or `type: TEXT` to treat it as text" in message
    assert "column 'ok'" not in message
    assert "(3)" in message  # every problem in one error

    # With -o the user still gets a file to edit: those columns excluded in it, and the command still exits 2.
    out = tmp_path / "schema.yaml"
    res = runner.invoke(app, ["inspect", pg_url, "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert "review it, then pass it with --schema" in " ".join(res.output.split())
    written = load_schema(out)
    odd = written.table("odd")
    assert {c.name for c in odd.columns if c.excluded} == {"at_tz", "p", "spans"}
    assert not odd.column("ok").excluded
    assert runner.invoke(app, ["inspect", pg_url, "--schema", str(out)]).exit_code == 0

    # The schema file's settings lift the refusal: excluded, or re-typed as text (read as the database's text).
    reflected = reflect_schema(sa.create_engine(pg_url))
    table = reflected.table("odd")
    columns = []
    for c in table.columns:
        if c.name == "at_tz":
            c = c.model_copy(update={"excluded": True, "kind_reason": "user: excluded"})
        elif c.name in ("p", "spans"):
            c = c.model_copy(update={"type": "TEXT", "kind": Kind.CATEGORICAL, "kind_reason": "user: as text"})
        columns.append(c)
    edited = reflected.model_copy(update={"tables": [table.model_copy(update={"columns": columns})]})
    source = open_source(pg_url, schema=edited)
    try:
        result = inspect_source(source)
        rows = source.sample_table("odd", rows=10).to_pylist()
    finally:
        source.close()
    assert result.schema.table("odd").column("at_tz").excluded
    assert rows == [{"id": 1, "p": "(1,x)", "spans": "{[1,3)}", "ok": 7}]


def test_postgres_only_types_are_refused_by_a_target_without_them(pg_url: str) -> None:
    _make_pg_source(pg_url)
    schema = reflect_schema(sa.create_engine(pg_url))
    for dialect in ("sqlite", "mysql"):
        with pytest.raises(SchemaError) as err:
            build_metadata(schema, dialect=dialect)
        problems = " ".join(err.value.problems)
        for name in ("r", "tr", "tv", "arr", "ip", "net", "mac", "pt", "vb", "x"):
            assert f"table 't', column {name!r}" in problems, (dialect, name)
        assert "`excluded: true`" in problems and "`type: TEXT`" in problems
        # BIT(n) exists on MariaDB too; an interval is kept as microseconds
        assert ("column 'b'" in problems) is (dialect == "sqlite")
        assert "column 'dur'" not in problems
    md = build_metadata(schema, dialect="postgresql")
    ddl = str(sa.schema.CreateTable(md.tables["t"]).compile(dialect=sa.dialects.postgresql.dialect()))
    assert "r INT4RANGE" in ddl and "arr INTEGER[]" in ddl and "pt POINT" in ddl and "b BIT(4)" in ddl


@pytest.mark.usefixtures("ray_session")
def test_mariadb_types_round_trip_and_spatial_types_are_refused(
    mariadb_url: str, mariadb_target_url: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE m (id INT PRIMARY KEY, colour ENUM('red','green','blue') NOT NULL, "
                "tags SET('a','b','c'), born YEAR, bits BIT(5), doc JSON, flag BIT(1))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO m SELECT seq, ELT(1 + seq % 3, 'red', 'green', 'blue'), ELT(1 + seq % 3, 'a', 'a,c', ''), "
                "1990 + seq % 30, seq % 32, JSON_OBJECT('n', seq), seq % 2 FROM seq_1_to_60"
            )
        )
    source = open_source(mariadb_url)
    try:
        inspected = inspect_source(source)
        sample = {r["id"]: r for r in source.sample_table("m", rows=100).to_pylist()}
    finally:
        source.close()
    cols = {c.name: c for c in inspected.schema.table("m").columns}
    assert {n: c.type for n, c in cols.items()} == {
        "id": "INTEGER", "colour": "VARCHAR(5)", "tags": "VARCHAR(5)", "born": "SMALLINT", "bits": "BIT(5)",
        "doc": "JSON", "flag": "BOOLEAN",
    }  # fmt: skip
    assert sample[5] == {
        "id": 5, "colour": "blue", "tags": "", "born": 1995, "bits": "00101", "doc": '{"n":5}', "flag": True,
    }  # fmt: skip

    _run(mariadb_url, mariadb_target_url, tmp_path / "runs")

    target = sa.create_engine(mariadb_target_url)
    with target.connect() as conn:
        ddl = conn.execute(sa.text("SHOW CREATE TABLE m")).all()[0][1].lower()
        assert "`colour` enum('red','green','blue') not null" in ddl
        assert "`tags` set('a','b','c')" in ddl and "`born` year" in ddl and "`bits` bit(5)" in ddl
        assert "json_valid(`doc`)" in ddl
        values = conn.execute(sa.text("SELECT BIN(bits), colour, tags FROM m WHERE bits IS NOT NULL")).all()
        assert values and all(int(b, 2) < 32 for b, _, _ in values)
        assert {c for _, c, _ in values} <= {"red", "green", "blue"} and {t for *_, t in values} <= {"a", "a,c", ""}
    target.dispose()

    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE g (id INT PRIMARY KEY, spot POINT, shape GEOMETRY)"))
    engine.dispose()
    res = runner.invoke(app, ["inspect", mariadb_url])
    assert res.exit_code == 2, res.output
    message = " ".join(res.output.split())
    assert "table 'g', column 'spot': type point" in message and "table 'g', column 'shape': type geometry" in message
    assert "`excluded: true`" in message


def test_sqlite_column_without_a_declared_type_is_refused(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE loose (id INTEGER PRIMARY KEY, anything, word VARCHAR(5), n REAL)"))
        conn.execute(sa.text("INSERT INTO loose VALUES (1, 'x', 'a', 1.5), (2, 3, 'b', 2)"))
    engine.dispose()
    source = open_source(sqlite_url)
    try:
        with pytest.raises(SchemaError) as err:
            inspect_source(source)
    finally:
        source.close()
    expected = (
        "table 'loose', column 'anything': type (no declared type) has no synthdb counterpart, so it cannot be "
        "written back as the same type; set `excluded: true` on the column, or `type: TEXT` to treat it as text, "
        "in the schema file"
    )
    assert err.value.problems == [expected]


def test_fake_ip_addresses_stay_addresses_when_the_real_ones_are_short() -> None:
    import ipaddress

    from synth_engine.pii import fake_column

    fakes = fake_column(Kind.IP, 200, seed=1, like=pa.array(["10.0.0.1", "10.1.2.3"]))
    for value in fakes.to_pylist():
        ipaddress.ip_address(value)
