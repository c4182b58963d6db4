"""The orchestrator: one ``synthdb run``, stage by stage, recorded in the run directory's manifest.

inspect -> plan -> extract -> train (Ray) -> generate (Ray) -> write (Spark, into a staging area) -> validate (Great
Expectations, on the staging area) -> commit (the staging area replaces the live target) -> report.

A failure at any point before the commit aborts the staging area: the live target is left exactly as it was.
The commit is the last step that can fail the run: once the staging area is swapped in, nothing after it (the
report, the manifest's last save) changes the outcome. A report that fails as a whole is logged as a warning and
leaves a ``report.json`` that says why; the run still succeeds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines._internal import preload
from pipelines._internal.progress import NO_TRACKER, Tracker
from schemas.config import GenerationConfig, RunConfig, resolve_seed
from schemas.errors import ConfigError, ConnectorError, TargetInputError, ValidationFailed
from schemas.kinds import Kind
from schemas.model import DatabaseSchema, Table
from schemas.plan import Plan, build_plan

log = logging.getLogger(__name__)

Progress = Callable[[str, str], None]  # (stage, message)


@dataclass
class RunResult:
    """What a run did: where, how many rows, how long each stage took, and the validation verdict."""

    run_id: str
    run_dir: Path
    target_url: str
    real_rows: dict[str, int] = field(default_factory=dict)
    synth_rows: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    validation_success: bool | None = None
    validation_failures: list[str] = field(default_factory=list)
    validation_warnings: int = 0
    data_docs: Path | None = None
    report: dict[str, Any] | None = None
    report_html: Path | None = None
    report_error: str | None = None  # the report failed as a whole: why (the run itself succeeded)
    wall_seconds: float | None = None  # less than the stages' sum: the report runs beside the write
    orphans: list[dict[str, Any]] = field(default_factory=list)  # per foreign key: orphaned source rows handled
    seed: int | None = None  # the seed the run used (drawn for it under generation.seed: auto)
    seed_source: str = "config"  # "auto" or "config"


def _same_target(source: str, target: str) -> bool:
    """True when the target is the source itself (same database URL, or the same SQLite file)."""
    import sqlalchemy as sa

    try:
        s, t = sa.make_url(source), sa.make_url(target)
    except Exception:  # a folder path is not a URL
        return Path(source).resolve() == Path(target).resolve()
    if s.get_backend_name() == "sqlite" and t.get_backend_name() == "sqlite":
        return (
            bool(s.database)
            and bool(t.database)
            and Path(s.database or "").resolve() == Path(t.database or "").resolve()
        )
    same_server = (s.get_backend_name(), s.host or "localhost", s.port, s.database) == (
        t.get_backend_name(),
        t.host or "localhost",
        t.port,
        t.database,
    )
    return same_server


def check_config(config: RunConfig) -> None:
    """Everything that can be checked before an engine starts."""
    problems = []
    if not config.source.url:
        problems.append(
            "source.url is not set: give --source URL (a SQLAlchemy URL or a folder of Parquet/CSV files)"
        )
    if not config.target.url:
        problems.append("target.url is not set: give --target URL (a SQLAlchemy URL or a folder for Parquet)")
    if config.source.url and config.target.url and _same_target(config.source.url, config.target.url):
        problems.append(
            "the target is the source itself; synthdb never overwrites the real data. Choose another target"
        )
    problems.extend(url_problems(config))
    problems.extend(runs_dir_problems(Path(config.runs_dir)))
    if problems:
        raise ConfigError("cannot start the run:\n" + "\n".join(f"  - {p}" for p in problems))


def runs_dir_problems(runs_dir: Path) -> list[str]:
    """The runs folder cannot be created or written (a container's volume owned by another user, say)."""
    folder = runs_dir.absolute()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return [f"runs_dir: {folder} cannot be created ({existing} is not a folder); choose another --runs-dir"]
    reason = _not_writable(existing)
    if reason:
        return [
            f"runs_dir: {existing} is not writable ({reason}), so the run directory cannot be made under "
            f"{folder}; make it writable for this user (uid {os.getuid()}) or choose another --runs-dir"
        ]
    return []


def url_problems(config: RunConfig) -> list[str]:
    """Source and target URLs that cannot work: unknown dialects, a target folder that cannot be written.

    Cheap (no connection, no driver import): part of :func:`check_config`. The target database itself is
    checked by :func:`check_target`, which connects once.
    """
    from connectors.source import is_file_url
    from connectors.sql.url import TARGET_BACKENDS, dialect_problem

    problems: list[str] = []
    for what, url, backends in (
        ("source.url", config.source.url, None),
        ("target.url", config.target.url, TARGET_BACKENDS),
    ):
        if url and not is_file_url(url):
            problem = dialect_problem(url, backends=backends)
            if problem:
                problems.append(f"{what}: {problem}")
    target = config.target.url
    if target and is_file_url(target):
        folder = Path(target.removeprefix("file://")).absolute()
        parent = folder.parent
        if folder.exists() and not folder.is_dir():
            problems.append(f"target.url: {folder} is a file, not a folder; give a folder path for Parquet output")
        elif not parent.is_dir():
            problems.append(
                f"target.url: the folder {parent} that would hold the target folder {folder.name!r} does not "
                f"exist; create it (mkdir -p {parent}) or fix the path"
            )
        else:
            reason = _not_writable(parent)
            if reason:
                problems.append(
                    f"target.url: the folder {parent} is not writable ({reason}); synthdb writes the target "
                    f"folder {folder.name!r} beside it and renames it into place. Make it writable or choose "
                    "another folder"
                )
    return problems


def _not_writable(folder: Path) -> str | None:
    """Why nothing can be created in ``folder``, or None. Tries it: permission bits do not bind root, a
    read-only file system does."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".synthdb-probe-", dir=folder))
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def check_source(config: RunConfig) -> None:
    """Connect to a database source once, so a missing database or wrong credentials stop the run before it starts.

    Raises:
        SourceInputError: the database does not exist, or the user may not log in or use it (exit code 2).
        ConnectorError: the server cannot be reached (``retryable``, exit code 1).
    """
    from connectors.source import is_file_url
    from connectors.sql.sql_source import source_engine

    url = config.source.url
    if url and not is_file_url(url):
        source_engine(url).dispose()


def check_target(config: RunConfig) -> None:
    """Connect to a database target once, so a missing database or wrong credentials stop the run before it starts.

    Raises:
        TargetInputError: the database does not exist, or the user may not log in or use it (exit code 2).
        ConnectorError: the server cannot be reached (``retryable``, exit code 1).
    """
    from connectors.source import is_file_url
    from connectors.sql.url import make_engine

    url = config.target.url
    if not url or is_file_url(url):
        return
    if url.startswith("sqlite:"):  # a new SQLite file is created by the write; its folder is what must exist
        import sqlalchemy as sa

        database = sa.make_url(url).database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).absolute().parent
            if not folder.is_dir():
                raise TargetInputError(
                    f"target.url: the folder {folder} of the SQLite target does not exist; create it "
                    f"(mkdir -p {folder}) or fix the path"
                )
            reason = _not_writable(folder)
            if reason:
                raise TargetInputError(
                    f"target.url: the folder {folder} of the SQLite target is not writable ({reason}); "
                    "make it writable or choose another path"
                )
        return
    try:
        engine = make_engine(url)
    except ConnectorError as exc:
        if exc.retryable:  # unreachable: may work later, so not bad input
            raise
        hint = " synthdb does not create databases: create it first." if "does not exist" in exc.message else ""
        raise TargetInputError(f"target.url: {exc.message}.{hint}") from None
    engine.dispose()


def kept_table_problems(schema: DatabaseSchema) -> list[str]:
    """A copied table's foreign keys keep their real values, so every table they reference must be copied too:
    kept whole, or (for a subset table) kept whole or subset; and columns kept in a synthesized table must carry
    data, not keys."""
    problems = []
    for t in schema.active_tables:
        if not t.copied:
            problems.extend(kept_column_problems(t))
            continue
        for fk in t.foreign_keys:
            parent = schema.table(fk.ref_table)
            if parent.excluded:
                continue
            if not parent.copied:
                problems.append(
                    f"table {t.name!r} is {'kept' if t.mode == 'keep' else 'a subset'} but its foreign key "
                    f"{t.name}{fk.label} references the "
                    f"synthesized table {parent.name!r}: its real keys would point at no synthetic row. Keep "
                    f"{parent.name!r} too (tables.mode.{parent.name}: keep) or synthesize {t.name!r}"
                )
            elif t.mode == "keep" and parent.mode == "subset":
                problems.append(
                    f"table {t.name!r} is kept whole but its foreign key {t.name}{fk.label} references the subset "
                    f"table {parent.name!r}: rows outside the subset would be referenced. Make {t.name!r} a subset "
                    f"too (tables.mode.{t.name}: subset) or keep {parent.name!r} whole"
                )
    return problems


def kept_column_problems(table: Table) -> list[str]:
    """A kept column (``mode: keep``) of a synthesized table must not be a key column: keys are generated (and
    wired to generated parents), so a real key value would collide or point at nothing."""
    keys: set[str] = set(table.primary_key.columns) if table.primary_key else set()
    for uq in table.unique:
        keys.update(uq.columns)
    for fk in table.foreign_keys:
        keys.update(fk.columns)
    problems = []
    for col in table.columns:
        if col.mode != "keep":
            continue
        where = f"tables.columns.{table.name}.{col.name}"
        if col.excluded:
            problems.append(f"{where}: the column is excluded and kept; remove one of the two")
        elif col.name in keys:
            problems.append(
                f"{where}: {col.name!r} is a key column (primary, unique or foreign key) of {table.name!r}; keys "
                f"are generated, so it cannot be kept. Keep the whole table (tables.mode.{table.name}: keep) or "
                "synthesize the column"
            )
    return problems


def _apply_table_config(schema: DatabaseSchema, config: RunConfig) -> DatabaseSchema:
    schema = schema.model_copy(deep=True)
    problems = []
    include = config.tables.include
    for name in [*(include or []), *config.tables.exclude]:
        if not schema.has_table(name):
            problems.append(
                f"tables: unknown table {name!r} (tables: {', '.join(t.name for t in schema.tables)})"
            )
    for t in schema.tables:
        if (include is not None and t.name not in include) or t.name in config.tables.exclude:
            t.excluded = True
    for dotted, override in config.tables.columns.items():
        tname, cname = dotted.split(".", 1)
        if not schema.has_table(tname) or not schema.table(tname).has_column(cname):
            problems.append(f"tables.columns: unknown column {dotted!r}")
            continue
        col = schema.table(tname).column(cname)
        if override.kind is not None:
            col.kind = Kind(override.kind)
            col.kind_reason = "user: set in the run configuration"
        if override.excluded is not None:
            col.excluded = override.excluded
        if override.mode is not None:
            col.mode = override.mode
    for name, mode in config.tables.mode.items():
        if not schema.has_table(name):
            problems.append(
                f"tables.mode: unknown table {name!r} (tables: {', '.join(t.name for t in schema.tables)})"
            )
        else:
            schema.table(name).mode = mode
    problems.extend(kept_table_problems(schema))
    for name in config.training.tables:
        if not schema.has_table(name):
            problems.append(
                f"training.tables: unknown table {name!r} (tables: {', '.join(t.name for t in schema.tables)})"
            )
    if problems:
        raise ConfigError("invalid table settings:\n" + "\n".join(f"  - {p}" for p in problems))
    return schema.validate_all()


def check_scale(schema: DatabaseSchema, plan: Plan, generation: GenerationConfig) -> list[str]:
    """Refuse per-table settings that cannot apply (an unknown table, a subset of a child or of a kept table...),
    and name every table that the scale would leave empty: generation rounds each of them up to one row.

    A root table gets ``round(rows * scale)`` rows and a child about ``rows * scale``, with ``rows`` as inspection
    counted them and ``scale`` the global one times the table's own (and its context ancestors') factors (see
    :func:`pipelines.stages.generate.own_scale`). A table with source rows is never left empty (an empty target
    that passes validation would hide the mistake): at a tiny scale it gets one row, and its children follow.

    Returns:
        One line per table rounded up to a row, saying the scale that would fill it on its own (for the log).

    Raises:
        ConfigError: naming every setting that cannot apply (exit code 2).
    """
    from pipelines.stages.generate import own_scale

    problems = []
    for name, setting in generation.tables.items():
        if not schema.has_table(name) or schema.table(name).excluded:
            problems.append(f"generation.tables: unknown table {name!r} (tables: {', '.join(plan.order)})")
        elif schema.table(name).mode == "subset" and setting.scale is not None:
            problems.append(
                f"generation.tables.{name}: {name!r} is a subset of its real rows: give it a share or rows, not a "
                "scale"
            )
        elif schema.table(name).mode == "keep":
            problems.append(
                f"generation.tables.{name}: {name!r} is kept (its real rows are copied whole); remove its scale "
                "or subset, or synthesize it"
            )
        elif (setting.share is not None or setting.rows is not None) and name in plan.context and (
            schema.table(name).mode != "subset"
        ):
            problems.append(
                f"generation.tables.{name}: a subset (share, rows) applies to a root table, but {name!r} follows "
                f"its parent {plan.context[name].parent!r}: subset that root instead, or give {name!r} a scale"
            )
    subset = [t.name for t in schema.active_tables if t.mode == "subset"]
    seeded = [t for t in subset if (g := generation.tables.get(t)) is not None and (g.share or g.rows)]
    if subset and not seeded:
        problems.append(
            f"tables.mode: {', '.join(map(repr, subset))} in mode subset, but none has a share or rows to start "
            f"from; set generation.tables.{subset[0]}.share (or rows) on at least one of them"
        )
    elif subset:
        problems.extend(_unreached_subsets(schema, subset, seeded))
    per_table = [k.split(".", 1)[0] for k in generation.rebalance]
    for tname in sorted({t for t in per_table if per_table.count(t) > 1}):
        problems.append(f"generation.rebalance: {tname!r} has several rebalanced columns; choose one per table")
    for key in generation.rebalance:
        tname, cname = key.split(".", 1)
        if not schema.has_table(tname) or not schema.table(tname).has_column(cname):
            problems.append(f"generation.rebalance: unknown column {key!r}")
            continue
        col = schema.table(tname).column(cname)
        copied = schema.table(tname).copied or col.mode == "keep"
        if col.kind not in (Kind.CATEGORICAL, Kind.BOOLEAN) or copied or col.excluded:
            problems.append(
                f"generation.rebalance: {key!r} is {col.kind} ({col.kind_reason}); only a learned categorical or "
                "boolean column of a synthesized table can be rebalanced (set its kind: categorical)"
            )
    if problems:
        raise ConfigError("invalid generation settings:\n" + "\n".join(f"  - {p}" for p in problems))
    scale = generation.scale
    need: dict[str, float] = {}  # a scale that gives the table (and its context ancestors) about one row
    empty: list[tuple[str, int, float]] = []
    gone: set[str] = set()
    effective: dict[str, float] = {}
    for name in plan.order:
        rows = schema.table(name).row_count or 0
        ctx = plan.context.get(name)
        parent = ctx.parent if ctx is not None else None
        own = own_scale(generation, name, rows, root=parent is None)
        effective[name] = (scale if parent is None else effective.get(parent, scale)) * own
        if schema.table(name).copied:  # a subset keeps at least one row per seed; its closure is found later
            effective[name] = 1.0
        need[name] = max(_round_up(1 / rows) if rows else 0.0, need.get(parent, 0.0) if parent else 0.0)
        if rows and (rows * effective[name] <= 0.5 or parent in gone):  # round(0.5) is 0
            gone.add(name)
            empty.append((name, rows, need[name]))
    return [
        f"table {name!r} ({rows:,} source rows) would be empty at scale {effective[name]:.3g}: it gets one row "
        f"(scale >= {n:.3g} fills it on its own)"
        for name, rows, n in empty
    ]


REBALANCE_TOLERANCE = 0.05
"""A rebalanced value's share may miss the wanted one by this much before the run warns."""


def _unreached_subsets(schema: DatabaseSchema, subset: list[str], seeded: list[str]) -> list[str]:
    """Subset tables whose rows nothing selects: not seeded, no subset parent that is, and no subset table
    referencing them (see :mod:`pipelines.stages.subset`): they would be empty."""
    refs = [(t, fk.ref_table) for t in subset for fk in schema.table(t).foreign_keys if fk.ref_table in subset]
    reached = set(seeded)
    while True:  # downward: children of reached tables; upward: parents that reached tables reference
        more = {c for c, p in refs if p in reached and c != p} | {p for c, p in refs if c in reached}
        if more <= reached:
            break
        reached |= more
    return [
        f"tables.mode.{t}: {t!r} is in mode subset, but no seed (generation.tables.<t>.share or rows), subset parent "
        f"or subset table referencing it selects any of its rows; give it a share or rows, or keep it whole"
        for t in subset
        if t not in reached
    ]


def _round_up(x: float) -> float:
    """``x`` rounded up to 2 significant digits, so the scale shown is enough and readable."""
    import math

    step = 10.0 ** (math.floor(math.log10(x)) - 1)
    return float(math.ceil(x / step - 1e-9) * step)


def _record_orphans(run_dir: Path, rec: Any, result: RunResult, say: Progress) -> None:
    """Put the orphaned foreign keys extraction handled into the manifest, the run's result and the progress."""
    from pipelines.stages.extract import read_orphans

    result.orphans = read_orphans(run_dir)
    rec.detail["orphans"] = result.orphans
    for o in result.orphans:
        verb = "set to NULL" if o["action"] == "null" else "dropped"
        say(
            "extract",
            f"{o['table']}({', '.join(o['columns'])}) -> {o['ref_table']}: {o['orphans']:,} orphaned row(s) {verb}",
        )


def _redacted_config(config: RunConfig) -> dict[str, Any]:
    from connectors.sql.url import redact_url

    data = json.loads(config.model_dump_json())
    for section in ("source", "target"):
        url = data[section].get("url")
        if url and "://" in url:
            data[section]["url"] = redact_url(url)
    return data


def run_pipeline(
    config: RunConfig,
    *,
    progress: Progress | None = None,
    run_id: str | None = None,
    resume: str | None = None,
    origin: Any = None,
    tracker: Tracker | None = None,
) -> RunResult:
    """Run the whole pipeline, or resume the run ``resume`` (see :mod:`pipelines.resume`).

    ``progress`` gets one line per event, ``tracker`` (see :mod:`pipelines._internal.progress`) the rows per stage
    and table as they are done; its ``close`` is called when the run ends, before its log file is closed.

    With ``origin`` (a finished run's :class:`~pipelines.manifest.Manifest`, see :mod:`pipelines.from_run`), a new
    run takes that run's schema, plan, real-data copies and models and runs generate onwards: nothing is retrained
    and the source is never opened.

    Bad input (configuration, URLs, the target database or folder) is refused before the run directory is
    created and before any engine starts. A run that fails later never leaves a manifest saying ``running``: it
    says ``failed``, with the error.

    A resumed run keeps its run id, directory, configuration and seed; every stage whose outputs are complete and
    verified is reused, and the run ends with the output the uninterrupted run would have given.

    Raises:
        ConfigError: bad configuration (before anything starts).
        TargetInputError: the target database or folder cannot be used (before anything starts), for example a
            SQLite path that holds another kind of file, or ``target.if_exists: fail`` and the target holds data.
        TargetBusy: another run holds the target's lock (exit code 1, retryable).
        ValidationFailed: the generated data failed an integrity expectation; the live target is untouched.
        SynthdbError: any other failure; the live target is untouched.
    """
    from pipelines.manifest import mark_failed, new_run_id

    check_config(config)
    if origin is None:
        check_source(config)
    check_target(config)
    prior = None
    if resume is not None:
        from pipelines.resume import prepare_resume

        prior, config = prepare_resume(config, resume, _redacted_config(config))
        seed_source, run_id = (prior.seed or {}).get("source", "config"), prior.run_id
    else:
        seed_source = "auto" if config.generation.seed == "auto" else "config"
        run_id = run_id or new_run_id()
    config = resolve_seed(config)  # drawn once, before the run directory: the manifest records it
    from pipelines._internal.target_claim import claim_target

    # the target's kind, if_exists and lock, and killed runs' debris: before any engine, held until the run ends
    # (a resumed run that had swapped its output in finds its own output there: if_exists does not apply to it)
    lock = claim_target(config, run_id, committed=prior is not None and prior.committed_at is not None)
    try:
        from pipelines._internal.run_log import run_log
        from pipelines.workspace import Workspace

        with run_log(Workspace(Path(config.runs_dir).resolve() / run_id).log):
            try:
                return _run_pipeline(
                    config, progress=progress, run_id=run_id, seed_source=seed_source, prior=prior, origin=origin,
                    tracker=tracker or NO_TRACKER,
                )
            finally:  # a live display stops while standard error is still the one it draws on
                (tracker or NO_TRACKER).close()
    except BaseException as exc:
        mark_failed(config.runs_dir, run_id, exc)
        raise
    finally:
        lock.release()


def _run_pipeline(
    config: RunConfig,
    *,
    progress: Progress | None = None,
    run_id: str | None = None,
    seed_source: str = "config",
    prior: Any = None,
    origin: Any = None,
    tracker: Tracker = NO_TRACKER,
) -> RunResult:
    """Run the whole pipeline (see :func:`run_pipeline`, which checks the input first).

    Raises:
        ConfigError: bad configuration (before anything starts).
        ValidationFailed: the generated data failed an integrity expectation; the live target is untouched.
        SynthdbError: any other failure; the live target is untouched.
    """
    from connectors.inspect import inspect_source
    from connectors.source import open_source
    from pipelines.expectations import build_suite
    from pipelines.manifest import Manifest, atomic_write_text
    from pipelines.resume import StageReuse
    from schemas.schema_file import load_schema, merge_overrides, save_schema

    check_config(config)
    say = progress or (lambda stage, msg: None)
    assert config.source.url is not None and config.target.url is not None
    started = time.perf_counter()
    if prior is None:
        manifest = Manifest.create(config.runs_dir, run_id=run_id, config=_redacted_config(config))
    else:
        manifest = _reopen(prior)
        say("plan", f"resuming run {manifest.run_id} (it ended {manifest.resumed[-1]['status']})")
    # A run that had swapped its output in is done but for the report: its data stages are kept as they are (run
    # again, they could no longer match what the target holds).
    if origin is not None:
        from pipelines.from_run import take_stages

        take_stages(origin, manifest)
        say("plan", f"sampling again from run {origin.run_id}'s models: nothing is retrained, the source is not read")
    reuse = StageReuse(
        manifest,
        resuming=prior is not None or origin is not None,
        say=say,
        committed=manifest.committed_at is not None,
        earlier="the interrupted run" if origin is None else f"run {origin.run_id}",
    )
    known_schema = manifest.stages["inspect"].detail.get("fingerprint") if prior is not None or origin else None
    ws = manifest.workspace
    run_dir = manifest.run_dir
    result = RunResult(run_id=manifest.run_id, run_dir=run_dir, target_url=config.target.url)
    seed = config.generation.fixed_seed  # drawn by run_pipeline under generation.seed: auto
    result.seed, result.seed_source = seed, seed_source
    manifest.seed = {"value": seed, "source": seed_source}
    manifest.save()
    if seed_source == "auto":
        say("plan", f"seed {seed} (generation.seed: auto; rebuild this run with --seed {seed})")

    def timed(name: str) -> Any:
        return tracked_stage(manifest, name, tracker)

    edited = load_schema(config.source.schema_file) if config.source.schema_file and origin is None else None
    source = (  # fails fast
        open_source(config.source.url, db_schema=config.source.db_schema, schema=edited) if origin is None else None
    )
    # Engines start while the source is read: the JVM starts and warms up for the write, Ray's workers import the
    # models, and the validation and report libraries load (Great Expectations alone takes seconds to import).
    from connectors.spark.session import start_spark_in_background
    from pipelines.ray_runtime import init_ray, warm_workers

    try:
        start_spark_in_background(config.spark)
        preload.start()
        init_ray(config.ray)
        warm_workers()
        if source is None:  # sampling from an earlier run: its schema, and profiles of its real-data copies
            schema = load_schema(ws.schema)
            profiles = _profiles_of_run(ws, schema)
            fingerprint = known_schema
        else:
            with timed("inspect") as rec:
                say("inspect", "reflecting the source and profiling a bounded sample")
                inspected = inspect_source(source)
                schema = merge_overrides(inspected.schema, edited) if edited is not None else inspected.schema
                schema = _apply_table_config(schema, config)
                profiles = inspected.profiles
                save_schema(schema, ws.schema, profiles=profiles)
                rec.detail["tables"] = len(schema.active_tables)
                rec.detail["fingerprint"] = fingerprint = _fingerprint(schema)
        if known_schema != fingerprint and not reuse.committed:
            reuse.stop("extract", "the source's schema differs from the interrupted run's")
        with timed("plan") as rec:
            plan = build_plan(schema)
            for line in check_scale(schema, plan, config.generation):  # bad settings are refused before data moves
                say("plan", line)
            atomic_write_text(ws.plan, json.dumps(plan.to_json(), indent=2))
            suite = build_suite(schema, profiles)  # pure: a bad key fails here, before any data moves
            budget = None
            if config.privacy.epsilon is not None:
                from pipelines.stages.budget import plan_budget

                budget = plan_budget(schema, plan, config)  # an allocation that cannot be met stops here
                rec.detail["privacy_allocation"] = budget.to_json()
            say("plan", f"{len(plan.order)} tables in {len(plan.generations)} generations")
        if (rec := reuse.take("extract")) is not None:
            result.real_rows = dict(rec.rows)
            _record_orphans(run_dir, rec, result, say)
        else:
            with timed("extract") as rec:
                from pipelines.stages.extract import run_extract, split_holdout

                rec.rows = run_extract(
                    source, schema, run_dir, batch_rows=config.source.batch_rows, orphans=config.source.orphans,
                    tracker=tracker,
                )
                result.real_rows = dict(rec.rows)
                _record_orphans(run_dir, rec, result, say)
                held = split_holdout(
                    run_dir, schema, plan, share=config.training.holdout, seed=config.generation.fixed_seed
                )
                rec.detail["holdout_rows"] = held
                say(
                    "extract",
                    f"{sum(rec.rows.values()):,} real rows, {sum(held.values()):,} held out (never trained on)",
                )
    finally:
        if source is not None:
            source.close()

    if reuse.take("train") is None:
        _train(config, schema, plan, budget, manifest, say, tracker)
    if (rec := reuse.take("generate")) is None:
        rec = _generate(config, plan, schema, manifest, say, tracker)
    result.synth_rows = dict(rec.rows)
    # The report reads the run directory's Parquet, not the target, so it runs beside the write and validation.
    from concurrent.futures import ThreadPoolExecutor

    def report_stage() -> None:
        # Total: whatever happens in the report stays in the report, so it can never fail a committed run.
        preload.wait()  # its libraries are imported on one thread only (see pipelines._internal.preload)
        try:
            with timed("report") as rec:
                try:
                    _report(config, schema, plan, run_dir, result, rec, say)
                except Exception as exc:
                    result.report_error = f"{type(exc).__name__}: {exc}"
                    rec.detail = {"failed": True, "error": result.report_error}
                    log.warning(
                        "the report failed; the run is not affected: %s", result.report_error, exc_info=True
                    )
                    _write_failed_report(ws.report, result.report_error)
                    say("report", f"failed: {result.report_error} (the run is not affected)")
        except Exception:  # the manifest's own bookkeeping: logged, never raised
            log.warning("could not record the report stage in the manifest", exc_info=True)

    committed = manifest.committed_at is not None
    if committed:  # the interrupted run had swapped its output in: the write and its validation are done
        for name in ("write", "validate"):
            if manifest.stages[name].status == "done":
                manifest.reuse(name)
        _restore_validation(manifest, result)
        say("write", f"reused: the interrupted run's output was swapped into the target at {manifest.committed_at}")
    reported = reuse.take("report")  # the report reads the generated Parquet only: it needs no write
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthdb-report") as pool:
        pending = pool.submit(report_stage) if config.report.enabled and reported is None else None
        if not config.report.enabled:
            manifest.skip("report", "report.enabled is false")
        try:
            if not committed:
                write_validate_commit(config, schema, plan, suite, manifest, result, say, tracker=tracker)
        except BaseException:
            if pending is not None and not pending.cancel():
                try:
                    pending.result()
                except Exception:  # the write's failure is the one to report
                    log.warning("the report failed too", exc_info=True)
            raise
        # Committed: from here on nothing may fail the run.
        if pending is not None:
            try:
                pending.result()
            except Exception:  # report_stage catches everything; this is a last safety net
                log.warning("the report failed; the run is not affected", exc_info=True)
        elif reported is not None:
            result.report_html = Path(reported.detail.get("html", ws.report / "report.html"))
    try:
        manifest.status = "done"
        manifest.save()
    except Exception:  # the target is already swapped in; a manifest that cannot be saved is only logged
        log.warning("could not save the run's manifest after the commit", exc_info=True)
    result.stage_seconds = {k: v.seconds for k, v in manifest.stages.items() if v.seconds is not None}
    result.wall_seconds = elapsed(started)
    return result


def tracked_stage(manifest: Any, name: str, tracker: Tracker) -> contextlib.AbstractContextManager[Any]:
    """``manifest.stage(name)``, its start and end reported to ``tracker`` too."""

    @contextlib.contextmanager
    def stage() -> Iterator[Any]:
        with manifest.stage(name) as rec:
            tracker.stage_started(name)
            yield rec
            tracker.stage_done(name)

    return stage()


def _train(
    config: RunConfig,
    schema: DatabaseSchema,
    plan: Plan,
    budget: Any,
    manifest: Any,
    say: Progress,
    tracker: Tracker = NO_TRACKER,
) -> None:
    run_dir = manifest.run_dir
    with tracked_stage(manifest, "train", tracker) as rec:
        from pipelines.stages.train import run_train

        say("train", f"{len(plan.training_jobs)} Ray tasks")
        rec.rows = run_train(run_dir, schema, plan, config, budget, tracker=tracker)
        from pipelines.stages.train import model_summary

        rec.detail["models"] = models = model_summary(run_dir, plan)
        for name in plan.order:
            m = models.get(name, {})
            say(
                "train",
                f"{name}: {m.get('model', 'copula')} model fitted on {rec.rows.get(name, 0):,} training rows "
                f"({m.get('reason', '')})",
            )
        if budget is not None:
            from pipelines.stages.budget import account_budget
            from pipelines.stages.train import load_artifacts

            spent = {t: load_artifacts(run_dir, t).privacy_spent for t in plan.training_jobs}
            accounted = account_budget(run_dir, budget, spent)  # over the budget: stops before generating
            rec.detail["privacy"] = {k: v for k, v in accounted.items() if k != "allocation"}
            say("train", f"privacy: epsilon {accounted['epsilon']:.4f} of {budget.epsilon:g} spent "
                f"(delta {accounted['delta']:.2g}), accounted by the RDP accountant")


def _generate(
    config: RunConfig, plan: Plan, schema: DatabaseSchema, manifest: Any, say: Progress, tracker: Tracker = NO_TRACKER
) -> Any:
    run_dir = manifest.run_dir
    with tracked_stage(manifest, "generate", tracker) as rec:
        from pipelines.stages.generate import run_generate

        rec.rows = run_generate(run_dir, schema, plan, config, tracker=tracker)
        for name in plan.order:
            say("generate", f"{name}: {rec.rows.get(name, 0):,} rows")
        if config.generation.rebalance:
            from pipelines.stages.generate import rebalance_summary

            rec.detail["rebalance"] = rebalanced = rebalance_summary(run_dir, config)
            for key, values in rebalanced.items():
                shown = ", ".join(
                    f"{v}: {s['reached']:.1%} (wanted {s['wanted']:.1%}, real {s['real']:.1%})" for v, s in values.items()
                )
                say("generate", f"rebalanced {key}: {shown}")
                short = [v for v, s in values.items() if abs(s.get("reached", 0.0) - s["wanted"]) > REBALANCE_TOLERANCE]
                if short:
                    log.warning(
                        "generate: rebalanced %s: %s missed its share by more than %.0f points: the model rarely "
                        "gives %s%s",
                        key, ", ".join(short), 100 * REBALANCE_TOLERANCE, "it" if len(short) == 1 else "them",
                        " under the parents it is conditioned on (rebalance the parent table instead)"
                        if key.split(".", 1)[0] in plan.context else "",
                    )
        say("generate", f"{sum(rec.rows.values()):,} synthetic rows")
    return rec


def _profiles_of_run(ws: Any, schema: DatabaseSchema) -> dict[str, Any]:
    """Profiles of a run's real-data copies (a bounded slice of each), for the validation suite of a new sample."""
    import pyarrow.parquet as pq

    from connectors.profile import profile_table

    profiles = {}
    for t in schema.active_tables:
        path = ws.real(t.name)
        if not path.exists():
            continue
        with pq.ParquetFile(path) as pf:
            rows = pf.metadata.num_rows
            batch = next(pf.iter_batches(batch_size=PROFILE_ROWS), None)
        if batch is not None:
            import pyarrow as pa

            profiles[t.name] = profile_table(pa.Table.from_batches([batch]), name=t.name, row_count=rows)
    return profiles


PROFILE_ROWS = 10_000
"""Rows profiled per table of an earlier run's real-data copies (the bound ``synthdb inspect`` samples too)."""


def _fingerprint(schema: DatabaseSchema) -> str:
    """The schema a run works on, as a digest: a resumed run whose source changed shape reuses nothing."""
    import hashlib

    return hashlib.sha256(schema.model_dump_json().encode()).hexdigest()


def _reopen(prior: Any) -> Any:
    """The interrupted run's manifest, taken over by this process (status running, this process its owner)."""
    from datetime import UTC, datetime

    from connectors.owner import owner_record

    prior.resumed.append(
        {"at": datetime.now(UTC).isoformat(timespec="seconds"), "status": prior.status, "error": prior.error}
    )
    prior.status, prior.error, prior.owner = "running", None, owner_record(prior.run_id)
    prior.save()
    return prior


def _restore_validation(manifest: Any, result: RunResult) -> None:
    """The verdict of a validation the interrupted run finished, into this run's result."""
    rec = manifest.stages.get("validate")
    if rec is not None and rec.status == "done":
        result.validation_success = rec.detail.get("success")
        result.validation_warnings = int(rec.detail.get("profile_warnings", 0))


def _write_failed_report(out_dir: Path, error: str) -> None:
    """A ``report.json`` that says the report failed and why (the headline all ``n/a``), and never raises."""
    from datetime import UTC, datetime

    from pipelines.manifest import atomic_write_text
    from schemas.config import REPORT_THRESHOLDS

    try:
        payload = {
            "version": 1,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": "failed",
            "error": error,
            "headline": {
                name: {
                    "score": None,
                    "threshold": threshold,
                    "status": "n/a",
                    "reason": f"the report failed: {error}",
                }
                for name, threshold in REPORT_THRESHOLDS.items()
            },
            "notes": [f"the report failed as a whole: {error}; the synthetic data was written and validated"],
        }
        atomic_write_text(out_dir / "report.json", json.dumps(payload, indent=2))
    except Exception:
        log.warning("could not write report.json for the failed report", exc_info=True)


def _report(
    config: RunConfig, schema: DatabaseSchema, plan: Plan, run_dir: Path, result: RunResult, rec: Any, say: Progress
) -> None:
    """Score the synthetic data against the training data and the holdout; write report.html and report.json."""
    from connectors.sql.url import redact_url
    from pipelines.workspace import Workspace
    from pipelines.stages.report import build_report, parquet_rows, read_tables

    assert config.source.url is not None and config.target.url is not None
    names = [t.name for t in schema.active_tables]
    cap = 10 * config.report.sample_rows  # memory bound per table, whatever its size; metrics sample fewer
    seed = config.generation.fixed_seed
    real_dirs = {n: Workspace(run_dir).table("real", n) for n in names}
    synth_dirs = {n: Workspace(run_dir).synth(n) for n in names}
    # one share per table for both sides, so that sampled children-per-parent counts stay comparable
    largest = {n: max(parquet_rows(real_dirs[n]), parquet_rows(synth_dirs[n])) for n in names}
    shares = {n: min(1.0, cap / rows) if rows else 1.0 for n, rows in largest.items()}
    real = read_tables(real_dirs, seed=seed, shares=shares)
    holdout = read_tables({n: Workspace(run_dir).table("holdout", n) for n in names}, max_rows=cap, seed=seed)
    synth = read_tables(synth_dirs, seed=seed, shares=shares)
    context = {n: (c.parent, list(c.columns), list(c.ref_columns)) for n, c in plan.context.items()}
    report = build_report(
        real,
        synth,
        schema,
        Workspace(run_dir).report,
        holdout=holdout or None,
        config=config.report,
        context=context,
        seed=seed,
        sources={"real": redact_url(config.source.url), "synthetic": redact_url(config.target.url)},
    )
    from pipelines.stages.budget import read_budget

    budget = read_budget(run_dir)
    if budget is not None:
        from pipelines._internal.report_budget import attach_privacy_budget

        attach_privacy_budget(Workspace(run_dir).report, budget)
    if config.generation.rebalance:
        from pipelines._internal.report_modes import attach_rebalance
        from pipelines.stages.generate import rebalance_summary

        attach_rebalance(Workspace(run_dir).report, rebalance_summary(run_dir, config))
    result.report = report.headline
    result.report_html = report.html_path
    rec.detail = {"warnings": report.warnings, "html": str(report.html_path)}
    say("report", f"{report.html_path} ({len(report.warnings)} warning(s))")


def write_validate_commit(
    config: RunConfig,
    schema: DatabaseSchema,
    plan: Plan,
    suite: Any,
    manifest: Any,
    result: RunResult,
    say: Progress,
    *,
    tracker: Tracker = NO_TRACKER,
) -> None:
    """Write the generated Parquet into a staging area of the target, validate it there, and swap it in.

    Shared by :func:`run_pipeline` and schema-only generation (:func:`pipelines.spec.run_spec`). A failure before
    the swap drops the staging area: the live target is left as it was. ``tracker`` hears of each table written
    (Spark reports rows per table when the load ends) and validated.
    """
    from connectors.source import is_file_url
    from connectors.spark.session import get_spark
    from connectors.spark.writer import write_parquet_folder, write_tables
    from connectors.staging import staging_for
    from pipelines.expectations import validate_target
    from pipelines.workspace import Workspace

    assert config.target.url is not None
    run_dir: Path = manifest.run_dir
    dirs = {t.name: Workspace(run_dir).synth(t.name) for t in schema.active_tables}
    planned = {name: result.synth_rows.get(name) for name in dirs}
    if is_file_url(config.target.url):
        with tracked_stage(manifest, "write", tracker) as rec:
            _tables_planned(tracker, "write", planned)
            spark = get_spark(config.spark)
            out = Path(config.target.url.removeprefix("file://"))
            rec.rows = write_parquet_folder(spark, dirs, out)
            _tables_done(tracker, "write", rec.rows)
        manifest.skip("validate", "a Parquet folder target has no SQL engine to validate on")
        _mark_committed(manifest)
        return
    staging = staging_for(config.target.url, run_id=manifest.run_id, db_schema=config.target.db_schema)
    try:
        with tracked_stage(manifest, "write", tracker) as rec:
            say("write", "creating the target schema in a staging area")
            _tables_planned(tracker, "write", planned)
            staging.prepare(schema)
            spark = get_spark(config.spark)
            rec.rows = write_tables(spark, dirs, schema, plan.order, staging)
            _tables_done(tracker, "write", rec.rows)
            staging.finalize(schema)
            say("write", f"{sum(rec.rows.values()):,} rows written by Spark")
        if config.validation.enabled:
            preload.wait()  # Great Expectations is imported on one thread only (see pipelines._internal.preload)
            with tracked_stage(manifest, "validate", tracker) as rec:
                _tables_planned(tracker, "validate", planned)
                report = validate_target(
                    staging.staging_url,
                    schema,
                    suite,
                    manifest.workspace.validation,
                    db_schema=staging.staging_db_schema,
                    fail_on_profile=config.validation.fail_on_profile,
                )
                result.validation_success = report.success
                result.validation_failures = list(report.integrity_failures)
                result.validation_warnings = len(report.profile_warnings)
                result.data_docs = report.docs_path
                _tables_done(tracker, "validate", {n: r or 0 for n, r in planned.items()})
                rec.detail = {
                    "success": report.success,
                    "evaluated": report.statistics.evaluated,
                    "failed": report.statistics.failed,
                    "profile_warnings": len(report.profile_warnings),
                }
                if not report.success:
                    raise ValidationFailed(
                        "validation failed; the live target was left as it was:\n"
                        + "\n".join(f"  - {f}" for f in report.integrity_failures[:20])
                    )
        else:
            manifest.skip("validate", "validation.enabled is false")
        staging.commit()  # the last step that can fail the run
        _mark_committed(manifest)
    except BaseException:
        try:
            staging.abort()
        except Exception:  # keep the original error; the abort failure is logged
            log.exception("could not drop the staging area")
        raise
    try:
        say("write", "staging area swapped into the live target")
    except Exception:  # committed: a progress callback cannot fail the run any more
        log.warning("progress callback failed after the commit", exc_info=True)


def _tables_planned(tracker: Tracker, stage: str, rows: dict[str, int | None]) -> None:
    for name, n in rows.items():
        tracker.table_total(stage, name, n)


def _tables_done(tracker: Tracker, stage: str, rows: dict[str, int]) -> None:
    for name, n in rows.items():
        tracker.table_done(stage, name, n)


def _mark_committed(manifest: Any) -> None:
    """Record that the output is in the live target: a resumed run never writes it again. Never raises."""
    from datetime import UTC, datetime

    try:
        manifest.committed_at = datetime.now(UTC).isoformat(timespec="seconds")
        manifest.save()
    except Exception:  # committed: bookkeeping cannot fail the run
        log.warning("could not record the commit in the run's manifest", exc_info=True)


def elapsed(start: float) -> float:
    return round(time.perf_counter() - start, 3)
