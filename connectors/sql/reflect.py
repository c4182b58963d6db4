"""Reflect a SQL database into a :class:`schemas.model.DatabaseSchema`.

Tables, columns (portable type, native type, nullability, default, autoincrement), primary keys, unique
constraints *and* unique indexes, foreign keys (composite, self-referencing, cyclic) and check constraints,
for SQLite, PostgreSQL and MariaDB/MySQL. The ``get_multi_*`` inspector calls fetch each kind of object for
the whole schema at once, so a database with hundreds of tables costs a handful of catalog queries on
PostgreSQL.

Kinds are set from the SQL type alone (:func:`connectors.source.default_kind`); key columns become
``Kind.ID``.

Types, not strings: every type maps to a portable type that keeps it (PostgreSQL ``INTERVAL``, ``INET``,
``INT4RANGE``, ``INTEGER[]``, ``POINT``, ``BIT(n)``, ``XML``, ``TSVECTOR``...; MariaDB ``BIT(n)``, ``YEAR``,
``ENUM``, ``SET``, ``JSON``), and the source's own spelling is kept in ``native_type`` so that a target of the
same dialect gets the same type. A type with no portable counterpart (``TIME WITH TIME ZONE``, MariaDB spatial
types, user-defined types, a SQLite column declared without a type...) is *not* silently turned into text: the
column is marked with :data:`UNSUPPORTED_REASON` and :func:`connectors.inspect.inspect_source` refuses it, naming
the table, the column and the type, until the schema file excludes or re-types it.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.dialects.postgresql.ranges import AbstractMultiRange, AbstractRange
from sqlalchemy.engine.reflection import Inspector, ObjectKind

from connectors.source import default_kind
from connectors.sql.pg_types import PgNamedType
from connectors.sql.url import redact_url
from schemas.errors import SourceInputError
from schemas.kinds import Kind
from schemas.model import (
    CheckConstraint,
    Column,
    DatabaseSchema,
    ForeignKey,
    PrimaryKey,
    Table,
    UniqueConstraint,
)
from schemas.types import Family, parse_type

__all__ = ["EXACT_COUNT_LIMIT", "UNSUPPORTED_REASON", "portable_type", "reflect_schema"]

logger = logging.getLogger(__name__)

# Below this many (estimated) rows a table is counted exactly; above it the catalog's estimate is good enough
# for planning and is free, where COUNT(*) on a billion-row table takes minutes.
EXACT_COUNT_LIMIT = 1_000_000

UNSUPPORTED_REASON = "unsupported type"
"""``kind_reason`` prefix of a column whose type synthdb cannot round-trip; ``inspect`` refuses such columns."""

_PG_RANGES: dict[type[Any], str] = {
    postgresql.INT4RANGE: "INT4RANGE",
    postgresql.INT8RANGE: "INT8RANGE",
    postgresql.NUMRANGE: "NUMRANGE",
    postgresql.DATERANGE: "DATERANGE",
    postgresql.TSRANGE: "TSRANGE",
    postgresql.TSTZRANGE: "TSTZRANGE",
}
_PG_NAMED: dict[type[Any], str] = {
    postgresql.INET: "INET",
    postgresql.CIDR: "CIDR",
    postgresql.MACADDR: "MACADDR",
    postgresql.MACADDR8: "MACADDR8",
    postgresql.TSVECTOR: "TSVECTOR",
    postgresql.TSQUERY: "TSQUERY",
}
# PostgreSQL types SQLAlchemy does not know: registered by connectors.sql.pg_types, or (NullType) by catalog name
_PG_BY_NATIVE_NAME = {
    "point": "POINT",
    "line": "LINE",
    "lseg": "LSEG",
    "box": "BOX",
    "path": "PATH",
    "polygon": "POLYGON",
    "circle": "CIRCLE",
    "xml": "XML",
}

_COLLATE_RE = re.compile(r"\s+(COLLATE|CHARACTER SET)\s+\S+", re.IGNORECASE)
_JSON_VALID_RE = re.compile(r"^\s*json_valid\(\s*`?(?P<col>[^`]+?)`?\s*\)\s*$", re.IGNORECASE)


def portable_type(t: sa.types.TypeEngine[Any], dialect: str) -> str | None:
    """The portable SQL type string of a reflected SQLAlchemy type, or None when synthdb cannot map it.

    Args:
        t: the reflected type.
        dialect: the SQLAlchemy dialect name (``sqlite``, ``postgresql``, ``mysql``, ``mariadb``).
    """
    unsigned = bool(getattr(t, "unsigned", False))
    if dialect == "postgresql":
        special = _postgres_type(t)
        if special is not None:
            return special or None
    if isinstance(t, mysql.YEAR):
        return "SMALLINT"  # 1901..2155; a target of the same dialect gets YEAR back (native_type)
    if isinstance(t, mysql.SET):
        # the value is the members joined by commas, which MariaDB parses back into the set
        values = list(getattr(t, "values", None) or [])
        return f"VARCHAR({max(sum(len(v) for v in values) + len(values) - 1, 1)})"
    if isinstance(t, mysql.TINYINT):
        # MariaDB/MySQL spell BOOLEAN as TINYINT(1)
        if t.display_width == 1:
            return "BOOLEAN"
        return "SMALLINT"
    if isinstance(t, mysql.BIT):
        return "BOOLEAN" if (t.length or 1) == 1 else f"BIT({t.length})"
    if isinstance(t, sa.Boolean):
        return "BOOLEAN"
    if isinstance(t, sa.Integer):
        # unsigned integers need the next wider signed type to hold their top half
        if isinstance(t, sa.BigInteger):
            return "NUMERIC(20, 0)" if unsigned else "BIGINT"
        if isinstance(t, sa.SmallInteger):
            return "INTEGER" if unsigned else "SMALLINT"
        if isinstance(t, mysql.MEDIUMINT):
            return "INTEGER"
        return "BIGINT" if unsigned else "INTEGER"
    if isinstance(t, sa.Float):  # before Numeric: Float subclasses it
        # SQLite stores every float in 8 bytes, whatever the declared name
        single = dialect != "sqlite" and (
            isinstance(t, (sa.REAL, mysql.FLOAT)) and not isinstance(t, sa.Double)
        )
        if isinstance(t, mysql.FLOAT) and t.precision is not None and t.precision > 24:
            single = False
        return "REAL" if single else "DOUBLE PRECISION"
    if isinstance(t, postgresql.MONEY):
        return "NUMERIC(19, 2)"
    if isinstance(t, sa.Numeric):
        if t.precision is None:
            # An unconstrained NUMERIC holds any scale; 38 digits with 10 decimals fits Arrow's decimal128.
            return "NUMERIC(38, 10)"
        return f"NUMERIC({t.precision}, {t.scale or 0})"
    if isinstance(t, sa.Enum):
        longest = max((len(e) for e in t.enums), default=1)
        return f"VARCHAR({max(longest, 1)})"
    if isinstance(t, sa.Uuid):
        return "UUID"
    if isinstance(t, sa.JSON):
        return "JSON"
    if isinstance(t, sa.Text):
        return "TEXT"
    if isinstance(t, sa.String):
        if type(t).__name__ in ("SET",):
            return None
        if t.length is None:
            return "TEXT"
        if isinstance(t, (sa.CHAR, sa.NCHAR)):
            return f"CHAR({t.length})"
        return f"VARCHAR({t.length})"
    if isinstance(t, (sa.LargeBinary, sa.types._Binary)):
        length = getattr(t, "length", None)
        return f"BLOB({length})" if length else "BLOB"
    if isinstance(t, sa.DateTime):
        return "TIMESTAMP WITH TIME ZONE" if t.timezone else "TIMESTAMP"
    if isinstance(t, sa.Date):
        return "DATE"
    if isinstance(t, sa.Time):
        # TIME WITH TIME ZONE has no Arrow counterpart; read it as text rather than drop the offset
        return None if getattr(t, "timezone", False) else "TIME"
    if isinstance(t, (sa.Interval, postgresql.INTERVAL)):
        return "INTERVAL"
    return None


def _postgres_type(t: sa.types.TypeEngine[Any]) -> str | None:
    """The portable type of a PostgreSQL-only type; ``""`` for one that is known to be unsupported, None otherwise."""
    if isinstance(t, PgNamedType):
        return _PG_BY_NATIVE_NAME.get(t.pg_name, "")
    for cls, name in _PG_NAMED.items():
        if isinstance(t, cls):
            return name
    for cls, name in _PG_RANGES.items():
        if isinstance(t, cls):
            return name
    if isinstance(t, postgresql.BIT):
        if t.varying:
            return f"BIT VARYING({t.length})" if t.length else "BIT VARYING"
        return f"BIT({t.length or 1})"
    if isinstance(t, sa.ARRAY):
        item = portable_type(t.item_type, "postgresql")
        if item is None or parse_type(item).family in (Family.ARRAY, Family.INTERVAL):
            return ""
        return item + "[]" * max(t.dimensions or 1, 1)
    if isinstance(t, (AbstractRange, AbstractMultiRange)):
        return ""  # multiranges
    return None


def _native(t: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> str | None:
    try:
        return _COLLATE_RE.sub("", str(t.compile(dialect=dialect)))
    except Exception:  # noqa: BLE001 - NullType and some exotic types cannot compile; the caller looks the name up instead
        return None


def reflect_schema(engine: sa.Engine, *, db_schema: str | None = None) -> DatabaseSchema:
    """Reflect every table of a database schema.

    Args:
        engine: a connected engine (see :func:`connectors.sql.url.make_engine`).
        db_schema: the schema (namespace) to read; None reads the default one (PostgreSQL ``public``, the
            URL's database on MariaDB/MySQL).

    Returns:
        The schema, with kinds set from SQL types and row counts (exact below :data:`EXACT_COUNT_LIMIT` rows).

    Raises:
        SourceInputError: the schema does not exist or holds no tables.
    """
    dialect = engine.dialect.name
    insp = sa.inspect(engine)
    where = _describe(engine, db_schema)
    if db_schema is not None and dialect != "sqlite":
        schemas = insp.get_schema_names()
        if db_schema not in schemas:
            raise SourceInputError(
                f"schema {db_schema!r} does not exist in {where}; choose one of: {', '.join(sorted(schemas))}"
            )
    # SQLAlchemy warns about types it cannot map; synthdb warns itself, naming table and column
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=sa.exc.SAWarning)
        names = insp.get_table_names(schema=db_schema)
        if not names:
            hint = (
                "pass --schema NAME to read another schema, or check" if dialect == "postgresql" else "check"
            )
            raise SourceInputError(f"no tables found in {where}; {hint} the database name in the URL")
        kind = ObjectKind.TABLE
        columns = _by_name(insp.get_multi_columns(schema=db_schema, kind=kind))
        pks = _by_name(insp.get_multi_pk_constraint(schema=db_schema, kind=kind))
        fks = _by_name(insp.get_multi_foreign_keys(schema=db_schema, kind=kind))
        uqs = _by_name(insp.get_multi_unique_constraints(schema=db_schema, kind=kind))
        idxs = _by_name(insp.get_multi_indexes(schema=db_schema, kind=kind))
        checks = _by_name(_safe_checks(insp, db_schema))
    json_columns = _mariadb_json_columns(engine, db_schema) if dialect in ("mysql", "mariadb") else {}
    counts = _row_counts(engine, names, db_schema)
    table_schema = db_schema
    if table_schema is None and dialect == "postgresql":
        table_schema = insp.default_schema_name
    tables = []
    for name in sorted(names):
        tables.append(
            _table(
                engine,
                name,
                table_schema=table_schema,
                db_schema=db_schema,
                columns=columns.get(name, []),
                pk=pks.get(name) or {},
                fks=fks.get(name, []),
                uqs=uqs.get(name, []),
                idxs=idxs.get(name, []),
                checks=checks.get(name, []),
                json_columns=json_columns.get(name, set()),
                row_count=counts.get(name),
            )
        )
    logger.info("reflected %d tables from %s", len(tables), where)
    return DatabaseSchema(tables=tables, dialect=dialect, db_schema=table_schema)


def _describe(engine: sa.Engine, db_schema: str | None) -> str:
    url = redact_url(engine.url)
    if db_schema:
        return f"schema {db_schema!r} of {url}"
    if engine.dialect.name == "postgresql":
        return f"schema 'public' (the default) of {url}"
    return f"database {engine.url.database!r} ({url})"


def _by_name(multi: Mapping[tuple[str | None, str], Any]) -> dict[str, Any]:
    return {key[1]: value for key, value in multi.items()}


def _safe_checks(insp: Inspector, db_schema: str | None) -> Mapping[tuple[str | None, str], Any]:
    try:
        return insp.get_multi_check_constraints(schema=db_schema, kind=ObjectKind.TABLE)
    except NotImplementedError:
        return {}


def _mariadb_json_columns(engine: sa.Engine, db_schema: str | None) -> dict[str, set[str]]:
    """MariaDB stores JSON as LONGTEXT with a ``CHECK (json_valid(col))``: find those columns."""
    sql = sa.text(
        "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = COALESCE(:schema, DATABASE())"
    )
    found: dict[str, set[str]] = {}
    try:
        with engine.connect() as conn:
            rows = conn.execute(sql, {"schema": db_schema}).all()
    except sa.exc.DBAPIError:  # old MySQL without CHECK_CONSTRAINTS: no JSON-as-text columns to find
        return found
    for table, clause in rows:
        match = _JSON_VALID_RE.match(str(clause))
        if match:
            found.setdefault(str(table), set()).add(match["col"])
    return found


def _row_counts(engine: sa.Engine, names: list[str], db_schema: str | None) -> dict[str, int]:
    """Row counts: the catalog's estimate for huge tables, an exact COUNT(*) for the others."""
    estimates: dict[str, int] = {}
    dialect = engine.dialect.name
    with engine.connect() as conn:
        if dialect == "postgresql":
            rows = conn.execute(
                sa.text(
                    "SELECT c.relname, c.reltuples FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = COALESCE(:schema, current_schema()) AND c.relkind IN ('r', 'p')"
                ),
                {"schema": db_schema},
            ).all()
            estimates = {str(r[0]): int(r[1]) for r in rows}  # -1 when never analysed
        elif dialect in ("mysql", "mariadb"):
            rows = conn.execute(
                sa.text(
                    "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE())"
                ),
                {"schema": db_schema},
            ).all()
            estimates = {str(r[0]): int(r[1] or 0) for r in rows}
        counts: dict[str, int] = {}
        for name in names:
            estimate = estimates.get(name, -1)
            if estimate >= EXACT_COUNT_LIMIT:
                counts[name] = estimate
                continue
            query = sa.select(sa.func.count()).select_from(sa.table(name, schema=db_schema))
            counts[name] = int(conn.execute(query).scalar_one())
    return counts


def _native_name_fallback(engine: sa.Engine, table: str, column: str, db_schema: str | None) -> str | None:
    """The database's own name for a type SQLAlchemy did not recognise (for the warning and the file)."""
    dialect = engine.dialect.name
    try:
        with engine.connect() as conn:
            if dialect == "postgresql":
                return conn.execute(
                    sa.text(
                        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relname = :t AND a.attname = :c "
                        "AND n.nspname = COALESCE(:s, current_schema())"
                    ),
                    {"t": table, "c": column, "s": db_schema},
                ).scalar_one_or_none()
            if dialect in ("mysql", "mariadb"):
                return conn.execute(
                    sa.text(
                        "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_NAME = :t "
                        "AND COLUMN_NAME = :c AND TABLE_SCHEMA = COALESCE(:s, DATABASE())"
                    ),
                    {"t": table, "c": column, "s": db_schema},
                ).scalar_one_or_none()
            if dialect == "sqlite":
                quoted = engine.dialect.identifier_preparer.quote(table)
                for row in conn.exec_driver_sql(f"PRAGMA table_info({quoted})"):
                    if row[1] == column:
                        return str(row[2]) or None
    except sa.exc.DBAPIError:
        return None
    return None


def _table(
    engine: sa.Engine,
    name: str,
    *,
    table_schema: str | None,
    db_schema: str | None,
    columns: list[dict[str, Any]],
    pk: dict[str, Any],
    fks: list[dict[str, Any]],
    uqs: list[dict[str, Any]],
    idxs: list[dict[str, Any]],
    checks: list[dict[str, Any]],
    json_columns: set[str],
    row_count: int | None,
) -> Table:
    dialect = engine.dialect.name
    pk_cols: list[str] = list(pk.get("constrained_columns") or [])
    foreign_keys: list[ForeignKey] = []
    for fk in fks:
        ref_schema = fk.get("referred_schema")
        if ref_schema not in (None, db_schema, table_schema):
            logger.warning(
                "table %s: foreign key %s references %s.%s in another schema; synthdb reads one schema at a "
                "time, so the key is dropped",
                name,
                fk["constrained_columns"],
                ref_schema,
                fk["referred_table"],
            )
            continue
        foreign_keys.append(
            ForeignKey(
                columns=list(fk["constrained_columns"]),
                ref_table=fk["referred_table"],
                ref_columns=list(fk["referred_columns"]),
                name=fk.get("name"),
            )
        )
    fk_parent = {c: f"{fk.ref_table}({', '.join(fk.ref_columns)})" for fk in foreign_keys for c in fk.columns}

    out_columns: list[Column] = []
    for col in columns:
        cname = col["name"]
        satype = col["type"]
        native = _native(satype, engine.dialect)
        portable = "JSON" if cname in json_columns else portable_type(satype, dialect)
        if isinstance(satype, sa.types.NullType):
            native = _native_name_fallback(engine, name, cname, db_schema) or ""
            if dialect == "postgresql" and native in _PG_BY_NATIVE_NAME:
                portable = _PG_BY_NATIVE_NAME[native]
                native = portable
            if not native and dialect == "sqlite":
                native = "(no declared type)"  # SQLite takes any value in such a column
            native = native or None
        reason: str
        if portable is None:
            native = native or _native_name_fallback(engine, name, cname, db_schema) or type(satype).__name__
            logger.warning(
                "table %s, column %s: type %s is not supported by synthdb; inspect refuses it until the schema "
                "file excludes the column or sets its type",
                name,
                cname,
                native,
            )
            # TEXT only so that the schema stays loadable: inspect refuses the column (UNSUPPORTED_REASON)
            portable = "TEXT"
            kind = Kind.TEXT
            reason = f"{UNSUPPORTED_REASON} {native}: set `excluded: true`, or `type: TEXT` to read it as text"
        elif cname in pk_cols:
            kind, reason = Kind.ID, "primary key"
        elif cname in fk_parent:
            kind, reason = Kind.ID, f"foreign key to {fk_parent[cname]}"
        else:
            kind = default_kind(parse_type(portable))
            reason = f"from its SQL type {portable}"
        default = col.get("default")
        autoincrement = col.get("autoincrement") is True or bool(col.get("identity"))
        if default is not None and str(default).lower().startswith("nextval("):
            # a serial's sequence is the source's plumbing, not a portable default
            autoincrement, default = True, None
        out_columns.append(
            Column(
                name=cname,
                type=portable,
                native_type=native,
                nullable=bool(col.get("nullable", True)) and cname not in pk_cols,
                default=None if default is None else str(default),
                kind=kind,
                kind_reason=reason,
                autoincrement=autoincrement,
            )
        )

    unique: list[UniqueConstraint] = []
    seen: set[tuple[str, ...]] = {tuple(sorted(pk_cols))}
    for uq in uqs:
        key = tuple(sorted(uq["column_names"]))
        if key not in seen:
            seen.add(key)
            unique.append(UniqueConstraint(columns=list(uq["column_names"]), name=uq.get("name")))
    for ix in idxs:
        cols = ix.get("column_names") or []
        options = ix.get("dialect_options") or {}
        # expression indexes (a None column) and partial indexes do not make the column set unique
        if (
            not ix.get("unique")
            or not cols
            or any(c is None for c in cols)
            or options.get("postgresql_where")
        ):
            continue
        key = tuple(sorted(cols))
        if key not in seen:
            seen.add(key)
            unique.append(UniqueConstraint(columns=list(cols), name=ix.get("name")))

    check_list = []
    for ck in checks:
        text = str(ck.get("sqltext", ""))
        match = _JSON_VALID_RE.match(text)
        if match and match["col"] in json_columns:
            continue  # implied by the JSON type
        check_list.append(CheckConstraint(sqltext=text, name=ck.get("name")))

    return Table(
        name=name,
        db_schema=table_schema,
        columns=out_columns,
        primary_key=PrimaryKey(columns=pk_cols, name=pk.get("name")) if pk_cols else None,
        unique=unique,
        foreign_keys=foreign_keys,
        checks=check_list,
        row_count=row_count,
    )
