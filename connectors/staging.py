"""Staging areas: the load goes to a side area that replaces the live target only on :meth:`Staging.commit`.

The shape follows Ray Data's ``Datasink``: :meth:`~Staging.prepare` before the write, :meth:`~Staging.finalize`
after it, then :meth:`~Staging.commit` when validation passed or :meth:`~Staging.abort` when anything failed. Until
``commit`` the live target is not touched at all, so a failed run leaves it exactly as it was.

Every staging area carries its owner (run id, pid, host, the live target) before it holds any data: SQLite a
``<staging>.owner`` file written before the staging file, PostgreSQL a JSON comment on the staging schema (set in
the transaction that creates it), MariaDB a comment on the staging and backup databases (in ``CREATE DATABASE``).
:mod:`connectors.debris` reads it to remove what a killed process left, and never a live owner's area.

One strategy per dialect:

SQLite
    The staging area is a new file next to the target, ``<target>.synthdb-staging-<run_id>``, created with every
    table and foreign key inline (SQLite cannot add constraints later; it only checks them with
    ``PRAGMA foreign_keys=ON``, so load order does not matter). ``finalize`` runs ``PRAGMA foreign_key_check``.
    ``commit`` fsyncs the file and ``os.replace``-s it onto the target path (atomic on POSIX), then fsyncs the
    folder. The whole file is replaced: tables of the old file that the schema does not name are gone (a database
    file is one unit, unlike a server schema). It refuses when the live file has a hot journal or a non-empty WAL (someone is using it), because the
    old WAL would be replayed into the new file. ``abort`` deletes the staging file.

PostgreSQL
    The staging area is a schema ``synthdb_staging_<run_id>`` in the target database. Tables are created there
    without foreign keys; ``finalize`` adds them (``ALTER TABLE ... ADD CONSTRAINT``, which checks every row) and
    moves identity sequences past the loaded keys. ``commit`` runs in ONE transaction (PostgreSQL DDL is
    transactional): when the live schema does not exist, the staging schema is renamed to it; otherwise the live
    tables that the load replaces are dropped (``CASCADE``: views and foreign keys of other tables on them go too),
    each staging table is moved with ``ALTER TABLE ... SET SCHEMA`` (its indexes, constraints and owned sequences
    move with it) and the empty staging schema is dropped. This works the same for ``public``, and leaves other
    objects of the live schema alone. ``abort`` is ``DROP SCHEMA ... CASCADE``.

MariaDB / MySQL
    The staging area is a database ``<db>_synthdb_stg_<short run id>`` (the live name is shortened so the whole
    stays within the 64-character limit), created with the live database's character set. Foreign keys are added
    by ``finalize``. ``commit`` is one ``RENAME TABLE live.t TO backup.t, ..., staging.t TO live.t, ...``
    statement, which MariaDB applies atomically, into a backup database ``<db>_synthdb_bak_<short run id>``; then
    the backup and the empty staging databases are dropped. InnoDB foreign keys follow renamed tables, so the new
    tables reference each other in the live database. ``abort`` drops the staging database. Caveat: a live table
    that the load does not replace but that references a replaced one ends up referencing the backup copy, which
    is then dropped; such tables should be in the schema too.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from connectors.owner import owner_record
from connectors.sql.ddl import add_foreign_keys, create_schema, dialect_family, reset_sequences
from schemas.errors import ConnectorError, ValidationFailed
from schemas.model import DatabaseSchema

__all__ = [
    "MariaDbStaging",
    "PostgresStaging",
    "SqliteStaging",
    "Staging",
    "staging_for",
]

logger = logging.getLogger(__name__)

# The names every staging area carries, so a later run or `synthdb clean` finds what a killed process left.
SQLITE_STAGING_INFIX = ".synthdb-staging-"
SQLITE_OWNER_SUFFIX = ".owner"
PG_STAGING_PREFIX = "synthdb_staging_"
MARIADB_STAGING_INFIX = "_synthdb_stg_"
MARIADB_BACKUP_INFIX = "_synthdb_bak_"

_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg", "mysql": "mysql+pymysql",
                    "mariadb": "mariadb+pymysql"}


@runtime_checkable
class Staging(Protocol):
    """Where a load is written before it replaces the live target.

    Attributes:
        live_url: the user's target (SQLAlchemy URL).
        staging_url: where to write (SQLAlchemy URL, with its password: never log it).
        staging_db_schema: the namespace inside ``staging_url`` that holds the tables (a PostgreSQL schema), or
            None when they are in the connection's default one.
        dialect: ``sqlite``, ``postgresql`` or ``mysql`` (MariaDB included).
    """

    live_url: str
    staging_url: str
    staging_db_schema: str | None
    dialect: str

    def prepare(self, schema: DatabaseSchema) -> None:
        """Create an empty staging area and its tables (foreign keys as the dialect's strategy says)."""
        ...

    def finalize(self, schema: DatabaseSchema) -> None:
        """After the load: add and check what could not exist during it (foreign keys, sequences)."""
        ...

    def commit(self) -> None:
        """Replace the live target with the staging area, atomically."""
        ...

    def abort(self) -> None:
        """Drop the staging area; the live target is left as it was."""
        ...


def staging_for(target_url: str, *, run_id: str, db_schema: str | None = None) -> Staging:
    """The staging strategy for a target URL.

    Args:
        target_url: the live target, a SQLAlchemy URL of SQLite, PostgreSQL or MariaDB/MySQL. Bare
            ``postgresql://`` and ``mysql://`` get the installed drivers (psycopg 3, PyMySQL).
        run_id: the run's id; it names the staging area, so two runs never share one.
        db_schema: the live namespace: a PostgreSQL schema (default: the connection's current schema) or a
            MariaDB database (default: the URL's database).

    Raises:
        ConnectorError: for a URL that is not one of those databases.
    """
    url = _normalize(target_url)
    family = dialect_family(url.drivername)
    if family == "sqlite":
        return SqliteStaging(target_url, run_id=run_id)
    if family == "postgresql":
        return PostgresStaging(target_url, run_id=run_id, db_schema=db_schema)
    return MariaDbStaging(target_url, run_id=run_id, db_schema=db_schema)


class _Base:
    live_url: str
    staging_url: str
    staging_db_schema: str | None = None
    dialect: str

    def __init__(self, live_url: str, run_id: str) -> None:
        if not run_id or not re.fullmatch(r"[A-Za-z0-9_.\-]+", run_id):
            raise ConnectorError(
                f"run id {run_id!r} cannot name a staging area: use letters, digits, '_', '-' or '.'"
            )
        self.live_url = live_url
        self.run_id = run_id
        self._state = "new"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(live={_redact(self.live_url)}, state={self._state})"

    def _check_state(self, action: str, *allowed: str) -> None:
        if self._state not in allowed:
            raise ConnectorError(f"cannot {action} staging for {_redact(self.live_url)}: it is already {self._state}")


class SqliteStaging(_Base):
    """A new SQLite file next to the target, swapped in with ``os.replace`` (see the module docstring)."""

    dialect = "sqlite"

    def __init__(self, live_url: str, *, run_id: str) -> None:
        super().__init__(live_url, run_id)
        url = _normalize(live_url)
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise ConnectorError(
                f"SQLite target {_redact(live_url)} must be a file path (sqlite:///path/to/db.sqlite), "
                "not an in-memory database"
            )
        self.live_path = Path(url.database).absolute()
        self.staging_path = self.live_path.with_name(f"{self.live_path.name}{SQLITE_STAGING_INFIX}{run_id}")
        self.staging_url = url.set(database=str(self.staging_path)).render_as_string(hide_password=False)

    def prepare(self, schema: DatabaseSchema) -> None:
        self._check_state("prepare", "new")
        if not self.live_path.parent.is_dir():
            raise ConnectorError(
                f"SQLite target folder {self.live_path.parent} does not exist; create it or fix the target URL"
            )
        self._remove_staging()  # a leftover of a crashed run with the same id
        # the owner marker comes first: a staging file never exists without one (see connectors/debris.py)
        marker = self.staging_path.with_name(self.staging_path.name + SQLITE_OWNER_SUFFIX)
        marker.write_text(_marker(self.run_id, str(self.live_path)), encoding="utf-8")
        engine = _engine(self.staging_url)
        try:
            create_schema(engine, schema, with_foreign_keys=True)
        finally:
            engine.dispose()
        self._state = "prepared"
        logger.info("SQLite staging file %s prepared", self.staging_path)

    def finalize(self, schema: DatabaseSchema) -> None:
        self._check_state("finalize", "prepared")
        engine = _engine(self.staging_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("PRAGMA foreign_key_check")).all()
        finally:
            engine.dispose()
        if rows:
            counts: dict[str, int] = {}
            for row in rows:
                counts[f"{row[0]} -> {row[2]}"] = counts.get(f"{row[0]} -> {row[2]}", 0) + 1
            problems = ", ".join(f"{k}: {v} row(s)" for k, v in sorted(counts.items()))
            raise ValidationFailed(
                f"foreign keys broken in the staged SQLite data ({problems}); the rows reference parents that "
                "do not exist, so the target was not replaced"
            )
        self._state = "finalized"

    def commit(self) -> None:
        self._check_state("commit", "prepared", "finalized")
        for suffix in ("-wal", "-journal"):
            side = self.live_path.with_name(self.live_path.name + suffix)
            if side.exists() and side.stat().st_size > 0:
                raise ConnectorError(
                    f"SQLite target {self.live_path} is in use ({side.name} is not empty); close the programs "
                    "that have it open and run again. The staged data is kept until then."
                )
        _fsync(self.staging_path)
        os.replace(self.staging_path, self.live_path)
        _fsync_dir(self.live_path.parent)
        self._remove_staging()  # a journal left beside the staging file, if any
        self._state = "committed"
        logger.info("SQLite target %s replaced", self.live_path)

    def abort(self) -> None:
        if self._state == "committed":
            return
        self._remove_staging()
        self._state = "aborted"
        logger.info("SQLite staging file %s removed; target untouched", self.staging_path)

    def _remove_staging(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm", SQLITE_OWNER_SUFFIX):
            self.staging_path.with_name(self.staging_path.name + suffix).unlink(missing_ok=True)


class PostgresStaging(_Base):
    """A staging schema in the target database, moved into the live schema in one transaction."""

    dialect = "postgresql"

    def __init__(self, live_url: str, *, run_id: str, db_schema: str | None = None) -> None:
        super().__init__(live_url, run_id)
        self._url = _normalize(live_url)
        self.staging_url = self._url.render_as_string(hide_password=False)
        self.staging_db_schema = _pg_name(f"{PG_STAGING_PREFIX}{run_id}")
        self._live_schema = db_schema

    @property
    def live_schema(self) -> str:
        """The live schema: the one given, or the connection's current schema (usually ``public``)."""
        if self._live_schema is None:
            engine = _engine(self.staging_url)
            try:
                with engine.connect() as conn:
                    self._live_schema = str(conn.execute(sa.text("SELECT current_schema()")).scalar() or "public")
            finally:
                engine.dispose()
        return self._live_schema

    def prepare(self, schema: DatabaseSchema) -> None:
        self._check_state("prepare", "new")
        stg = self.staging_db_schema
        assert stg is not None
        if stg == self.live_schema:
            raise ConnectorError(f"the live schema {stg!r} has the staging schema's name; choose another schema")
        engine = _engine(self.staging_url)
        try:
            with engine.begin() as conn:  # one transaction: the schema never exists without its owner comment
                conn.execute(sa.schema.DropSchema(stg, cascade=True, if_exists=True))
                conn.execute(sa.schema.CreateSchema(stg))
                marker = _colons(_marker(self.run_id, self.live_schema).replace("'", "''"))
                conn.execute(sa.text(f"COMMENT ON SCHEMA {_pg_quote(conn, stg)} IS '{marker}'"))
            create_schema(engine, schema, db_schema=stg, with_foreign_keys=False)
        finally:
            engine.dispose()
        self._state = "prepared"
        logger.info("PostgreSQL staging schema %s prepared", stg)

    def finalize(self, schema: DatabaseSchema) -> None:
        self._check_state("finalize", "prepared")
        engine = _engine(self.staging_url)
        try:
            add_foreign_keys(engine, schema, db_schema=self.staging_db_schema)
            reset_sequences(engine, schema, db_schema=self.staging_db_schema)
        finally:
            engine.dispose()
        self._state = "finalized"

    def commit(self) -> None:
        self._check_state("commit", "prepared", "finalized")
        stg, live = self.staging_db_schema, self.live_schema
        assert stg is not None
        engine = _engine(self.staging_url)
        q = engine.dialect.identifier_preparer
        try:
            with engine.begin() as conn:
                live_exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": live}
                ).first()
                if not live_exists:
                    conn.execute(sa.text(f"ALTER SCHEMA {q.quote_schema(stg)} RENAME TO {q.quote_schema(live)}"))
                    conn.execute(sa.text(f"COMMENT ON SCHEMA {q.quote_schema(live)} IS NULL"))  # not debris now
                else:
                    tables = _pg_tables(conn, stg)
                    replaced = sorted(set(tables) & set(_pg_tables(conn, live)))
                    if replaced:
                        names = ", ".join(f"{q.quote_schema(live)}.{q.quote(t)}" for t in replaced)
                        conn.execute(sa.text(f"DROP TABLE {names} CASCADE"))
                    for t in tables:
                        conn.execute(
                            sa.text(f"ALTER TABLE {q.quote_schema(stg)}.{q.quote(t)} SET SCHEMA {q.quote_schema(live)}")
                        )
                    conn.execute(sa.schema.DropSchema(stg, cascade=True))
        except DBAPIError as exc:
            raise ConnectorError(
                f"replacing schema {live!r} of {_redact(self.live_url)} failed, nothing was changed: "
                f"{_first_line(exc)}"
            ) from None
        finally:
            engine.dispose()
        self._state = "committed"
        logger.info("PostgreSQL schema %s replaced from %s", live, stg)

    def abort(self) -> None:
        if self._state == "committed":
            return
        engine = _engine(self.staging_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.schema.DropSchema(str(self.staging_db_schema), cascade=True, if_exists=True))
        finally:
            engine.dispose()
        self._state = "aborted"
        logger.info("PostgreSQL staging schema %s dropped; target untouched", self.staging_db_schema)


class MariaDbStaging(_Base):
    """A staging database on the target server, swapped in with one atomic ``RENAME TABLE``."""

    dialect = "mysql"

    def __init__(self, live_url: str, *, run_id: str, db_schema: str | None = None) -> None:
        super().__init__(live_url, run_id)
        url = _normalize(live_url)
        live_db = db_schema or url.database
        if not live_db:
            raise ConnectorError(
                f"MariaDB target {_redact(live_url)} names no database; add it to the URL (mysql://host/db)"
            )
        self.live_db = live_db
        short = re.sub(r"[^a-z0-9]", "", run_id.lower())[-8:] or "run"
        self.staging_db = _mysql_name(live_db, f"{MARIADB_STAGING_INFIX}{short}")
        self.backup_db = _mysql_name(live_db, f"{MARIADB_BACKUP_INFIX}{short}")
        self._server_url = _server_url_of(url)
        self.staging_url = url.set(database=self.staging_db).render_as_string(hide_password=False)

    def prepare(self, schema: DatabaseSchema) -> None:
        self._check_state("prepare", "new")
        server = _engine(self._server_url)
        try:
            with server.begin() as conn:
                row = conn.execute(
                    sa.text(
                        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                        "WHERE SCHEMA_NAME = :db"
                    ),
                    {"db": self.live_db},
                ).first()
                charset, collation = (row[0], row[1]) if row else ("utf8mb4", "utf8mb4_unicode_ci")
                self._drop_db(conn, self.staging_db)
                conn.execute(
                    sa.text(
                        f"CREATE DATABASE {_bq(self.staging_db)} CHARACTER SET {charset} COLLATE {collation} "
                        f"COMMENT {_colons(_mysql_literal(_marker(self.run_id, self.live_db)))}"
                    )
                )
        finally:
            server.dispose()
        engine = _engine(self.staging_url)
        try:
            create_schema(engine, schema, with_foreign_keys=False)
        finally:
            engine.dispose()
        self._state = "prepared"
        logger.info("MariaDB staging database %s prepared", self.staging_db)

    def finalize(self, schema: DatabaseSchema) -> None:
        self._check_state("finalize", "prepared")
        engine = _engine(self.staging_url)
        try:
            add_foreign_keys(engine, schema)
        finally:
            engine.dispose()
        self._state = "finalized"

    def commit(self) -> None:
        self._check_state("commit", "prepared", "finalized")
        server = _engine(self._server_url)
        try:
            with server.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS {_bq(self.live_db)} CHARACTER SET utf8mb4"))
                tables = _mysql_tables(conn, self.staging_db)
                replaced = sorted(set(tables) & set(_mysql_tables(conn, self.live_db)))
                pairs = []
                if replaced:
                    self._drop_db(conn, self.backup_db)
                    conn.execute(
                        sa.text(
                            f"CREATE DATABASE {_bq(self.backup_db)} "
                            f"COMMENT {_colons(_mysql_literal(_marker(self.run_id, self.live_db)))}"
                        )
                    )
                    pairs += [f"{_bq(self.live_db)}.{_bq(t)} TO {_bq(self.backup_db)}.{_bq(t)}" for t in replaced]
                pairs += [f"{_bq(self.staging_db)}.{_bq(t)} TO {_bq(self.live_db)}.{_bq(t)}" for t in tables]
                # One statement: MariaDB renames all of them or none.
                try:
                    conn.execute(sa.text("RENAME TABLE " + ", ".join(pairs)))
                except DBAPIError:
                    self._drop_db(conn, self.backup_db)  # still empty: the rename did nothing
                    raise
                conn.commit()
                self._state = "committed"
                for db in (self.backup_db, self.staging_db):
                    try:
                        self._drop_db(conn, db)
                    except DBAPIError as exc:  # the swap is done; a leftover is untidy, not a failure
                        logger.warning("could not drop %s after the swap: %s", db, _first_line(exc))
        except DBAPIError as exc:
            raise ConnectorError(
                f"replacing database {self.live_db!r} of {_redact(self.live_url)} failed, nothing was changed: "
                f"{_first_line(exc)}"
            ) from None
        finally:
            server.dispose()
        logger.info("MariaDB database %s replaced from %s", self.live_db, self.staging_db)

    def abort(self) -> None:
        if self._state == "committed":
            return
        server = _engine(self._server_url)
        try:
            with server.connect() as conn:
                self._drop_db(conn, self.staging_db)
        finally:
            server.dispose()
        self._state = "aborted"
        logger.info("MariaDB staging database %s dropped; target untouched", self.staging_db)

    @staticmethod
    def _drop_db(conn: sa.Connection, name: str) -> None:
        # Foreign keys between the tables being dropped must not stop the drop.
        conn.execute(sa.text("SET SESSION foreign_key_checks = 0"))
        try:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {_bq(name)}"))
        finally:
            conn.execute(sa.text("SET SESSION foreign_key_checks = 1"))


# ---------------------------------------------------------------------------------------------------------------


def _normalize(url: str | URL) -> URL:
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa.exc.ArgumentError:
        raise ConnectorError(
            f"target {_redact(str(url))} is not a database URL; write it like sqlite:///path.db, "
            "postgresql://user@host/db or mysql://user@host/db"
        ) from None
    driver = _DEFAULT_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def _server_url_of(url: URL) -> URL:
    """The URL without its database (``URL.set(database=None)`` keeps it: None there means "unchanged")."""
    return url._replace(database=None)


def _engine(url: str | URL) -> sa.Engine:
    """A pool-less engine: every connection is closed on release, so a SQLite file can be swapped afterwards."""
    return sa.create_engine(_normalize(url), poolclass=sa.pool.NullPool)


def _redact(url: str | URL) -> str:
    try:
        return (make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable: mask whatever sits between ':' and '@'
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", str(url))


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def _pg_name(name: str) -> str:
    # Unquoted-style, lower case, at most 63 bytes: PostgreSQL truncates longer identifiers silently.
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:63]


def _mysql_name(live_db: str, suffix: str) -> str:
    room = 64 - len(suffix)
    return live_db[:room] + suffix


def _marker(run_id: str, live: str) -> str:
    """The owner record a staging area carries (JSON): run id, pid, host, and the live target it replaces."""
    return json.dumps({**owner_record(run_id), "live": live}, sort_keys=True)


def _pg_quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_schema(name)


def _mysql_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _colons(literal: str) -> str:
    # sa.text() reads ":name" as a bind parameter; a literal's colons are escaped (COMMENT takes no parameters)
    return literal.replace(":", "\\:")


def _bq(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _pg_tables(conn: sa.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY tablename"), {"s": schema}
    )
    return [r[0] for r in rows]


def _mysql_tables(conn: sa.Connection, db: str) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s AND TABLE_TYPE = 'BASE TABLE' "
            "ORDER BY TABLE_NAME"
        ),
        {"s": db},
    )
    return [r[0] for r in rows]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync(path)
    except OSError:  # some filesystems cannot fsync a folder; the rename is still atomic
        logger.debug("could not fsync folder %s", path)
