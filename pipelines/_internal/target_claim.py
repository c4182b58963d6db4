"""Before any engine starts, a run claims its target: the target's kind, ``target.if_exists``, the target's lock,
and the removal of what killed runs left next to it (see :mod:`connectors.target_guard`, :mod:`connectors.debris`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from connectors.target_guard import TargetLock, check_if_exists, check_target_kind, lock_target
from schemas.config import RunConfig
from schemas.errors import TargetInputError

log = logging.getLogger(__name__)


class _Nothing:
    def release(self) -> None:
        return None


def claim_target(
    config: RunConfig, run_id: str, *, tables: Sequence[str] | None = None, committed: bool = False
) -> TargetLock:
    """Check the target, lock it for ``run_id`` and sweep its dead staging areas; the caller releases the lock.

    Args:
        config: the run's configuration.
        run_id: the run that holds the lock.
        tables: the tables the run writes, which ``if_exists: fail`` looks for on a server target. None: the
            source's (see :func:`_tables_to_write`); a run without a source (a spec run) passes its own.
        committed: a resumed run whose output is already in the target: ``if_exists`` does not apply to it.

    Raises:
        TargetInputError: the target is not a database of its kind, or ``if_exists: fail`` and it holds data.
        TargetBusy: another run holds the target.
    """
    from connectors.debris import sweep_spark_temp, sweep_target
    from connectors.source import is_file_url

    url = config.target.url
    assert url is not None
    if is_file_url(url):
        _check_folder(Path(url.removeprefix("file://")), "replace" if committed else config.target.if_exists)
        return _Nothing()
    check_target_kind(url)
    lock = lock_target(url, run_id=run_id, db_schema=config.target.db_schema)
    try:
        if config.target.if_exists == "fail" and not committed:  # under the lock: nobody can fill the target between check and write
            if url.startswith("sqlite"):  # any table counts: no list needed
                tables = []
            elif tables is None:
                tables = _tables_to_write(config)
            check_if_exists(url, "fail", tables, db_schema=config.target.db_schema)
        try:
            sweep_target(url)
            sweep_spark_temp()
        except Exception:
            log.warning("could not remove what killed runs left next to the target", exc_info=True)
    except BaseException:
        lock.release()
        raise
    return lock


def _check_folder(folder: Path, if_exists: str) -> None:
    if if_exists == "fail" and folder.is_dir() and any(folder.iterdir()):
        raise TargetInputError(
            f"target.if_exists is 'fail' and the target folder {folder.absolute()} is not empty; choose an empty "
            "or new folder, or set target.if_exists: replace to have it replaced"
        )


def _tables_to_write(config: RunConfig) -> list[str]:
    """The source's tables the run would write (include/exclude and the schema file's exclusions applied)."""
    from connectors.source import open_source
    from schemas.schema_file import load_schema, merge_overrides

    assert config.source.url is not None
    edited = load_schema(config.source.schema_file) if config.source.schema_file else None
    source = open_source(config.source.url, db_schema=config.source.db_schema, schema=edited)
    try:
        schema = source.read_schema()
    finally:
        source.close()
    if edited is not None:
        schema = merge_overrides(schema, edited)
    include = config.tables.include
    return [
        t.name
        for t in schema.tables
        if not t.excluded and t.name not in config.tables.exclude and (include is None or t.name in include)
    ]
