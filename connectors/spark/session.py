"""A Spark session for writing targets, and SQLAlchemy URL -> JDBC URL conversion.

Spark 4 runs on Java 17 or 21 only. :func:`get_spark` finds such a Java when the default one is another version,
passes JDBC driver jars by path (``spark.jars.packages`` would download them, which cannot work offline), pins
the session and JVM time zones to UTC (so timestamps are written as the UTC instants they are), and keeps one
session per process.

Start-up cost: a synthdb write is one short Spark application, so the driver JVM's start and first-job warm-up
weigh more than its peak speed. The driver runs with ``-XX:TieredStopAtLevel=1`` (the quick C1 JIT only), which
cut the JVM's CPU time for start plus a demo write from 38-41 s to 22 s on a 2-core machine (see
``benchmarks/README.md``). The writer's rows no longer pass through the JVM (its tasks are Python workers that
bulk-load Arrow batches, :mod:`connectors.spark.writer`), so C1's slower steady state costs the load nothing.
Append ``-XX:TieredStopAtLevel=4`` to ``spark.driver.extraJavaOptions`` in the configuration to get the full JIT
back (later flags win). :func:`start_spark_in_background` lets an orchestrator overlap the start with other work,
and warms up the Python worker the load will use.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from schemas.config import SparkConfig
from schemas.errors import ConfigError, ConnectorError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "default_jdbc_jars",
    "find_java_home",
    "get_spark",
    "jdbc_url",
    "start_spark_in_background",
    "stop_spark",
]

logger = logging.getLogger(__name__)

SUPPORTED_JAVA = (17, 21)
_SYSTEM_JARS = (
    "/usr/share/java/postgresql.jar",
    "/usr/share/java/sqlite-jdbc.jar",
    "/usr/share/java/mariadb-java-client.jar",
)
_DRIVERS = {
    "postgresql": "org.postgresql.Driver",
    "sqlite": "org.sqlite.JDBC",
    "mysql": "org.mariadb.jdbc.Driver",
}
# URL query options that mean the same to the JDBC drivers; others are for the Python drivers only (charset...).
_PASS_THROUGH = {
    "postgresql": {"sslmode", "sslrootcert", "sslcert", "sslkey", "options", "application_name"},
    "mysql": {"useSSL", "sslMode", "serverSslCert", "trustServerCertificate"},
}

_LOCK = threading.Lock()
_SESSION: SparkSession | None = None


def get_spark(config: SparkConfig, *, app_name: str = "synthdb") -> SparkSession:
    """The process's Spark session, started on first use.

    Args:
        config: master (default ``local[2]``), extra ``conf`` entries, extra JDBC ``jars`` and ``java_home``.
        app_name: the application name shown by Spark.

    Returns:
        A SparkSession with the JDBC drivers found under ``/usr/share/java`` and ``config.jars`` on its class
        path, UTC time zones, no UI and quiet logs. Later calls return the same session, whatever they pass.

    Raises:
        ConfigError: when a jar in ``config.jars`` does not exist, or no Java 17/21 can be found.
        ConnectorError: when Spark fails to start.
    """
    global _SESSION
    with _LOCK:
        if _SESSION is not None and _alive(_SESSION):
            return _SESSION
        java_home = find_java_home(config.java_home)
        if java_home is not None:
            os.environ["JAVA_HOME"] = str(java_home)
        # Python workers (if any UDF ever runs) must be this interpreter, not whatever `python3` is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        missing = [str(j) for j in config.jars if not Path(j).is_file()]
        if missing:
            raise ConfigError(f"spark.jars: these JDBC driver jars do not exist: {', '.join(missing)}; fix the paths")
        jars = [*default_jdbc_jars(), *(str(Path(j).absolute()) for j in config.jars)]

        from pyspark.sql import SparkSession

        utc = "-Duser.timezone=UTC"
        conf: dict[str, str] = {
            "spark.jars": ",".join(dict.fromkeys(jars)),
            "spark.driver.memory": "1g",
            "spark.sql.session.timeZone": "UTC",
            # C1 only: a short-lived driver spends less CPU compiling than C2 would win back (module notes).
            "spark.driver.extraJavaOptions": f"{utc} -XX:TieredStopAtLevel=1",
            "spark.executor.extraJavaOptions": utc,
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.log.level": "ERROR",
            # Parquet without a UTC flag (naive timestamps) must stay naive: TIMESTAMP, not TIMESTAMP_TZ.
            "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
            # Column names are written exactly as the schema spells them ("id" and "ID" are two columns).
            "spark.sql.caseSensitive": "true",
            # Parquet TIME columns cannot even be read without Spark's TIME type.
            "spark.sql.timeType.enabled": "true",
        }
        for key, value in config.conf.items():
            if key.endswith("extraJavaOptions") and key in conf:
                value = f"{conf[key]} {value}"  # keep the UTC pin; the user's options come last and win
            conf[key] = value
        builder = SparkSession.builder.master(config.master).appName(app_name)
        for key, value in conf.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # noqa: BLE001 - py4j / Java start-up errors come in many types
            raise ConnectorError(
                f"Spark failed to start (master {config.master!r}, JAVA_HOME {os.environ.get('JAVA_HOME')}): "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            ) from None
        session.sparkContext.setLogLevel("ERROR")
        logger.info("Spark %s started (master %s, %d JDBC jar(s))", session.version, config.master, len(jars))
        _SESSION = session
        return session


def start_spark_in_background(
    config: SparkConfig, *, app_name: str = "synthdb", warm_up: bool = True
) -> Future[SparkSession]:
    """Start the process's Spark session on a daemon thread, so its JVM start overlaps other work.

    An orchestrator calls this before the stages that do not need Spark (train, generate) and :func:`get_spark`
    at the write, which then returns the started session (or waits for the start still under way). Measured on
    the demo (2 cores): the start takes 7-12 s, and the warm-up moves 5-6 s of first-job cost out of the write.

    Args:
        config: as for :func:`get_spark`.
        app_name: as for :func:`get_spark`.
        warm_up: with a local master, also run one tiny job through the writer's code path (a Python task that
            converts Parquet and ingests it into a temporary SQLite file), so the Python worker has started and
            imported its libraries before the real write. Skipped on a cluster master (the temporary files would
            be on other machines).

    Returns:
        A future that resolves to the session once it has started and, when asked, warmed up. A failed start
        surfaces here and again from the later :func:`get_spark` call, which retries; a failed warm-up is only
        logged.
    """
    future: Future[SparkSession] = Future()

    def _start() -> None:
        try:
            session = get_spark(config, app_name=app_name)
        except BaseException as exc:  # handed to whoever waits on the future
            logger.debug("background Spark start failed", exc_info=True)
            future.set_exception(exc)
            return
        if warm_up and config.master.startswith("local"):
            _warm_up(session)
        future.set_result(session)

    threading.Thread(target=_start, name="synthdb-spark-start", daemon=True).start()
    return future


def _warm_up(spark: SparkSession) -> None:
    """One tiny load through the writer's path: a Spark job whose Python task ingests Parquet into SQLite.

    It starts Spark's Python worker daemon and imports pyarrow and the ADBC driver there, which is what the
    first real table would otherwise wait for.
    """
    import tempfile

    from connectors.spark.writer import warm_up_load

    try:
        # the pid in the name lets a later run remove the folder when this process is killed (connectors/debris.py)
        with tempfile.TemporaryDirectory(prefix=f"synthdb-spark-warmup-{os.getpid()}-") as tmp:
            warm_up_load(spark, Path(tmp))
    except Exception:  # a warm-up is an optimisation; the real write reports real errors
        logger.debug("Spark warm-up failed", exc_info=True)


def stop_spark() -> None:
    """Stop the process's Spark session, if one was started."""
    global _SESSION
    with _LOCK:
        if _SESSION is not None:
            _SESSION.stop()
            _SESSION = None


def default_jdbc_jars() -> list[str]:
    """The system JDBC driver jars that exist (PostgreSQL, SQLite, MariaDB)."""
    return [j for j in _SYSTEM_JARS if Path(j).is_file()]


def find_java_home(preferred: Path | None = None) -> Path | None:
    """A Java home that Spark 4 can run on.

    Args:
        preferred: ``spark.java_home`` from the configuration; used as given when set.

    Returns:
        None when the current Java (``$JAVA_HOME`` or ``java`` on PATH) is 17 or 21 already; otherwise a Java 17
        or 21 home found under ``/usr/lib/jvm`` or through ``update-java-alternatives -l``.

    Raises:
        ConfigError: when no Java 17 or 21 can be found.
    """
    if preferred is not None:
        if not (Path(preferred) / "bin" / "java").exists():
            raise ConfigError(f"spark.java_home: {preferred} has no bin/java; point it at a Java 17 or 21 home")
        return Path(preferred)
    current_home = os.environ.get("JAVA_HOME")
    current = str(Path(current_home) / "bin" / "java") if current_home else shutil.which("java")
    version = _java_major(current) if current else None
    if version in SUPPORTED_JAVA:
        return None
    for home in _candidate_homes():
        if _java_major(str(home / "bin" / "java")) in SUPPORTED_JAVA:
            logger.info("using Java at %s (the default is %s)", home, version or "missing")
            return home
    raise ConfigError(
        f"Spark needs Java 17 or 21, but the default Java is {version or 'missing'} and none was found under "
        "/usr/lib/jvm; install openjdk-17-jre-headless, or set spark.java_home to a Java 17/21 home"
    )


def jdbc_url(sqlalchemy_url: str) -> tuple[str, dict[str, str]]:
    """A JDBC URL and connection properties for a SQLAlchemy URL.

    MariaDB/MySQL get the ``jdbc:mysql:`` scheme with the MariaDB driver, so that Spark picks its MySQL dialect
    (backtick quoting); under ``jdbc:mariadb:`` it would quote names with double quotes, which MariaDB rejects.

    Args:
        sqlalchemy_url: ``sqlite:///path``, ``postgresql[+driver]://user:pw@host:port/db`` or
            ``mysql|mariadb[+driver]://user:pw@host:port/db``.

    Returns:
        ``(jdbc_url, properties)`` with ``driver``, and ``user``/``password`` when the URL has them. The password
        is only in the properties, never in the JDBC URL, so the URL can be logged.

    Raises:
        ConnectorError: for another database, or a URL without a database.
    """
    try:
        url = make_url(sqlalchemy_url)
    except ArgumentError:
        raise ConnectorError("target is not a valid database URL; write it like postgresql://user@host/db") from None
    backend = url.get_backend_name()
    family = {"postgres": "postgresql", "mariadb": "mysql"}.get(backend, backend)
    if family not in _DRIVERS:
        raise ConnectorError(
            f"Spark cannot write to {backend!r} targets: expected sqlite, postgresql, mysql or mariadb"
        )
    props = {"driver": _DRIVERS[family]}
    if family == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConnectorError("a SQLite target for Spark must be a file (sqlite:///path/to/db.sqlite)")
        return f"jdbc:sqlite:{Path(url.database).absolute()}", props
    if not url.database:
        raise ConnectorError(f"target {url.render_as_string(hide_password=True)} names no database; add /dbname")
    if url.username:
        props["user"] = url.username
    if url.password is not None:
        props["password"] = str(url.password)
    for key, value in url.query.items():
        if key in _PASS_THROUGH[family]:
            props[key] = value if isinstance(value, str) else value[-1]
    host = url.host or "localhost"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = f":{url.port}" if url.port else ""
    if family == "postgresql":
        return f"jdbc:postgresql://{host}{port}/{url.database}", props
    # permitMysqlScheme: MariaDB Connector/J 3 only accepts jdbc:mysql: with it (2.x ignores it).
    return f"jdbc:mysql://{host}{port}/{url.database}?permitMysqlScheme", props


def _alive(session: SparkSession) -> bool:
    try:
        return not session.sparkContext._jsc.sc().isStopped()
    except Exception:  # noqa: BLE001 - a dead gateway raises py4j errors
        return False


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def _candidate_homes() -> list[Path]:
    homes: list[Path] = []
    for pattern in ("/usr/lib/jvm/*17*", "/usr/lib/jvm/*21*"):
        homes.extend(Path(p) for p in sorted(glob.glob(pattern)))
    try:
        out = subprocess.run(
            ["update-java-alternatives", "-l"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        homes.extend(Path(line.split()[-1]) for line in out.splitlines() if line.split())
    except (OSError, subprocess.TimeoutExpired):
        pass  # not a Debian system
    return [h for h in dict.fromkeys(homes) if (h / "bin" / "java").exists()]
