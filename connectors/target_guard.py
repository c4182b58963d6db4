"""What a run checks and takes on its target before any engine starts: the target's kind, ``if_exists``, a lock.

* :func:`check_target_kind`: a SQLite target path that exists must be a SQLite database (its 16-byte header is
  ``SQLite format 3\\0``). An empty file is accepted: SQLite itself treats a zero-length file as an empty database,
  and nothing in it can be lost. A folder, or a file of anything else (a text file, a CSV), is refused: the swap
  would replace it with a database.
* :func:`check_if_exists`: with ``target.if_exists: fail``, a target that already holds data is refused: a SQLite
  file with any table, a PostgreSQL schema or a MariaDB database that holds any of the tables the run writes.
  ``replace`` (the default) swaps the staged tables in, as the staging module describes.
* :func:`lock_target`: one run per target at a time, from before the engines start until the swap is over.

  SQLite
      an exclusive ``fcntl.flock`` on ``<target>.synthdb-lock`` beside the target, which holds the owner's run id,
      pid and host. The file is removed on release; one left by a killed process is reused (the OS released its
      lock with the process).
  PostgreSQL
      a session-level ``pg_try_advisory_lock`` keyed by a hash of the target schema, on a connection held open
      whose ``application_name`` is ``synthdb run <run_id>``, so the second run can name the first.
  MariaDB / MySQL
      ``GET_LOCK('synthdb:<hash of the database>', 0)`` on a connection held open; the second run names the
      holder's connection id (MariaDB tells no more about it).

  Both server locks end with their session, so a killed run never leaves a lock behind. A run that finds the lock
  taken stops at once with :class:`~schemas.errors.TargetBusy` (exit code 1, retryable: nothing is wrong with the
  input, and the same command succeeds once the other run has finished).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL

from connectors.owner import owner_record
from connectors.sql.ddl import dialect_family
from connectors.staging import _engine, _normalize, _redact, _server_url_of
from schemas.errors import ConnectorError, TargetBusy, TargetInputError

__all__ = ["TargetLock", "check_if_exists", "check_target_kind", "lock_target", "sqlite_lock_path"]

logger = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
LOCK_SUFFIX = ".synthdb-lock"


class TargetLock(Protocol):
    """A held target lock; :meth:`release` is idempotent."""

    def release(self) -> None: ...


def _sqlite_path(url: URL) -> Path | None:
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db).absolute()


def sqlite_lock_path(live_path: Path) -> Path:
    """The lock file of a SQLite target: ``<target>.synthdb-lock`` beside it."""
    return live_path.with_name(live_path.name + LOCK_SUFFIX)


def check_target_kind(target_url: str) -> None:
    """Refuse a SQLite target path that exists and is not a SQLite database (an empty file is accepted).

    Raises:
        TargetInputError: the path is a folder or a file of another kind.
    """
    url = _normalize(target_url)
    if dialect_family(url.drivername) != "sqlite":
        return
    path = _sqlite_path(url)
    if path is None or not path.exists():
        return
    fix = "choose a new path for the target, or move that file away first"
    if not path.is_file():
        raise TargetInputError(f"SQLite target {path} exists and is not a file (a folder?); {fix}")
    with open(path, "rb") as fh:
        head = fh.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise TargetInputError(
            f"SQLite target {path} exists and is not a SQLite database (its header is not 'SQLite format 3'); "
            f"synthdb would replace it. Nothing was written: {fix}"
        )


def check_if_exists(target_url: str, if_exists: str, tables: Iterable[str], *, db_schema: str | None = None) -> None:
    """With ``if_exists='fail'``, refuse a target that already holds data.

    Args:
        target_url: the live target.
        if_exists: ``replace`` (nothing to check) or ``fail``.
        tables: the tables the run writes (servers: only these count; SQLite: any table counts).
        db_schema: the PostgreSQL schema or MariaDB database of the target (default: the URL's).

    Raises:
        TargetInputError: ``fail`` and the target holds data.
    """
    if if_exists != "fail":
        return
    url = _normalize(target_url)
    family = dialect_family(url.drivername)
    fix = "choose an empty target, or set target.if_exists: replace to have it replaced"
    if family == "sqlite":
        path = _sqlite_path(url)
        if path is None or not path.is_file() or path.stat().st_size == 0:
            return
        found = _tables(url, None)
        if found:
            raise TargetInputError(
                f"target.if_exists is 'fail' and SQLite target {path} already holds {len(found)} table(s) "
                f"({', '.join(found[:10])}); {fix}"
            )
        return
    wanted = set(tables)
    if family == "mysql":
        namespace = db_schema or url.database
        if not namespace:
            return  # the staging module names the missing database
        url = _server_url_of(url)
    else:
        namespace = db_schema
    try:
        found = sorted(wanted & set(_tables(url, namespace)))
    except sa.exc.OperationalError as exc:
        raise ConnectorError(f"target {_redact(target_url)} cannot be reached: {_first(exc)}") from None
    if found:
        where = f"schema {namespace!r}" if family == "postgresql" else f"database {namespace!r}"
        raise TargetInputError(
            f"target.if_exists is 'fail' and {where} of {_redact(target_url)} already holds "
            f"{', '.join(found[:10])}{' ...' if len(found) > 10 else ''}; {fix}"
        )


def lock_target(target_url: str, *, run_id: str, db_schema: str | None = None) -> TargetLock:
    """Take the target's lock for this run, or fail at once when another run holds it.

    Raises:
        TargetBusy: another run holds the lock (its run id named where known).
    """
    url = _normalize(target_url)
    family = dialect_family(url.drivername)
    if family == "sqlite":
        path = _sqlite_path(url)
        if path is None:
            return _NoLock()
        return _SqliteLock(path, run_id)
    if family == "postgresql":
        return _PostgresLock(url, target_url, run_id, db_schema)
    return _MariaDbLock(url, target_url, run_id, db_schema)


def _busy(target: str, holder: str) -> TargetBusy:
    return TargetBusy(
        f"target {target} is being written by another synthdb run ({holder}); two runs into one target would "
        "overwrite each other. Wait until it has finished and run again, or choose another target"
    )


class _NoLock:
    def release(self) -> None:
        return None


class _SqliteLock:
    def __init__(self, live_path: Path, run_id: str) -> None:
        self.path = sqlite_lock_path(live_path)
        self._fd: int | None = None
        if not live_path.parent.is_dir():
            return  # the staging module says the folder is missing, later
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise _busy(str(live_path), _holder_text(self.path)) from None
            try:  # the holder before us may have removed the file after we opened it: lock the file that is there
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(owner_record(run_id)).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: no other run has it open and locked
        os.close(self._fd)
        self._fd = None


def _holder_text(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return f"run {data['run_id']}, pid {data['pid']} on {data['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "run id unknown"


class _ServerLock:
    def __init__(self) -> None:
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None

    def release(self) -> None:
        # closing the session releases the lock; the explicit unlock only makes it immediate
        if self._conn is not None:
            try:
                self._unlock(self._conn)
            except Exception:
                logger.debug("explicit unlock failed", exc_info=True)
            self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _unlock(self, conn: sa.Connection) -> None:
        raise NotImplementedError


class _PostgresLock(_ServerLock):
    def __init__(self, url: URL, target_url: str, run_id: str, db_schema: str | None) -> None:
        super().__init__()
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        try:
            conn = self._engine.connect()
        except sa.exc.OperationalError as exc:
            self.release()
            raise ConnectorError(f"target {_redact(target_url)} cannot be reached: {_first(exc)}") from None
        schema = db_schema or str(conn.execute(sa.text("SELECT current_schema()")).scalar() or "public")
        self.key = _int64(f"synthdb-target:{schema}")
        conn.execute(sa.text("SELECT set_config('application_name', :n, false)"), {"n": f"synthdb run {run_id}"})
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        if not got:
            u = self.key & 0xFFFFFFFFFFFFFFFF
            holder = conn.execute(
                sa.text(
                    "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"hi": u >> 32, "lo": u & 0xFFFFFFFF},
            ).first()
            conn.close()
            self.release()
            name = str(holder[0]) if holder else ""
            text = (
                f"run {name.removeprefix('synthdb run ')}" if name.startswith("synthdb run ") else "run id unknown"
            )
            raise _busy(f"{_redact(target_url)} (schema {schema!r})", text)
        self._conn = conn

    def _unlock(self, conn: sa.Connection) -> None:
        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})


class _MariaDbLock(_ServerLock):
    def __init__(self, url: URL, target_url: str, run_id: str, db_schema: str | None) -> None:
        super().__init__()
        live_db = db_schema or url.database or ""
        self.name = "synthdb:" + hashlib.sha256(live_db.encode()).hexdigest()[:40]
        self._engine = sa.create_engine(_server_url_of(url), poolclass=sa.pool.NullPool)
        try:
            conn = self._engine.connect()
        except sa.exc.OperationalError as exc:
            self.release()
            raise ConnectorError(f"target {_redact(target_url)} cannot be reached: {_first(exc)}") from None
        # a run may take hours: the server must not close the idle lock session (and so free the lock) meanwhile
        conn.execute(sa.text("SET SESSION wait_timeout = 31536000"))
        got = conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": self.name}).scalar()
        if got != 1:
            holder = conn.execute(sa.text("SELECT IS_USED_LOCK(:n)"), {"n": self.name}).scalar()
            conn.close()
            self.release()
            text = f"MariaDB connection {holder}, run id unknown" if holder else "run id unknown"
            raise _busy(f"{_redact(target_url)} (database {live_db!r})", text)
        self._conn = conn

    def _unlock(self, conn: sa.Connection) -> None:
        conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": self.name})


def _tables(url: URL, namespace: str | None) -> list[str]:
    engine = _engine(url)
    try:
        if engine.dialect.name in ("mysql", "mariadb"):  # a database that does not exist holds no table
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s"),
                    {"s": namespace},
                )
                return sorted(str(r[0]) for r in rows)
        return sorted(sa.inspect(engine).get_table_names(schema=namespace))
    finally:
        engine.dispose()


def _int64(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _first(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__
