"""A generation spec: the schema file plus declared distributions, for schema-only generation (no real data).

A spec is a schema file (the format ``synthdb inspect -o`` writes, read by :mod:`schemas.schema_file`) with one
more top-level block, ``distributions``, keyed by table::

    distributions:
      customers:
        rows: 1000                                     # a table's row count (a child's: its total)
        columns:
          segment: {values: {retail: 0.6, business: 0.4}}          # categorical / boolean shares
          age: {distribution: normal, mean: 41, sd: 12, min: 18, max: 95}
          income: {quantiles: [12000, 25000, 40000, 150000], null_share: 0.1}
          signup: {min: 2020-01-01, max: 2024-12-31}   # uniform between the bounds
          email: {null_share: 0.02}                    # PII: faked by its kind; only its NULL share is declared
      orders:
        children:                                      # per foreign key (its columns, or the parent table)
          customer_id: {counts: {0: 0.2, 1: 0.5, 3: 0.3}}
        columns:
          amount: {distribution: lognormal, mu: 3.5, sigma: 0.8, max: 5000}

This module parses and checks that block against the schema; it is pure (no I/O). Every problem is collected with
the line it is on and raised once by the caller (see :func:`pipelines.spec.load_spec`).
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import pyarrow as pa

from schemas.kinds import Kind
from schemas.model import DatabaseSchema, Table
from schemas.plan import ContextChoice, FkRef, Plan
from schemas.policy import Role, table_roles

SHARE_TOLERANCE = 1e-3
"""How far declared shares may sum away from 1 (rounding in a hand-written file)."""

DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "normal": ("mean", "sd"),
    "uniform": (),
    "lognormal": ("mu", "sigma"),
    "exponential": ("mean",),
}
"""Named numeric distributions and their required parameters (``min``/``max`` bound any of them)."""

COUNT_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {"poisson": ("mean",), "fixed": ("count",)}
"""Named children-per-parent distributions and their required parameters."""

_TABLE_KEYS = ("rows", "columns", "children")
_COLUMN_KEYS = ("null_share", "values", "quantiles", "distribution", "min", "max", "format", "max_length",
                "mean", "sd", "mu", "sigma")
_CHILDREN_KEYS = ("counts", "quantiles", "distribution", "mean", "count", "max")
_FORMAT_KEYS = ("style", "first", "prefix", "suffix", "alphabets", "uppercase")
_NUMERIC_KINDS = frozenset({Kind.NUMERIC, Kind.DATETIME, Kind.DATE, Kind.TIME})
_CATEGORY_KINDS = frozenset({Kind.CATEGORICAL, Kind.BOOLEAN})

Locate = Callable[[Any, Any], int | None]
"""``locate(node, key)``: the 0-based line of ``key`` in the mapping ``node`` (or of the node when key is None)."""


@dataclass(frozen=True)
class ColumnSpec:
    """One column's declared distribution.

    Numbers are in the column's *storage* units: floats for numbers and decimals, days for dates, microseconds
    (the Arrow unit) for timestamps and times, so that every numeric kind shares one quantile machinery.

    Attributes:
        null: the NULL share (``null_share`` in the file; a bare ``null:`` key is read as it too).
        values: categories (values of the column's Arrow type) with their shares; for a number, exact values.
        quantiles: ``(probability, value)`` knots of a piecewise-linear quantile function (first: p=0, last: p=1).
        distribution: a named distribution (see :data:`DISTRIBUTIONS`), with ``params``.
        params: the named distribution's parameters (storage units).
        lo: the lower bound (storage units), or None.
        hi: the upper bound (storage units), or None.
        key_format: for a generated key, its format (``style`` and the fields of ``synth_engine.keys.KeyFormat``).
        max_length: for a faked column, the longest value.
    """

    null: float = 0.0
    values: tuple[tuple[Any, float], ...] | None = None
    quantiles: tuple[tuple[float, float], ...] | None = None
    distribution: str | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    lo: float | None = None
    hi: float | None = None
    key_format: Mapping[str, Any] | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class ChildrenSpec:
    """Children per parent of one foreign key, zeros included.

    Attributes:
        counts: ``(count, share of parents)`` pairs (a histogram).
        quantiles: ``(probability, count)`` knots of the count's quantile function.
        distribution: ``poisson`` or ``fixed`` (see :data:`COUNT_DISTRIBUTIONS`), with ``params``.
        params: the distribution's parameters.
        max: counts above this are cut to it.
    """

    counts: tuple[tuple[int, float], ...] | None = None
    quantiles: tuple[tuple[float, float], ...] | None = None
    distribution: str | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    max: int | None = None


@dataclass(frozen=True)
class TableSpec:
    """One table's declared aggregates: its rows (root tables), columns and children per parent."""

    table: str
    rows: int | None = None
    columns: Mapping[str, ColumnSpec] = field(default_factory=dict)
    children: Mapping[str, ChildrenSpec] = field(default_factory=dict)  # keyed by FkRef.label


@dataclass(frozen=True)
class Spec:
    """A whole spec: the schema, its plan and each table's declared aggregates."""

    schema: DatabaseSchema
    plan: Plan
    tables: Mapping[str, TableSpec]


def fk_key(ref: FkRef | ContextChoice) -> str:
    """How a spec names a foreign key under ``children``: its columns, comma-separated."""
    return ", ".join(ref.columns)


def ref_label(ref: FkRef | ContextChoice) -> str:
    """A foreign key's label (``child(cols) -> parent(cols)``, as :attr:`FkRef.label`), also for a context."""
    if isinstance(ref, FkRef):
        return ref.label
    return f"{ref.table}({', '.join(ref.columns)}) -> {ref.parent}({', '.join(ref.ref_columns)})"


def ref_parent(ref: FkRef | ContextChoice) -> str:
    return ref.ref_table if isinstance(ref, FkRef) else ref.parent


def storage_value(value: Any, arrow_type: pa.DataType) -> float:
    """A scalar of the column as a number in its storage unit (see :class:`ColumnSpec`).

    Raises:
        ValueError: when the value is not of the column's type (``"abc"`` for a number, ``"2024-13-01"``).
    """
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    if pa.types.is_temporal(arrow_type):
        if pa.types.is_time(arrow_type) and isinstance(value, str):
            value = time.fromisoformat(value)
        elif pa.types.is_timestamp(arrow_type) and isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        elif pa.types.is_timestamp(arrow_type) and isinstance(value, datetime) and value.tzinfo is not None:
            value = value.replace(tzinfo=None) - (value.utcoffset() or (value - value))
        elif pa.types.is_date(arrow_type) and isinstance(value, datetime):
            value = value.date()
        if isinstance(value, str):
            arr = pa.array([value]).cast(arrow_type)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)  # already in storage units
        else:
            arr = pa.array([value]).cast(arrow_type)
        storage = pa.int32() if arrow_type.bit_width == 32 else pa.int64()
        return float(arr.cast(storage)[0].as_py())
    if isinstance(value, str):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def category_value(value: Any, arrow_type: pa.DataType) -> Any:
    """A category as a value of the column's Arrow type (``'true'`` for a boolean, ``1`` for a text column...)."""
    if pa.types.is_boolean(arrow_type):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError(f"{value!r} is not true or false")
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if pa.types.is_temporal(arrow_type) and isinstance(value, str):
        return pa.array([value]).cast(arrow_type)[0].as_py()
    return pa.array([value]).cast(arrow_type)[0].as_py()


def parse_distributions(
    raw: Any, schema: DatabaseSchema, plan: Plan, *, source: str, locate: Locate
) -> tuple[Spec, list[str]]:
    """Read the ``distributions`` block against ``schema``; every problem names its file, line, table and column.

    Args:
        raw: the loaded block (a mapping of table name to table block).
        schema: the spec's schema (already validated).
        plan: its plan (which tables are roots, which foreign key is each child's context).
        source: the file's name, for messages.
        locate: the line of a key in a loaded mapping (see :data:`Locate`).

    Returns:
        The spec, and the problems (empty when it is valid).
    """
    reader = _Reader(schema, plan, source, locate)
    return Spec(schema=schema, plan=plan, tables=reader.read(raw)), reader.problems


class _Reader:
    def __init__(self, schema: DatabaseSchema, plan: Plan, source: str, locate: Locate) -> None:
        self.schema = schema
        self.plan = plan
        self.source = source
        self.locate = locate
        self.problems: list[str] = []

    def at(self, node: Any, key: Any, where: str, message: str) -> None:
        line = self.locate(node, key)
        loc = f"{self.source}:{line + 1}" if line is not None else self.source
        self.problems.append(f"{loc}: {where}: {message}")

    def unknown_keys(self, node: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in node:
            if key is None and "null_share" in allowed:
                continue  # a bare `null:` key (YAML reads it as None): the NULL share
            if key not in allowed:
                guess = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {guess[0]!r}? " if guess else ""
                self.at(node, key, where, f"unknown key {key!r}; {hint}allowed keys: {', '.join(allowed)}")

    # -- the block ------------------------------------------------------------------------------------------------

    def read(self, raw: Any) -> dict[str, TableSpec]:
        active = {t.name: t for t in self.schema.active_tables}
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.at(raw, None, "distributions", "must be a mapping of table name to {rows, columns, children}")
            raw = {}
        out: dict[str, TableSpec] = {}
        for name, node in raw.items():
            if name not in active:
                near = difflib.get_close_matches(str(name), list(active), n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                self.at(raw, name, f"table {name!r}", f"unknown table ({hint}tables: {', '.join(active)}); fix "
                        "its name or remove its block")
                continue
            out[name] = self.table(active[name], node, raw)
        for t in self.schema.active_tables:
            if t.copied:
                self.at(raw, t.name, f"table {t.name!r}", f"mode is {t.mode}, but a spec has no real rows to "
                        "copy; set mode: synthesize (or remove it)")
            for c in t.active_columns:
                if c.mode == "keep":
                    self.at(raw, t.name, f"table {t.name!r}, column {c.name!r}", "mode is keep, but a spec has no "
                            "real values to keep; set mode: synthesize (or remove it)")
            if t.name not in out:
                out[t.name] = self.table(t, {}, raw)
        return out

    def table(self, table: Table, node: Any, parent: Any) -> TableSpec:
        where = f"table {table.name!r}"
        if node is None:
            node = {}
        if not isinstance(node, Mapping):
            self.at(parent, table.name, where, "must be a mapping with rows, columns and children")
            node = {}
        self.unknown_keys(node, _TABLE_KEYS, where)
        roles = table_roles(table, self.plan)
        ctx = self.plan.context.get(table.name)
        rows = node.get("rows")
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
            self.at(node, "rows", where, f"rows must be a whole number of at least 1, got {rows!r}")
            rows = None
        if rows is None and ctx is None:
            rows = table.row_count if table.row_count else None
            if rows is None and "rows" not in node:
                listed = isinstance(parent, Mapping) and table.name in parent
                self.at(parent if listed else None, table.name if listed else None, where,
                        "a root table needs its row count: add `rows: N` under "
                        f"distributions.{table.name} (or row_count in its schema entry)")
        fk_refs: list[FkRef | ContextChoice] = [*([ctx] if ctx else []), *roles.secondary, *roles.deferred]
        refs = {fk_key(r): r for r in fk_refs}
        raw_cols = node.get("columns") or {}
        if not isinstance(raw_cols, Mapping):
            self.at(node, "columns", where, "columns must be a mapping of column name to its distribution")
            raw_cols = {}
        columns: dict[str, ColumnSpec] = {}
        names = [c.name for c in table.active_columns]
        for cname, cnode in raw_cols.items():
            if cname not in names:
                near = difflib.get_close_matches(str(cname), names, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                state = "is excluded" if table.has_column(str(cname)) else "is not in the table"
                self.at(raw_cols, cname, f"{where}, column {cname!r}",
                        f"{state} ({hint}columns: {', '.join(names)}); fix its name or remove it")
                continue
            columns[cname] = self.column(table, cname, roles.roles[cname], roles.learned_kinds.get(cname),
                                         cnode, raw_cols)
        for cname, role in roles.roles.items():
            if cname in columns:
                continue
            kind = roles.learned_kinds.get(cname)
            if role is Role.LEARNED and kind is not None and kind in (_NUMERIC_KINDS | _CATEGORY_KINDS):
                example = ("{values: {a: 0.7, b: 0.3}}" if kind in _CATEGORY_KINDS
                           else "{min: ..., max: ...} or {quantiles: [...]}")
                self.at(raw_cols or node, None, f"{where}, column {cname!r}",
                        f"its {kind.value} distribution is not declared; add `{cname}: {example}` under "
                        f"distributions.{table.name}.columns")
            elif role is Role.LEARNED and kind is not None:
                self.at(raw_cols or node, None, f"{where}, column {cname!r}",
                        f"kind {kind.value} cannot be declared in a spec; set `excluded: true` on the column or "
                        "give it a categorical, numeric or text kind in the schema part")
            columns.setdefault(cname, ColumnSpec())
        children: dict[str, ChildrenSpec] = {}
        raw_children = node.get("children") or {}
        if not isinstance(raw_children, Mapping):
            self.at(node, "children", where, "children must be a mapping of foreign key to children per parent")
            raw_children = {}
        for key, cnode in raw_children.items():
            ref = refs.get(str(key))
            if ref is None:
                by_parent = [r for r in refs.values() if ref_parent(r) == str(key)]
                ref = by_parent[0] if len(by_parent) == 1 else None
            if ref is None:
                self.at(raw_children, key, f"{where}, children {key!r}",
                        f"no foreign key of {table.name!r} has the columns or the parent {key!r}; name one of: "
                        f"{', '.join(refs) or 'none (the table has no foreign key)'}")
                continue
            label = ref_label(ref)
            children[label] = self.children(f"{where}, children of {label}", cnode, raw_children, key)
        if ctx is not None and ref_label(ctx) not in children and rows is None:
            self.at(raw_children or node, None, where,
                    f"children per parent of its context foreign key {ref_label(ctx)} are not declared; add "
                    f"`children: {{{fk_key(ctx)}: {{counts: {{0: 0.1, 1: 0.5, 2: 0.4}}}}}}` (or `rows: N` for "
                    "a Poisson count with that total)")
        return TableSpec(table=table.name, rows=rows, columns=columns, children=children)

    # -- a column -------------------------------------------------------------------------------------------------

    def column(
        self, table: Table, name: str, role: Role, kind: Kind | None, node: Any, parent: Any
    ) -> ColumnSpec:
        where = f"table {table.name!r}, column {name!r}"
        col = table.column(name)
        if not isinstance(node, Mapping):
            self.at(parent, name, where, "must be a mapping such as {values: {...}} or {min: ..., max: ...}")
            return ColumnSpec()
        self.unknown_keys(node, _COLUMN_KEYS, where)
        arrow_type = col.sql_type.to_arrow()
        null_key = "null_share" if "null_share" in node else None
        null = self.share(node, null_key, where) if null_key in node else 0.0
        if null and not col.nullable:
            self.at(node, null_key, where, f"null_share is {null} but the column is NOT NULL; remove it or make "
                    "the column nullable")
            null = 0.0
        declared = [k for k in ("values", "quantiles", "distribution", "min", "max", "mean", "sd", "mu", "sigma")
                    if k in node]
        if role is not Role.LEARNED:
            what = {Role.PII: f"faked as {col.kind.value}", Role.KEY: "generated as a unique key",
                    Role.FOREIGN_KEY: "wired to generated parents", Role.SEQUENCE: "numbered 1..k per parent"}
            if declared:
                self.at(node, declared[0], where,
                        f"is {what.get(role, 'not learned')}: only `null`"
                        f"{', `format`' if role is Role.KEY else ''}{', `max_length`' if role is Role.PII else ''} "
                        f"apply; remove {', '.join(declared)}")
            fmt = self.key_format(node, where) if role is Role.KEY else None
            if "format" in node and role is not Role.KEY:
                self.at(node, "format", where, "format applies to generated keys only; remove it")
            max_length = node.get("max_length")
            if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                           or max_length < 1):
                self.at(node, "max_length", where, f"max_length must be a whole number >= 1, got {max_length!r}")
                max_length = None
            return ColumnSpec(null=null, key_format=fmt, max_length=max_length)
        for key in ("format", "max_length"):
            if key in node:
                self.at(node, key, where, f"{key} applies to keys and faked columns only; remove it")
        assert kind is not None
        if kind in _CATEGORY_KINDS:
            if "values" not in node:
                self.at(node, None, where, f"a {kind.value} column needs `values: {{value: share, ...}}`")
                return ColumnSpec(null=null)
            others = [k for k in declared if k != "values"]
            if others:
                self.at(node, others[0], where, f"a {kind.value} column takes `values` only; remove "
                        f"{', '.join(others)}")
            return ColumnSpec(null=null, values=self.values(node, where, arrow_type, numeric=False))
        if kind not in _NUMERIC_KINDS:
            self.at(node, None, where, f"kind {kind.value} cannot be declared in a spec; exclude the column or "
                    "give it a categorical, numeric or text kind")
            return ColumnSpec(null=null)
        return self.numeric(node, where, arrow_type, null, declared)

    def numeric(
        self, node: Mapping[str, Any], where: str, arrow_type: pa.DataType, null: float, declared: list[str]
    ) -> ColumnSpec:
        lo = self.number(node, "min", where, arrow_type)
        hi = self.number(node, "max", where, arrow_type)
        if lo is not None and hi is not None and lo > hi:
            self.at(node, "min", where, f"min {node['min']!r} is greater than max {node['max']!r}; swap them")
            return ColumnSpec(null=null)
        if "values" in node:
            extra = [k for k in declared if k != "values"]
            if extra:
                self.at(node, extra[0], where, f"values gives the exact numbers; remove {', '.join(extra)}")
            values = self.values(node, where, arrow_type, numeric=True)
            return ColumnSpec(null=null, values=values)
        if "quantiles" in node:
            extra = [k for k in declared if k in ("distribution", "mean", "sd", "mu", "sigma")]
            if extra:
                self.at(node, extra[0], where, f"quantiles define the distribution; remove {', '.join(extra)}")
            q = self.quantiles(node, where, arrow_type)
            if q is not None and ((lo is not None and q[0][1] < lo) or (hi is not None and q[-1][1] > hi)):
                self.at(node, "quantiles", where, "quantiles fall outside [min, max]; fix them or drop min/max")
            return ColumnSpec(null=null, quantiles=q)
        dist = node.get("distribution")
        if dist is None:
            if lo is None or hi is None:
                self.at(node, None, where, "declare `min` and `max` (uniform between them), `quantiles: [...]`, "
                        "`values: {...}` or `distribution: normal|uniform|lognormal|exponential`")
                return ColumnSpec(null=null)
            return ColumnSpec(null=null, distribution="uniform", lo=lo, hi=hi)
        if dist not in DISTRIBUTIONS:
            guess = difflib.get_close_matches(str(dist), list(DISTRIBUTIONS), n=1)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            self.at(node, "distribution", where, f"unknown distribution {dist!r}; {hint}known: "
                    f"{', '.join(DISTRIBUTIONS)}")
            return ColumnSpec(null=null)
        params: dict[str, float] = {}
        for p in DISTRIBUTIONS[dist]:
            if p not in node:
                self.at(node, "distribution", where, f"distribution {dist} needs `{p}`")
                continue
            value = self.number(node, p, where, arrow_type, scale=p == "sd" or dist == "exponential")
            if value is not None:
                params[p] = value
        for p in ("mean", "sd", "mu", "sigma"):
            if p in node and p not in DISTRIBUTIONS[dist]:
                self.at(node, p, where, f"distribution {dist} takes {', '.join(DISTRIBUTIONS[dist]) or 'min, max'}"
                        f"; remove `{p}`")
        for p in ("sd", "sigma"):
            if p in params and not params[p] > 0:
                self.at(node, p, where, f"{p} must be greater than 0, got {node[p]!r}")
        if dist == "exponential" and "mean" in params and not params["mean"] > 0:
            self.at(node, "mean", where, f"mean must be greater than 0, got {node['mean']!r}")
        if dist == "uniform" and (lo is None or hi is None):
            self.at(node, "distribution", where, "a uniform distribution needs `min` and `max`")
        if dist in ("lognormal", "exponential") and lo is not None and lo < 0:
            self.at(node, "min", where, f"a {dist} distribution has no negative values; min must be >= 0")
        return ColumnSpec(null=null, distribution=dist, params=params, lo=lo, hi=hi)

    # -- values ---------------------------------------------------------------------------------------------------

    def share(self, node: Mapping[Any, Any], key: Any, where: str) -> float:
        value = node.get(key)
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            self.at(node, key, where, f"null_share must be between 0 and 1, got {value!r}")
            return 0.0
        return float(value)

    def number(
        self, node: Mapping[str, Any], key: str, where: str, arrow_type: pa.DataType, *, scale: bool = False
    ) -> float | None:
        value = node.get(key)
        if value is None:
            return None
        if key in ("mu", "sigma"):  # lognormal parameters are plain numbers (of the log)
            arrow_type = pa.float64()
        if scale and pa.types.is_temporal(arrow_type) and not isinstance(value, (int, float)):
            self.at(node, key, where, f"{key} of a date or time column is a number in its storage unit "
                    "(days for a date, microseconds otherwise); use quantiles or min/max instead")
            return None
        if scale and pa.types.is_temporal(arrow_type):
            return float(value)
        try:
            x = storage_value(value, arrow_type)
        except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            self.at(node, key, where, f"{key} {value!r} is not a value of the column's type {arrow_type}: {exc}")
            return None
        if not math.isfinite(x):
            self.at(node, key, where, f"{key} must be finite, got {value!r}")
            return None
        return x

    def values(
        self, node: Mapping[str, Any], where: str, arrow_type: pa.DataType, *, numeric: bool
    ) -> tuple[tuple[Any, float], ...] | None:
        raw = node.get("values")
        if not isinstance(raw, Mapping) or not raw:
            self.at(node, "values", where, "values must be a mapping of value to share, e.g. {a: 0.7, b: 0.3}")
            return None
        out: list[tuple[Any, float]] = []
        bad = False
        for value, share in raw.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= float(share) <= 1.0:
                self.at(raw, value, where, f"the share of {value!r} must be between 0 and 1, got {share!r}")
                bad = True
                continue
            try:
                v = storage_value(value, arrow_type) if numeric else category_value(value, arrow_type)
            except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                self.at(raw, value, where, f"value {value!r} is not of the column's type {arrow_type}: {exc}")
                bad = True
                continue
            out.append((v, float(share)))
        total = sum(s for _, s in out)
        if not bad and abs(total - 1.0) > SHARE_TOLERANCE:
            self.at(node, "values", where, f"the shares sum to {total:.4g}, not 1; fix them so that they add up "
                    "to 1 (NULLs are declared apart, with `null`)")
            return None
        if len({v for v, _ in out}) < len(out):
            self.at(node, "values", where, "a value is listed twice (after conversion to the column's type)")
            return None
        return None if bad else tuple(out)

    def quantiles(
        self, node: Mapping[str, Any], where: str, arrow_type: pa.DataType, *, counts: bool = False
    ) -> tuple[tuple[float, float], ...] | None:
        raw = node.get("quantiles")
        if isinstance(raw, Mapping):
            items = list(raw.items())
        elif isinstance(raw, list) and len(raw) >= 2:
            items = [(i / (len(raw) - 1), v) for i, v in enumerate(raw)]
        else:
            self.at(node, "quantiles", where, "quantiles must be a list of at least 2 values (min .. max at evenly "
                    "spaced probabilities) or a mapping {probability: value}")
            return None
        out: list[tuple[float, float]] = []
        for p, v in items:
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
                self.at(node, "quantiles", where, f"quantile probability {p!r} must be between 0 and 1")
                return None
            try:
                x = float(v) if counts else storage_value(v, arrow_type)
            except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                self.at(node, "quantiles", where, f"quantile {v!r} is not a value of the column's type: {exc}")
                return None
            out.append((float(p), x))
        out.sort()
        if len(out) < 2 or len({p for p, _ in out}) < len(out):
            self.at(node, "quantiles", where, "quantiles need at least 2 distinct probabilities")
            return None
        if any(b[1] < a[1] for a, b in itertools.pairwise(out)):
            self.at(node, "quantiles", where, "quantile values must not decrease as the probability grows")
            return None
        return tuple(out)

    def key_format(self, node: Mapping[str, Any], where: str) -> Mapping[str, Any] | None:
        raw = node.get("format")
        if raw is None:
            return None
        if not isinstance(raw, Mapping) or raw.get("style") not in ("integer", "uuid", "counter", "pattern"):
            self.at(node, "format", where, "format must be {style: integer|uuid|counter|pattern, ...} (first, "
                    "prefix, suffix, alphabets, uppercase)")
            return None
        self.unknown_keys(raw, _FORMAT_KEYS, f"{where}, format")
        if raw["style"] == "pattern":
            alphabets = raw.get("alphabets")
            if not isinstance(alphabets, list) or not alphabets or not all(isinstance(a, str) and a
                                                                          for a in alphabets):
                self.at(raw, "alphabets", where, "a pattern needs `alphabets`: one string of allowed characters per "
                        "position, e.g. [N, '0123456789', ABCDEFGHIJKLMNOPQRSTUVWXYZ]")
                return None
        return dict(raw)

    # -- children per parent --------------------------------------------------------------------------------------

    def children(self, where: str, node: Any, parent: Any, key: Any) -> ChildrenSpec:
        if not isinstance(node, Mapping):
            self.at(parent, key, where, "must be {counts: {...}}, {quantiles: [...]} or {distribution: poisson, "
                    "mean: ...}")
            return ChildrenSpec(distribution="fixed", params={"count": 0.0})
        self.unknown_keys(node, _CHILDREN_KEYS, where)
        cap = node.get("max")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
            self.at(node, "max", where, f"max must be a whole number >= 0, got {cap!r}")
            cap = None
        forms = [k for k in ("counts", "quantiles", "distribution") if k in node]
        if len(forms) != 1:
            self.at(node, forms[1] if len(forms) > 1 else None, where,
                    "declare exactly one of counts (a histogram {children: share of parents}), quantiles, or "
                    "distribution (poisson with mean, fixed with count)")
            return ChildrenSpec(distribution="fixed", params={"count": 0.0})
        if "counts" in node:
            raw = node["counts"]
            if not isinstance(raw, Mapping) or not raw:
                self.at(node, "counts", where, "counts must be a mapping {children: share of parents}")
                return ChildrenSpec(distribution="fixed", params={"count": 0.0})
            out: list[tuple[int, float]] = []
            for k, share in raw.items():
                try:
                    k_int = int(k)
                except (TypeError, ValueError):
                    k_int = -1
                if isinstance(k, bool) or k_int < 0 or str(k_int) != str(k).strip():
                    self.at(raw, k, where, f"children count {k!r} must be a whole number >= 0")
                    continue
                if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
                    self.at(raw, k, where, f"the share of parents with {k} children must be between 0 and 1")
                    continue
                out.append((k_int, float(share)))
            total = sum(s for _, s in out)
            if len(out) == len(raw) and abs(total - 1.0) > SHARE_TOLERANCE:
                self.at(node, "counts", where, f"the shares of parents sum to {total:.4g}, not 1; fix them so that "
                        "they add up to 1 (parents without children are `0: share`)")
            return ChildrenSpec(counts=tuple(sorted(out)), max=cap)
        if "quantiles" in node:
            q = self.quantiles(node, where, pa.float64(), counts=True)
            if q is not None and q[0][1] < 0:
                self.at(node, "quantiles", where, "children counts cannot be negative")
                q = None
            return ChildrenSpec(quantiles=q, max=cap)
        dist = node.get("distribution")
        if dist not in COUNT_DISTRIBUTIONS:
            self.at(node, "distribution", where, f"unknown distribution {dist!r}; known: "
                    f"{', '.join(COUNT_DISTRIBUTIONS)}")
            return ChildrenSpec(distribution="fixed", params={"count": 0.0})
        params: dict[str, float] = {}
        for p in COUNT_DISTRIBUTIONS[dist]:
            value = node.get(p)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                self.at(node, p if p in node else "distribution", where,
                        f"distribution {dist} needs `{p}`, a number >= 0 (got {value!r})")
                continue
            params[p] = float(value)
        return ChildrenSpec(distribution=str(dist), params=params, max=cap)
