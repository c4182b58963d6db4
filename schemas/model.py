"""The typed model of a relational database: tables, columns and keys (all possibly composite).

This is the shared language of synthdb. Connectors produce it by reflection, the schema file lets a user edit it,
the plan orders work from it, and the pipeline creates the target's DDL from it. It does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.errors import SchemaError
from schemas.kinds import Kind
from schemas.types import Family, SqlType, UnknownTypeError, parse_type


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, ignored_types=(cached_property,))


class Column(_Model):
    """One column.

    Attributes:
        name: the column name, exactly as in the database (any characters; quoting is the connectors' job).
        type: portable SQL type string, parsed by :func:`schemas.types.parse_type`.
        native_type: the type as the source database spells it (informational).
        nullable: whether NULL is allowed.
        default: the server default expression, as text, when there is one.
        kind: the logical kind, which decides how the column is modelled.
        kind_reason: why the kind was chosen (inference or the user), so the schema file explains itself.
        excluded: excluded columns are neither read nor written (they must be nullable or have a default).
        autoincrement: whether the database fills the column itself (identity / serial).
        mode: ``synthesize`` (the default) or ``keep``: a kept column's values are real (public by the user's
            choice), copied from the real rows; the table's synthesized columns are conditioned on them.
    """

    name: str
    type: str
    native_type: str | None = None
    nullable: bool = True
    default: str | None = None
    kind: Kind = Kind.CATEGORICAL
    kind_reason: str | None = None
    excluded: bool = False
    autoincrement: bool = False
    mode: Literal["synthesize", "keep"] = "synthesize"

    @property
    def sql_type(self) -> SqlType:
        """The parsed portable type."""
        return parse_type(self.type)

    @property
    def family(self) -> Family:
        return self.sql_type.family

    @property
    def is_pii(self) -> bool:
        return self.kind.is_pii


class PrimaryKey(_Model):
    """A primary key, possibly composite."""

    columns: list[str]
    name: str | None = None


class UniqueConstraint(_Model):
    """A unique constraint (or unique index), possibly composite."""

    columns: list[str]
    name: str | None = None


class ForeignKey(_Model):
    """A foreign key, possibly composite.

    Attributes:
        columns: the referencing columns in this table, in the order that matches ``ref_columns``.
        ref_table: the referenced (parent) table.
        ref_columns: the referenced columns (a primary key or unique key of the parent).
        name: the constraint name, when the database has one.
        virtual: declared in the schema file only; the database does not enforce it.
        nullable: whether the key may be NULL (any of its columns nullable). Filled by :class:`Table`.
    """

    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    name: str | None = None
    virtual: bool = False
    nullable: bool = False

    @property
    def label(self) -> str:
        """A readable identifier: ``child(col, ...) -> parent(col, ...)`` without the child."""
        return f"({', '.join(self.columns)}) -> {self.ref_table}({', '.join(self.ref_columns)})"


class CheckConstraint(_Model):
    """A check constraint, as the database reports it (SQL text, kept as-is)."""

    sqltext: str
    name: str | None = None


class Table(_Model):
    """One table.

    Attributes:
        name: the table name, exactly as in the database.
        db_schema: the database schema (namespace) it lives in, for example ``public`` or ``sales``.
        columns: the columns, in database order.
        primary_key: the primary key, if any.
        unique: unique constraints other than the primary key.
        foreign_keys: outgoing foreign keys (this table is the child).
        checks: check constraints where the database reports them.
        row_count: the number of rows seen at inspection (an estimate for large tables).
        excluded: excluded tables are neither read nor generated; foreign keys into them are dropped.
        context: the foreign key name or parent table to condition this table on (overrides the plan's rule).
        mode: ``synthesize`` (the default), ``keep`` or ``subset``: a kept table's real rows are copied as they are
            (a public lookup table), and synthesized children are conditioned on them and wired to them; a subset
            table's real rows are copied too, but only a referentially closed subset of them (see
            :mod:`pipelines.stages.subset`).
    """

    name: str
    db_schema: str | None = None
    columns: list[Column]
    primary_key: PrimaryKey | None = None
    unique: list[UniqueConstraint] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    checks: list[CheckConstraint] = Field(default_factory=list)
    row_count: int | None = None
    excluded: bool = False
    context: str | None = None
    mode: Literal["synthesize", "keep", "subset"] = "synthesize"

    @model_validator(mode="after")
    def _fill_fk_nullability(self) -> Table:
        by_name = {c.name: c for c in self.columns}
        for fk in self.foreign_keys:
            nullable = any(by_name[c].nullable for c in fk.columns if c in by_name)
            if fk.nullable != nullable:
                object.__setattr__(fk, "nullable", nullable)
        return self

    def column(self, name: str) -> Column:
        """The column called ``name``; raises :class:`SchemaError` naming the table when it does not exist."""
        for col in self.columns:
            if col.name == name:
                return col
        known = ", ".join(c.name for c in self.columns)
        raise SchemaError(f"table {self.name!r} has no column {name!r} (its columns: {known})")

    @property
    def copied(self) -> bool:
        """Whether the table's real rows are copied (``keep``, or a closed ``subset`` of them), not generated."""
        return self.mode in ("keep", "subset")

    def has_column(self, name: str) -> bool:
        return any(c.name == name for c in self.columns)

    @property
    def active_columns(self) -> list[Column]:
        """Columns that are read and written (not excluded)."""
        return [c for c in self.columns if not c.excluded]

    @property
    def key_columns(self) -> set[str]:
        """Columns that belong to the primary key or to a foreign key: generated, never learned."""
        keys = set(self.primary_key.columns if self.primary_key else [])
        for fk in self.foreign_keys:
            keys.update(fk.columns)
        return keys

    @property
    def qualified_name(self) -> str:
        return f"{self.db_schema}.{self.name}" if self.db_schema else self.name

    def foreign_key(self, name_or_columns: str | list[str]) -> ForeignKey:
        """Find a foreign key by constraint name, by its columns, or by its parent table when unambiguous."""
        for fk in self.foreign_keys:
            if isinstance(name_or_columns, list):
                if fk.columns == name_or_columns:
                    return fk
            elif fk.name == name_or_columns:
                return fk
        if isinstance(name_or_columns, str):
            to_parent = [fk for fk in self.foreign_keys if fk.ref_table == name_or_columns]
            if len(to_parent) == 1:
                return to_parent[0]
        raise SchemaError(f"table {self.name!r} has no foreign key {name_or_columns!r}")


class DatabaseSchema(_Model):
    """A whole database: its tables and where they came from.

    Attributes:
        tables: every table, including excluded ones (they stay in the file so the user can re-include them).
        dialect: the source's SQLAlchemy dialect name (``sqlite``, ``postgresql``, ``mysql``...), or ``files``.
        db_schema: the database schema that was inspected (PostgreSQL ``public`` by default).
    """

    tables: list[Table]
    dialect: str | None = None
    db_schema: str | None = None

    def table(self, name: str) -> Table:
        """The table called ``name``; raises :class:`SchemaError` listing the known tables otherwise."""
        for t in self.tables:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.tables) or "none"
        raise SchemaError(f"no table {name!r} in the schema (tables: {known})")

    def has_table(self, name: str) -> bool:
        return any(t.name == name for t in self.tables)

    @property
    def active_tables(self) -> list[Table]:
        """Tables that take part in the run (not excluded)."""
        return [t for t in self.tables if not t.excluded]

    def iter_foreign_keys(self) -> Iterator[tuple[Table, ForeignKey]]:
        """Every active foreign key between active tables, with its child table."""
        active = {t.name for t in self.active_tables}
        for t in self.active_tables:
            for fk in t.foreign_keys:
                if fk.ref_table in active and not any(t.column(c).excluded for c in fk.columns):
                    yield t, fk

    def children_of(self, parent: str) -> list[tuple[Table, ForeignKey]]:
        return [(t, fk) for t, fk in self.iter_foreign_keys() if fk.ref_table == parent]

    def problems(self) -> list[str]:
        """Every problem in the schema, one readable line each, naming table and column. Empty when valid."""
        found: list[str] = []
        names = [t.name for t in self.tables]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            found.append(f"table {dup!r} is declared {names.count(dup)} times; keep one")
        by_name = {t.name: t for t in self.tables}
        for t in self.tables:
            found.extend(_table_problems(t, by_name))
        return found

    def validate_all(self) -> DatabaseSchema:
        """Raise one :class:`SchemaError` listing every problem; return ``self`` when the schema is valid."""
        found = self.problems()
        if found:
            raise SchemaError(found)
        return self


def _table_problems(t: Table, by_name: dict[str, Table]) -> list[str]:
    found: list[str] = []
    cols = {c.name: c for c in t.columns}
    col_names = [c.name for c in t.columns]
    for dup in sorted({n for n in col_names if col_names.count(n) > 1}):
        found.append(f"table {t.name!r}: column {dup!r} is declared {col_names.count(dup)} times; keep one")
    for c in t.columns:
        try:
            parse_type(c.type)
        except UnknownTypeError:
            found.append(
                f"table {t.name!r}, column {c.name!r}: unknown type {c.type!r}; use a portable SQL type "
                "such as INTEGER, VARCHAR(n), NUMERIC(p, s), TIMESTAMP, TEXT, or exclude the column"
            )
        if c.excluded and not c.nullable and c.default is None and not c.autoincrement and not t.excluded:
            found.append(
                f"table {t.name!r}, column {c.name!r}: excluded but NOT NULL without a default; the target could "
                "not be filled. Include it, or make it nullable"
            )

    def check_cols(what: str, names: list[str]) -> None:
        if not names:
            found.append(f"table {t.name!r}: {what} has no columns")
        for n in names:
            if n not in cols:
                found.append(f"table {t.name!r}: {what} names unknown column {n!r} (columns: {', '.join(cols)})")

    if t.primary_key:
        check_cols("primary key", t.primary_key.columns)
        for n in t.primary_key.columns:
            if n in cols and cols[n].excluded and not t.excluded:
                found.append(f"table {t.name!r}, column {n!r}: part of the primary key and cannot be excluded")
    for uq in t.unique:
        check_cols(f"unique constraint {uq.name or uq.columns}", uq.columns)
    for fk in t.foreign_keys:
        label = f"foreign key {fk.name or ''}{fk.label}".replace("key (", "key (", 1)
        check_cols(label, fk.columns)
        if len(fk.columns) != len(fk.ref_columns):
            found.append(
                f"table {t.name!r}: {label} has {len(fk.columns)} column(s) but references {len(fk.ref_columns)}; "
                "list the same number on both sides"
            )
            continue
        parent = by_name.get(fk.ref_table)
        if parent is None:
            found.append(
                f"table {t.name!r}: {label} references unknown table {fk.ref_table!r}; "
                f"fix the name or remove the key (tables: {', '.join(by_name)})"
            )
            continue
        pcols = {c.name: c for c in parent.columns}
        for child_col, ref_col in zip(fk.columns, fk.ref_columns, strict=True):
            if ref_col not in pcols:
                found.append(
                    f"table {t.name!r}: {label} references unknown column {fk.ref_table}.{ref_col!r} "
                    f"(columns: {', '.join(pcols)})"
                )
                continue
            if child_col not in cols:
                continue
            try:
                cf, pf = cols[child_col].family, pcols[ref_col].family
            except UnknownTypeError:
                continue
            if not _families_compatible(cf, pf):
                found.append(
                    f"table {t.name!r}, column {child_col!r} ({cols[child_col].type}) references "
                    f"{fk.ref_table}.{ref_col} ({pcols[ref_col].type}): the types differ; make them the same type"
                )
        keys = [parent.primary_key.columns] if parent.primary_key else []
        keys += [u.columns for u in parent.unique]
        if all(ref in pcols for ref in fk.ref_columns) and sorted(fk.ref_columns) not in [sorted(k) for k in keys]:
            found.append(
                f"table {t.name!r}: {label} references columns that are neither the primary key nor a unique key "
                f"of {fk.ref_table!r}; reference its key, or declare those columns unique"
            )
    if t.context is not None and t.foreign_keys:
        names = {fk.name for fk in t.foreign_keys} | {fk.ref_table for fk in t.foreign_keys}
        if t.context not in names:
            found.append(
                f"table {t.name!r}: context {t.context!r} is neither a foreign key name nor a parent table "
                f"(choose one of: {', '.join(sorted(n for n in names if n))})"
            )
    return found


def _families_compatible(a: Family, b: Family) -> bool:
    if a == b:
        return True
    numeric = {Family.INTEGER, Family.DECIMAL}
    text = {Family.STRING, Family.UUID}
    return (a in numeric and b in numeric) or (a in text and b in text)
