"""Integrity and size checks by SQL on a database: what a synthetic target must satisfy, counted, not assumed.

Every function takes a URL and the expected keys, and returns counts, so a test can report every problem at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from zoo._base import ForeignKey, ZooDatabase


@dataclass
class Violations:
    """What is wrong with one database, by constraint; empty when every key holds."""

    duplicate_primary_keys: dict[str, int] = field(default_factory=dict)
    duplicate_unique_keys: dict[str, int] = field(default_factory=dict)
    orphaned_foreign_keys: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(
            sum(d.values())
            for d in (self.duplicate_primary_keys, self.duplicate_unique_keys, self.orphaned_foreign_keys)
        )

    def problems(self) -> list[str]:
        out = [
            f"{n} duplicated primary key value(s) in {k}" for k, n in self.duplicate_primary_keys.items() if n
        ]
        out += [f"{n} duplicated unique value(s) in {k}" for k, n in self.duplicate_unique_keys.items() if n]
        out += [f"{n} orphaned row(s) in {k}" for k, n in self.orphaned_foreign_keys.items() if n]
        return out


def _engine(url: str) -> sa.Engine:
    from connectors.sql.url import normalize_url

    return sa.create_engine(normalize_url(url))


def _duplicates_sql(q: sa.sql.compiler.IdentifierPreparer, table: str, cols: Sequence[str]) -> str:
    """Key values held by more than one row; a row with a NULL member does not take part (SQL's UNIQUE rule)."""
    c = ", ".join(q.quote(x) for x in cols)
    notnull = " AND ".join(f"{q.quote(x)} IS NOT NULL" for x in cols)
    return (
        f"SELECT count(*) FROM (SELECT {c} FROM {q.quote(table)} WHERE {notnull} "
        f"GROUP BY {c} HAVING count(*) > 1) d"
    )


def _orphans_sql(q: sa.sql.compiler.IdentifierPreparer, fk: ForeignKey) -> str:
    """Child rows whose (fully non-NULL) reference finds no parent row, by LEFT JOIN."""
    child, cols, parent, ref = fk
    on = " AND ".join(f"c.{q.quote(a)} = p.{q.quote(b)}" for a, b in zip(cols, ref, strict=True))
    present = " AND ".join(f"c.{q.quote(a)} IS NOT NULL" for a in cols)
    return (
        f"SELECT count(*) FROM {q.quote(child)} c LEFT JOIN {q.quote(parent)} p ON {on} "
        f"WHERE {present} AND p.{q.quote(ref[0])} IS NULL"
    )


def integrity_violations(
    url: str,
    primary_keys: Mapping[str, Sequence[str]],
    unique_keys: Mapping[str, Iterable[Sequence[str]]],
    foreign_keys: Iterable[ForeignKey],
) -> Violations:
    """Count, by SQL, duplicate primary and unique keys and orphaned foreign keys in the database at ``url``."""
    engine = _engine(url)
    q = engine.dialect.identifier_preparer
    out = Violations()
    try:
        with engine.connect() as conn:
            for table, pk in primary_keys.items():
                if pk:
                    n = conn.execute(sa.text(_duplicates_sql(q, table, pk))).scalar_one()
                    out.duplicate_primary_keys[f"{table}({', '.join(pk)})"] = int(n)
            for table, keys in unique_keys.items():
                for key in keys:
                    n = conn.execute(sa.text(_duplicates_sql(q, table, key))).scalar_one()
                    out.duplicate_unique_keys[f"{table}({', '.join(key)})"] = int(n)
            for fk in foreign_keys:
                n = conn.execute(sa.text(_orphans_sql(q, fk))).scalar_one()
                out.orphaned_foreign_keys[f"{fk[0]}({', '.join(fk[1])}) -> {fk[2]}"] = int(n)
    finally:
        engine.dispose()
    return out


def zoo_violations(url: str, db: ZooDatabase) -> Violations:
    """:func:`integrity_violations` with the keys the zoo database declares."""
    return integrity_violations(url, db.primary_keys, db.unique_keys, db.foreign_keys)


def row_counts(url: str, tables: Iterable[str]) -> dict[str, int]:
    engine = _engine(url)
    q = engine.dialect.identifier_preparer
    try:
        with engine.connect() as conn:
            return {
                t: int(conn.execute(sa.text(f"SELECT count(*) FROM {q.quote(t)}")).scalar_one())
                for t in tables
            }
    finally:
        engine.dispose()


def row_ratios(real: Mapping[str, int], synth: Mapping[str, int]) -> dict[str, float]:
    """Synthetic / real rows per table (an empty real table counts 1.0 when the synthetic one is empty too)."""
    return {
        t: (synth.get(t, 0) / n if n else (1.0 if not synth.get(t, 0) else float("inf")))
        for t, n in real.items()
    }


def childless_share(url: str, parent: str, parent_key: str, child: str, fk_column: str) -> float:
    """Share of ``parent`` rows that no ``child`` row references through ``fk_column``."""
    engine = _engine(url)
    q = engine.dialect.identifier_preparer
    sql = (
        f"SELECT count(*), sum(CASE WHEN c.{q.quote(fk_column)} IS NULL THEN 1 ELSE 0 END) FROM {q.quote(parent)} p "
        f"LEFT JOIN (SELECT DISTINCT {q.quote(fk_column)} FROM {q.quote(child)}) c "
        f"ON c.{q.quote(fk_column)} = p.{q.quote(parent_key)}"
    )
    try:
        with engine.connect() as conn:
            total, none = conn.execute(sa.text(sql)).one()
    finally:
        engine.dispose()
    return float(none or 0) / float(total) if total else 0.0


def _as_datetime(value: object) -> dt.datetime:
    # SQLite hands back text (or epoch milliseconds, as some JDBC writers store it); servers a datetime
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC).replace(tzinfo=None)
    return dt.datetime.fromisoformat(str(value).replace("T", " ").rstrip("Z"))


def off_grid(url: str, table: str, column: str, seconds: int) -> tuple[int, int, list[str]]:
    """Values of ``column`` that are not a whole multiple of ``seconds`` past midnight.

    Returns (off-grid count, non-NULL count, up to five off-grid examples).
    """
    engine = _engine(url)
    q = engine.dialect.identifier_preparer
    bad: list[str] = []
    total = 0
    try:
        with engine.connect() as conn:
            sql = f"SELECT {q.quote(column)} FROM {q.quote(table)} WHERE {q.quote(column)} IS NOT NULL"
            for (value,) in conn.execute(sa.text(sql)):
                total += 1
                ts = _as_datetime(value)
                since_midnight = ts - ts.replace(hour=0, minute=0, second=0, microsecond=0)
                if since_midnight.total_seconds() % seconds:
                    bad.append(str(value))
    finally:
        engine.dispose()
    return len(bad), total, bad[:5]
