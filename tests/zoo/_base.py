"""What every zoo database is: dialect-neutral SQLAlchemy Core metadata, a seeded data generator, and the keys
the checks compare the target against (read off the metadata, so they are exactly what the source declares)."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

#: (child table, child columns, parent table, parent columns)
ForeignKey = tuple[str, tuple[str, ...], str, tuple[str, ...]]
Rows = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class ZooDatabase:
    """One database of the zoo, modelled on a well-known public sample database.

    Attributes:
        name: the zoo's name for it (``chinook``, ``northwind``...), used as the test id.
        metadata: builds the tables; dialect-neutral (every string has a length, so MariaDB accepts it).
        data: ``data(seed)`` gives every table's rows as Python values, in an insertion order that satisfies
            every foreign key (parents first, self-references ordered).
        shapes: which schema shape each table stands for, ``{shape: "table(columns)"}``.
        timestamp_grids: ``{table: (column, seconds)}``: learned key members whose real values lie on a grid
            (hourly: 3600) that synthetic values must keep.
        childless: ``{(parent, child, fk column): share}``: parents whose share of rows without any child the
            synthetic data should keep (within five points).
    """

    name: str
    metadata: Callable[[], sa.MetaData]
    data: Callable[[int], Rows]
    shapes: dict[str, str]
    timestamp_grids: dict[str, tuple[str, int]] = field(default_factory=dict)
    childless: dict[tuple[str, str, str], float] = field(default_factory=dict)

    @property
    def tables(self) -> list[str]:
        """Table names, parents before children."""
        return [t.name for t in self.metadata().sorted_tables]

    @property
    def primary_keys(self) -> dict[str, list[str]]:
        return {t.name: [c.name for c in t.primary_key.columns] for t in self.metadata().sorted_tables}

    @property
    def unique_keys(self) -> dict[str, list[list[str]]]:
        """Unique constraints and unique indexes other than the primary key."""
        out: dict[str, list[list[str]]] = {}
        for t in self.metadata().sorted_tables:
            keys = [[c.name for c in u.columns] for u in t.constraints if isinstance(u, sa.UniqueConstraint)]
            keys += [[c.name for c in i.columns] for i in t.indexes if i.unique]
            unique = [
                k for i, k in enumerate(keys) if k not in keys[:i]
            ]  # Column(unique=True) may show twice
            if unique:
                out[t.name] = unique
        return out

    @property
    def foreign_keys(self) -> list[ForeignKey]:
        out: list[ForeignKey] = []
        for t in self.metadata().sorted_tables:
            for fk in t.foreign_key_constraints:
                out.append(
                    (
                        t.name,
                        tuple(c.name for c in fk.columns),
                        fk.referred_table.name,
                        tuple(e.column.name for e in fk.elements),
                    )
                )
        return sorted(out)

    def create(self, url: str, *, seed: int = 0) -> dict[str, int]:
        """Create the tables in the empty database at ``url`` and fill them; returns the row count per table."""
        from connectors.sql.url import normalize_url

        md = self.metadata()
        rows = self.data(seed)
        missing = set(md.tables) - set(rows)
        assert not missing, f"{self.name}: no rows generated for {sorted(missing)}"
        engine = sa.create_engine(normalize_url(url))
        try:
            with engine.begin() as conn:
                md.create_all(conn)
                for table in md.sorted_tables:
                    if rows[table.name]:
                        conn.execute(sa.insert(table), rows[table.name])
        finally:
            engine.dispose()
        return {name: len(r) for name, r in rows.items()}


def money(value: float) -> decimal.Decimal:
    """A two-decimal amount, exact (Numeric columns get a Decimal, never a binary float)."""
    return decimal.Decimal(f"{value:.2f}")


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A generator per (seed, database), so one database's data never shifts when another's changes."""
    return np.random.default_rng([seed, sum(name.encode())])


def poisson_at_least(rng: np.random.Generator, lam: float, low: int, size: int) -> list[int]:
    return [int(max(low, v)) for v in rng.poisson(lam, size)]


FIRST_NAMES = [
    "Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal", "Lena",
    "Marta", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor", "Wen", "Yara",
]  # fmt: skip
LAST_NAMES = [
    "Almeida", "Brown", "Chen", "Dubois", "Eriksson", "Fischer", "García", "Hansen", "Ivanova", "Jones",
    "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov", "Rossi", "Silva", "Tanaka", "Weber",
]  # fmt: skip
COUNTRIES = ["USA", "Canada", "Brazil", "Germany", "France", "UK", "Spain", "Italy", "Japan", "Australia"]
