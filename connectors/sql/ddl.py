"""Target DDL: the schemas model turned into SQLAlchemy tables for SQLite, PostgreSQL or MariaDB/MySQL.

Portable types (:mod:`schemas.types`) map to each dialect's best native type:

=================  ===========================  ==========================  ==================
family             PostgreSQL                   MariaDB / MySQL             SQLite
=================  ===========================  ==========================  ==================
UUID               UUID                         CHAR(36)                    CHAR(36)
JSON               JSONB                        JSON (LONGTEXT + check)     TEXT
TIMESTAMP_TZ       TIMESTAMP WITH TIME ZONE     DATETIME(6), UTC values     DATETIME
TIMESTAMP / TIME   TIMESTAMP / TIME             DATETIME(6) / TIME(6)       DATETIME / TIME
BINARY             BYTEA                        LONGBLOB (VARBINARY in key) BLOB
NUMERIC(p, s)      NUMERIC(p, s)                DECIMAL(p, s)               NUMERIC(p, s)
INTERVAL           INTERVAL                     BIGINT (microseconds)       BIGINT (microseconds)
BIT(n)             BIT(n)                       BIT(n) (n <= 64)            refused
NETWORK, RANGE,    the same type (INET,         refused                     refused
ARRAY, GEOMETRIC,  INT4RANGE, INTEGER[], POINT,
XML, TEXT_SEARCH   XML, TSVECTOR...)
=================  ===========================  ==========================  ==================

A column whose type the target has not is refused (:class:`~schemas.errors.SchemaError`, every such column at
once), never silently turned into text: the schema file can exclude it or set ``type: TEXT``. When the target is the
source's dialect, the source's own spelling (``native_type``) is used for those types, and on MariaDB for ``ENUM``,
``SET`` and ``YEAR`` too (outside keys), so the target column is the same type as the source's.

MariaDB cannot index TEXT/BLOB without a prefix, so a text column that belongs to a key (primary, unique or
foreign) becomes ``VARCHAR(255)`` there (``VARBINARY(255)`` for bytes).

Foreign keys. Excluded tables and columns are left out, and so are foreign keys into them and *virtual* ones (the
source database did not enforce them either). A foreign key is *cyclic* when its child and parent are in the same
strongly connected component of the foreign-key graph (a self-reference included). On PostgreSQL and MariaDB those
are marked ``use_alter=True``, so ``CREATE TABLE`` never needs a table that does not exist yet. SQLite cannot add a
constraint to an existing table, so there they are always inline; SQLite only checks foreign keys when
``PRAGMA foreign_keys=ON`` is set on a connection, which the loader does not do.

The usual loading plan on PostgreSQL and MariaDB is: create the tables without foreign keys
(``with_foreign_keys=False``), load, then :func:`add_foreign_keys`, which also checks every row against its parent.

Check constraints are SQL text in the source's dialect: they are kept when the target is the same dialect, and
skipped (with a log line) otherwise. Server defaults follow the same rule.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterable
from typing import Any

import networkx as nx
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.exc import DBAPIError

from schemas.errors import ConnectorError, SchemaError, ValidationFailed, collect
from schemas.model import Column, DatabaseSchema, ForeignKey, Table
from schemas.types import NATIVE_TEXT_FAMILIES, Family, SqlType

__all__ = [
    "add_foreign_keys",
    "build_metadata",
    "column_type",
    "create_schema",
    "cyclic_foreign_keys",
    "dialect_family",
    "reset_sequences",
]

logger = logging.getLogger(__name__)

# Longest identifier every supported dialect accepts (PostgreSQL 63, MariaDB 64); leave room for quoting.
_MAX_NAME = 60
# utf8mb4 needs 4 bytes a character and InnoDB keys hold 3072 bytes: 255 characters leaves room for composites.
_MARIADB_KEY_VARCHAR = 255


def dialect_family(name: str | None) -> str:
    """The dialect family synthdb writes for: ``postgresql``, ``mysql`` (MariaDB too) or ``sqlite``.

    Args:
        name: a SQLAlchemy dialect name (``postgresql``, ``postgres``, ``mysql``, ``mariadb``, ``sqlite``), or a
            full URL drivername such as ``postgresql+psycopg``.

    Raises:
        ConnectorError: for a dialect synthdb cannot write.
    """
    base = (name or "").split("+", 1)[0].lower()
    if base in ("postgresql", "postgres"):
        return "postgresql"
    if base in ("mysql", "mariadb"):
        return "mysql"
    if base == "sqlite":
        return "sqlite"
    raise ConnectorError(
        f"cannot write DDL for dialect {name!r}: expected one of sqlite, postgresql, mysql, mariadb; "
        "choose a target URL of one of those databases"
    )


def cyclic_foreign_keys(schema: DatabaseSchema) -> set[tuple[str, int]]:
    """The foreign keys that lie on a cycle of the foreign-key graph, self-references included.

    Returns:
        ``(child table name, index in child.foreign_keys)`` for each cyclic foreign key.
    """
    graph: nx.DiGraph = nx.DiGraph()
    pairs = list(_live_foreign_keys(schema))
    graph.add_nodes_from(t.name for t in schema.active_tables)
    graph.add_edges_from((t.name, fk.ref_table) for t, _, fk in pairs)
    component = {}
    for i, scc in enumerate(nx.strongly_connected_components(graph)):
        for name in scc:
            component[name] = i
    return {(t.name, idx) for t, idx, fk in pairs if component[t.name] == component[fk.ref_table]}


class _NativeType(sa.types.UserDefinedType[Any]):
    """A column type spelled as the source database spells it (``INT4RANGE``, ``INTEGER[]``, ``SET('a','b')``)."""

    cache_ok = True

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def get_col_spec(self, **kw: Any) -> str:
        return self.spec


# MariaDB types kept as they are when the target is MariaDB too (elsewhere: SMALLINT, VARCHAR(n))
_MYSQL_NATIVE_PREFIXES = ("ENUM(", "SET(", "YEAR")
_MYSQL_MAX_BITS = 64


def column_type(
    col: Column, *, dialect: str, in_key: bool = False, source_dialect: str | None = None
) -> sa.types.TypeEngine[Any]:
    """The SQLAlchemy type for a portable column type on a dialect family.

    A type only some dialects have (network addresses, ranges, arrays, geometric values, bit strings, XML,
    text-search vectors) gets the same native type on a target that has it (the source's own spelling when the
    source is the same dialect), and is refused on one that does not.

    Args:
        col: the column.
        dialect: ``postgresql``, ``mysql`` or ``sqlite`` (see :func:`dialect_family`).
        in_key: whether the column belongs to a primary, unique or foreign key (MariaDB needs bounded types there).
        source_dialect: the source's dialect family, when known (a same-dialect target keeps native types).

    Raises:
        SchemaError: the target dialect has no type that holds the column's values as the same type.
    """
    st = col.sql_type
    native = (col.native_type or "").strip()
    same = source_dialect == dialect and bool(native)
    if dialect == "mysql" and same and native.upper().startswith(_MYSQL_NATIVE_PREFIXES) and not in_key:
        return _NativeType(native)
    if st.family in NATIVE_TEXT_FAMILIES:
        return _native_text_type(col, st, dialect, native if same else None)
    return _map_type(st, dialect, in_key)


def _native_text_type(col: Column, st: SqlType, dialect: str, native: str | None) -> sa.types.TypeEngine[Any]:
    if dialect == "postgresql":
        return _NativeType(native or str(st))
    if dialect == "mysql" and st.family is Family.BIT and st.name == "BIT" and (st.length or 1) <= _MYSQL_MAX_BITS:
        return mysql.BIT(st.length or 1)
    where = {"mysql": "MariaDB/MySQL", "sqlite": "SQLite"}.get(dialect, dialect)
    raise SchemaError(
        f"column {col.name!r}: type {col.native_type or st} has no counterpart in {where}, so its values cannot be "
        "written as the same type; write to a PostgreSQL target, or set `excluded: true` on the column, or "
        "`type: TEXT` to store its text form, in the schema file"
    )


def _map_type(st: SqlType, dialect: str, in_key: bool) -> sa.types.TypeEngine[Any]:
    f = st.family
    pg, my = dialect == "postgresql", dialect == "mysql"
    if f is Family.INTEGER:
        return {16: sa.SmallInteger(), 32: sa.Integer()}.get(st.int_bits, sa.BigInteger())
    if f is Family.FLOAT:
        return sa.REAL() if st.name == "REAL" else sa.Double()
    if f is Family.DECIMAL:
        if st.precision is None:
            # MariaDB's bare DECIMAL means DECIMAL(10, 0), which would silently round; take its widest instead.
            return mysql.DECIMAL(65, 30) if my else sa.Numeric()
        return sa.Numeric(st.precision, st.scale or 0)
    if f is Family.STRING:
        if st.name == "TEXT" or st.length is None:
            if my and in_key:
                return sa.String(_MARIADB_KEY_VARCHAR)
            return sa.Text()
        if st.name == "CHAR":
            return sa.CHAR(st.length)
        if my and st.length > 16_383 and not in_key:
            return sa.Text()  # above the utf8mb4 row limit MariaDB wants TEXT anyway
        return sa.String(st.length)
    if f is Family.BOOLEAN:
        return sa.Boolean(create_constraint=False)
    if f is Family.DATE:
        return sa.Date()
    if f is Family.TIME:
        return mysql.TIME(fsp=6) if my else sa.Time()
    if f is Family.TIMESTAMP:
        return mysql.DATETIME(fsp=6) if my else sa.DateTime()
    if f is Family.TIMESTAMP_TZ:
        if pg:
            return sa.DateTime(timezone=True)
        # No zone-aware type elsewhere: values are stored as UTC wall-clock time.
        return mysql.DATETIME(fsp=6) if my else sa.DateTime()
    if f is Family.BINARY:
        if pg:
            return postgresql.BYTEA()
        if my:
            if in_key:
                return mysql.VARBINARY(st.length or _MARIADB_KEY_VARCHAR)
            return mysql.LONGBLOB()
        return sa.LargeBinary()
    if f is Family.UUID:
        return postgresql.UUID(as_uuid=False) if pg else sa.CHAR(36)
    if f is Family.JSON:
        if pg:
            return postgresql.JSONB(none_as_null=True)
        if my:
            return sa.JSON(none_as_null=True)
        return sa.Text()
    if f is Family.INTERVAL:
        # Only PostgreSQL has intervals; elsewhere keep microseconds as an integer.
        return postgresql.INTERVAL() if pg else sa.BigInteger()
    raise ConnectorError(f"no target type for SQL type {st} (family {f})")  # pragma: no cover - enum exhausted


def build_metadata(
    schema: DatabaseSchema,
    *,
    dialect: str,
    db_schema: str | None = None,
    with_foreign_keys: bool = True,
) -> sa.MetaData:
    """SQLAlchemy tables for every active table of ``schema``, typed for ``dialect``.

    Args:
        schema: the database model; excluded tables and columns are left out.
        dialect: the target dialect (``sqlite``, ``postgresql``, ``mysql``, ``mariadb``; a drivername works too).
        db_schema: the target namespace (PostgreSQL schema, MariaDB database); None for the connection's default.
            The source tables' own ``db_schema`` is ignored: the target decides where tables go.
        with_foreign_keys: include foreign keys. Cyclic ones get ``use_alter=True`` on PostgreSQL and MariaDB.

    Returns:
        A MetaData holding one ``sa.Table`` per active table, with keys, unique and (same-dialect) check
        constraints.
    """
    family = dialect_family(dialect)
    source_family = _source_family(schema)
    md = sa.MetaData(schema=db_schema)
    cyclic = cyclic_foreign_keys(schema) if with_foreign_keys else set()
    fks_by_table: dict[str, list[tuple[int, ForeignKey]]] = {}
    for t, idx, fk in _live_foreign_keys(schema):
        fks_by_table.setdefault(t.name, []).append((idx, fk))
    used_names: set[str] = set()
    problems: list[str] = []
    for table in schema.active_tables:
        # Foreign-key columns count as keys even when the keys come later (add_foreign_keys): the types must not
        # change between the two calls.
        keys = _key_columns(table, [fk for _, fk in fks_by_table.get(table.name, [])])
        columns = []
        for c in table.active_columns:
            try:
                columns.append(_column(c, table, family, source_family, c.name in keys))
            except SchemaError as exc:
                problems.extend(f"table {table.name!r}, {p}" for p in exc.problems)
        constraints: list[sa.schema.SchemaItem] = []
        if table.primary_key:
            constraints.append(
                sa.PrimaryKeyConstraint(
                    *table.primary_key.columns,
                    name=_name(table.primary_key.name, "pk", table.name, table.primary_key.columns, used_names),
                )
            )
        for uq in table.unique:
            if any(table.column(c).excluded for c in uq.columns):
                continue
            constraints.append(
                sa.UniqueConstraint(*uq.columns, name=_name(uq.name, "uq", table.name, uq.columns, used_names))
            )
        for check in table.checks:
            if source_family == family:
                constraints.append(
                    sa.CheckConstraint(check.sqltext, name=_name(check.name, "ck", table.name, [], used_names))
                )
            else:
                logger.info(
                    "table %r: check constraint %s (%s) is written for %s, not %s; skipped",
                    table.name, check.name or "", check.sqltext, source_family or "an unknown dialect", family,
                )
        sa.Table(table.name, md, *columns, *constraints)
    collect(problems, header=f"The target ({family}) cannot hold some columns as their own type")
    # Foreign keys go on in a second pass, with Column objects rather than "table.column" strings: those strings
    # are split on dots, which a quoted name may contain, and a cycle's parent may not exist in the first pass.
    for table in schema.active_tables if with_foreign_keys else []:
        sa_table = _table(md, table.name, db_schema)
        for idx, fk in fks_by_table.get(table.name, []):
            parent = _table(md, fk.ref_table, db_schema)
            sa_table.append_constraint(
                sa.ForeignKeyConstraint(
                    fk.columns,
                    [parent.c[c] for c in fk.ref_columns],
                    name=_name(fk.name, "fk", table.name, fk.columns, used_names),
                    use_alter=family != "sqlite" and (table.name, idx) in cyclic,
                )
            )
    return md


def create_schema(
    engine: sa.Engine,
    schema: DatabaseSchema,
    *,
    db_schema: str | None = None,
    with_foreign_keys: bool = True,
) -> sa.MetaData:
    """Create every active table of ``schema`` in ``engine``'s database (the namespace too, on PostgreSQL).

    Args:
        engine: the target (usually a staging area).
        schema: the database model.
        db_schema: the target namespace; None for the connection's default.
        with_foreign_keys: create foreign keys now. Pass False on PostgreSQL/MariaDB to load first and call
            :func:`add_foreign_keys` afterwards.

    Returns:
        The MetaData that was created.

    Raises:
        ConnectorError: when the database refuses the DDL; the message names the statement's table.
    """
    md = build_metadata(schema, dialect=engine.dialect.name, db_schema=db_schema, with_foreign_keys=with_foreign_keys)
    try:
        with engine.begin() as conn:
            if db_schema is not None and engine.dialect.name == "postgresql":
                conn.execute(sa.schema.CreateSchema(db_schema, if_not_exists=True))
            with warnings.catch_warnings():
                # SQLite keeps cyclic foreign keys inline (it checks them lazily); SQLAlchemy warns it cannot sort.
                warnings.filterwarnings("ignore", message="Cannot correctly sort tables", category=sa.exc.SAWarning)
                md.create_all(conn)
    except DBAPIError as exc:
        raise ConnectorError(
            f"creating the target tables failed: {_first_line(exc)}; check that the target user may create "
            f"tables{' in schema ' + repr(db_schema) if db_schema else ''}"
        ) from None
    logger.info("created %d table(s) on %s", len(md.tables), engine.dialect.name)
    return md


def add_foreign_keys(engine: sa.Engine, schema: DatabaseSchema, *, db_schema: str | None = None) -> int:
    """Add every foreign key of ``schema`` to tables that already exist and hold data (PostgreSQL, MariaDB).

    Each ``ALTER TABLE ... ADD CONSTRAINT`` checks the rows already there, so this is also an integrity check.
    On SQLite this does nothing: SQLite cannot add constraints to existing tables, so they are created inline.

    Returns:
        The number of foreign keys added.

    Raises:
        ValidationFailed: when rows break a foreign key; names the child table, its columns and the parent.
        ConnectorError: when the database refuses the statement for another reason.
    """
    family = dialect_family(engine.dialect.name)
    if family == "sqlite":
        logger.info("SQLite: foreign keys are created inline with the tables; nothing to add")
        return 0
    md = build_metadata(schema, dialect=family, db_schema=db_schema, with_foreign_keys=True)
    added = 0
    for table in md.sorted_tables:
        for fkc in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
            label = f"table {table.name!r}: foreign key ({', '.join(fkc.column_keys)}) -> {fkc.referred_table.name}"
            try:
                with engine.begin() as conn:
                    conn.execute(sa.schema.AddConstraint(fkc))
            except sa.exc.IntegrityError as exc:
                raise ValidationFailed(
                    f"{label}: some rows reference a parent row that does not exist ({_first_line(exc)}); "
                    "the generated keys are inconsistent, so the target was not replaced"
                ) from None
            except DBAPIError as exc:
                if _is_fk_violation(exc):
                    raise ValidationFailed(
                        f"{label}: some rows reference a parent row that does not exist ({_first_line(exc)}); "
                        "the generated keys are inconsistent, so the target was not replaced"
                    ) from None
                raise ConnectorError(f"{label}: adding the constraint failed: {_first_line(exc)}") from None
            added += 1
    logger.info("added %d foreign key(s)", added)
    return added


def reset_sequences(engine: sa.Engine, schema: DatabaseSchema, *, db_schema: str | None = None) -> None:
    """Move PostgreSQL identity/serial sequences past the loaded keys, so later inserts do not collide.

    MariaDB and SQLite advance their counters on explicit inserts already, so this only acts on PostgreSQL.
    """
    if dialect_family(engine.dialect.name) != "postgresql":
        return
    prep = engine.dialect.identifier_preparer
    with engine.begin() as conn:
        for table in schema.active_tables:
            for col in table.active_columns:
                if not (col.autoincrement and col.family is Family.INTEGER):
                    continue
                qualified = prep.quote(table.name) if db_schema is None else (
                    f"{prep.quote_schema(db_schema)}.{prep.quote(table.name)}"
                )
                seq = conn.execute(
                    sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": qualified, "c": col.name}
                ).scalar()
                if seq is None:
                    continue
                conn.execute(
                    sa.text(
                        f"SELECT setval(:s, COALESCE((SELECT MAX({prep.quote(col.name)}) FROM {qualified}), 0) + 1,"
                        " false)"
                    ),
                    {"s": seq},
                )


# ---------------------------------------------------------------------------------------------------------------


def _live_foreign_keys(schema: DatabaseSchema) -> Iterable[tuple[Table, int, ForeignKey]]:
    """Foreign keys to write: between active tables, on active columns, not virtual."""
    active = {t.name for t in schema.active_tables}
    for t in schema.active_tables:
        for idx, fk in enumerate(t.foreign_keys):
            if fk.virtual or fk.ref_table not in active:
                continue
            if any(t.column(c).excluded for c in fk.columns):
                continue
            yield t, idx, fk


def _key_columns(table: Table, fks: list[ForeignKey]) -> set[str]:
    keys = set(table.primary_key.columns if table.primary_key else [])
    for uq in table.unique:
        keys.update(uq.columns)
    for fk in fks:
        keys.update(fk.columns)
    return keys


def _source_family(schema: DatabaseSchema) -> str | None:
    try:
        return dialect_family(schema.dialect) if schema.dialect else None
    except ConnectorError:
        return None  # a files source: none of its SQL text is portable


def _column(col: Column, table: Table, family: str, source_family: str | None, in_key: bool) -> sa.Column[Any]:
    type_ = column_type(col, dialect=family, in_key=in_key, source_dialect=source_family)
    in_pk = table.primary_key is not None and col.name in table.primary_key.columns
    single_int_pk = (
        in_pk and table.primary_key is not None and len(table.primary_key.columns) == 1
        and col.family is Family.INTEGER
    )
    server_default = None
    if col.default is not None and not col.autoincrement and source_family == family and "nextval(" not in col.default:
        server_default = sa.text(col.default)
    return sa.Column(
        col.name,
        type_,
        nullable=col.nullable and not in_pk,
        # Identity only where the source had it; synthdb always supplies key values itself.
        autoincrement=bool(col.autoincrement and single_int_pk),
        server_default=server_default,
    )


def _table(md: sa.MetaData, name: str, db_schema: str | None) -> sa.Table:
    return md.tables[f"{db_schema}.{name}" if db_schema else name]


def _name(given: str | None, prefix: str, table: str, columns: list[str], used: set[str]) -> str:
    """Keep the source's constraint name when it is short and unused, otherwise a deterministic one."""
    if given and len(given) <= _MAX_NAME and given not in used:
        used.add(given)
        return given
    base = "_".join([prefix, table, *columns]) if columns else f"{prefix}_{table}"
    candidate = base
    n = 1
    while len(candidate) > _MAX_NAME or candidate in used:
        digest = hashlib.md5(f"{base}#{n}".encode()).hexdigest()[:8]
        candidate = f"{base[: _MAX_NAME - 9]}_{digest}"
        n += 1
    used.add(candidate)
    return candidate


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _is_fk_violation(exc: DBAPIError) -> bool:
    text = str(getattr(exc, "orig", exc))
    # MariaDB 1452: "Cannot add or update a child row: a foreign key constraint fails"; PostgreSQL 23503.
    return "1452" in text or "foreign key constraint fails" in text or "23503" in text
