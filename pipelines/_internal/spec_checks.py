"""A spec's declared numeric ranges against its tables' simple CHECK constraints, before anything is written.

Only the simple forms are read: ``col >= N``, ``col > N``, ``col <= N``, ``col < N`` (either side),
``col BETWEEN a AND b``, and ``AND`` of those (PostgreSQL reports a ``BETWEEN`` as
``b >= 0.5::double precision AND b <= 10::double precision``), with the quoting and casts that PostgreSQL,
MariaDB and SQLite report. Anything else (``OR``, functions, other columns) is left alone: the database enforces it
at the write, and a failed write leaves the live target untouched.

A declared range is the values generation can produce: ``min``/``max``, the first and last quantile, the smallest
and largest exact value, or where no bound is declared the distribution's own support (a normal is unbounded, a
lognormal or an exponential is above 0). Integers and decimals are rounded as generation rounds them, so
``min: 17.6`` on an INTEGER column meets ``col >= 18``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from schemas.model import Table
from schemas.spec import ColumnSpec, Locate, Spec

_IDENT = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|\[[^\]]+\]|[A-Za-z_][A-Za-z0-9_$]*)'
_CAST = r"(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*(?:\s+[A-Za-z_][A-Za-z0-9_]*)*?(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?)*"
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_COLUMN = rf"\(?\s*(?P<{{g}}>{_IDENT})\s*\)?{_CAST}"
_LITERAL = rf"\(?\s*(?P<{{g}}>'{_NUMBER}'|{_NUMBER})\s*\)?{_CAST}"
_OP = r"(?P<op>>=|<=|>|<)"
_COL_FIRST = re.compile(rf"{_COLUMN.format(g='col')}\s*{_OP}\s*{_LITERAL.format(g='num')}", re.DOTALL)
_NUM_FIRST = re.compile(rf"{_LITERAL.format(g='num')}\s*{_OP}\s*{_COLUMN.format(g='col')}", re.DOTALL)
_BETWEEN = re.compile(
    rf"{_COLUMN.format(g='col')}\s+BETWEEN\s+{_LITERAL.format(g='lo')}\s+AND\s+{_LITERAL.format(g='hi')}",
    re.DOTALL | re.IGNORECASE,
)
_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">"}


@dataclass(frozen=True)
class Bound:
    """One simple bound a check puts on a column: ``column op value``."""

    column: str
    op: str
    value: float


def simple_bounds(sqltext: str) -> list[Bound] | None:
    """The bounds of a simple check (see the module notes), or None when the check is anything more complex."""
    text = _strip_parens(sqltext.strip())
    m = _BETWEEN.fullmatch(text)
    if m:
        col = _unquote(m["col"])
        return [Bound(col, ">=", _number(m["lo"])), Bound(col, "<=", _number(m["hi"]))]
    out: list[Bound] = []
    for part in _split_and(text):
        part = _strip_parens(part.strip())
        m = _COL_FIRST.fullmatch(part)
        if m:
            out.append(Bound(_unquote(m["col"]), m["op"], _number(m["num"])))
            continue
        m = _NUM_FIRST.fullmatch(part)
        if m:
            out.append(Bound(_unquote(m["col"]), _FLIP[m["op"]], _number(m["num"])))
            continue
        return None
    return out or None


def check_problems(spec: Spec, raw: Any, *, source: str, locate: Locate) -> list[str]:
    """Every declared numeric range that a simple check of its table refuses, one message each.

    Args:
        spec: the parsed spec.
        raw: the loaded ``distributions`` block (for the lines of the offending keys).
        source: the file's name, for messages.
        locate: the line of a key in a loaded mapping (see :data:`schemas.spec.Locate`).
    """
    problems: list[str] = []
    for table in spec.schema.active_tables:
        ts = spec.tables.get(table.name)
        if ts is None or not table.checks:
            continue
        for check in table.checks:
            bounds = simple_bounds(check.sqltext)
            for bound in bounds or ():
                name = _column_of(table, bound.column)
                c = ts.columns.get(name) if name else None
                if name is None or c is None:
                    continue
                arrow_type = table.column(name).sql_type.to_arrow()
                problem = _violation(c, arrow_type, bound, check.sqltext, check.name)
                if problem is None:
                    continue
                key, message = problem
                node = _column_node(raw, table.name, name)
                line = locate(node, key if node is not None and key in node else None) if node is not None else None
                loc = f"{source}:{line + 1}" if line is not None else source
                problems.append(f"{loc}: table {table.name!r}, column {name!r}: {message}")
    return problems


# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    value: float  # as generation rounds it
    shown: float  # as declared
    open: bool  # the bound itself is never produced
    source: str  # min | max | quantiles | values | distribution


def _sides(c: ColumnSpec, arrow_type: pa.DataType) -> tuple[_Side, _Side] | None:
    if c.null >= 1.0:
        return None
    if c.values is not None:
        xs = [float(v) for v, _ in c.values]
        lo, hi = _Side(min(xs), min(xs), False, "values"), _Side(max(xs), max(xs), False, "values")
    elif c.quantiles is not None:
        first, last = c.quantiles[0][1], c.quantiles[-1][1]
        lo, hi = _Side(first, first, False, "quantiles"), _Side(last, last, False, "quantiles")
    elif c.distribution is not None:
        if c.lo is not None:
            lo = _Side(c.lo, c.lo, False, "min")
        elif c.distribution in ("lognormal", "exponential"):
            lo = _Side(0.0, 0.0, True, "distribution")
        else:
            lo = _Side(-math.inf, -math.inf, True, "distribution")
        hi = _Side(c.hi, c.hi, False, "max") if c.hi is not None else _Side(math.inf, math.inf, True, "distribution")
    else:
        return None  # nothing declared (or the declaration had problems of its own)
    return _rounded(lo, arrow_type), _rounded(hi, arrow_type)


def _rounded(side: _Side, arrow_type: pa.DataType) -> _Side:
    """The bound as generation stores it (integers by ``rint``, decimals to their scale: both monotonic)."""
    if not math.isfinite(side.value):
        return side
    if pa.types.is_integer(arrow_type):
        return _Side(float(np.rint(side.value)), side.shown, False, side.source)
    if pa.types.is_decimal(arrow_type):
        return _Side(float(np.round(side.value, arrow_type.scale)), side.shown, False, side.source)
    return side


def _violation(
    c: ColumnSpec, arrow_type: pa.DataType, bound: Bound, sqltext: str, check_name: str | None
) -> tuple[str, str] | None:
    """``(key to point at, message)`` when the declared range breaks ``bound``, else None."""
    numeric = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)
    sides = _sides(c, arrow_type) if numeric else None
    if sides is None:
        return None
    lower = bound.op in (">=", ">")
    side = sides[0] if lower else sides[1]
    n, strict = bound.value, bound.op in (">", "<")
    if lower:
        broken = side.value < n or (strict and side.value == n and not side.open)
    else:
        broken = side.value > n or (strict and side.value == n and not side.open)
    if not broken:
        return None
    integral = pa.types.is_integer(arrow_type)
    if integral:  # the nearest whole number the check accepts
        allowed = (math.floor(n) + 1 if strict else math.ceil(n)) if lower else (
            math.ceil(n) - 1 if strict else math.floor(n))
        limit = f"at least {_show(allowed)}" if lower else f"at most {_show(allowed)}"
    elif strict:
        limit = f"above {_show(n)}" if lower else f"below {_show(n)}"
    else:
        limit = f"at least {_show(n)}" if lower else f"at most {_show(n)}"
    refused = (f"{'values of' if strict else 'values below'} {_show(n)}{' or less' if strict else ''}" if lower
               else f"{'values of' if strict else 'values above'} {_show(n)}{' or more' if strict else ''}")
    which = f"check {check_name!r} `{sqltext}`" if check_name else f"check `{sqltext}`"
    key_name = "min" if lower else "max"
    if side.source in ("min", "max"):
        found, fix, key = f"{side.source} {_show(side.shown)}", f"set {side.source} to {limit}", side.source
    elif side.source == "quantiles":
        edge = "first" if lower else "last"
        found, fix, key = (f"the {edge} quantile {_show(side.shown)}", f"make the {edge} quantile {limit}",
                           "quantiles")
    elif side.source == "values":
        found, fix, key = (f"the value {_show(side.shown)}", f"change or remove the values that are not {limit}",
                           "values")
    else:
        reach = "below" if lower else "above"
        found = f"a {c.distribution} distribution without {key_name} (it reaches {reach} {_show(n)})"
        fix, key = f"add a {key_name} {limit}", "distribution"
    message = (f"{found} breaks the table's {which}: {refused} would be refused by the database at the write; "
               f"{fix}, or change the check in the schema part")
    return key, message


def _column_node(raw: Any, table: str, column: str) -> Mapping[str, Any] | None:
    node = raw.get(table) if isinstance(raw, Mapping) else None
    cols = node.get("columns") if isinstance(node, Mapping) else None
    col = cols.get(column) if isinstance(cols, Mapping) else None
    if isinstance(col, Mapping):
        return col
    return node if isinstance(node, Mapping) else None


def _column_of(table: Table, name: str) -> str | None:
    """The table's column a check names: exactly, else the one that matches ignoring case (unquoted names)."""
    names = [c.name for c in table.active_columns]
    if name in names:
        return name
    folded = [n for n in names if n.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def _strip_parens(text: str) -> str:
    while text.startswith("(") and text.endswith(")") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _closing(text: str, start: int) -> int:
    """The index of the parenthesis that closes the one at ``start`` (outside quotes), or -1."""
    depth, quote = 0, ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_and(text: str) -> list[str]:
    """``text`` split at each ``AND`` outside parentheses and quotes."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            m = re.match(r"\s+AND\s+", text[i:], re.IGNORECASE)
            if m:
                parts.append(text[start:i])
                i += m.end()
                start = i
                continue
        i += 1
    parts.append(text[start:])
    return parts


def _unquote(ident: str) -> str:
    if ident[0] == '"':
        return ident[1:-1].replace('""', '"')
    if ident[0] == "`":
        return ident[1:-1].replace("``", "`")
    if ident[0] == "[":
        return ident[1:-1]
    return ident


def _number(literal: str) -> float:
    return float(literal.strip("'"))


def _show(x: float) -> str:
    if math.isfinite(x) and float(x).is_integer():
        return str(int(x))
    return f"{x:g}"
