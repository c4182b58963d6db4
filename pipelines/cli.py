"""The ``synthdb`` command line.

Exit codes scripts can rely on: 0 ok, 1 failed run, 2 bad input. Only this module attaches log handlers and
progress output; the packages below it only log.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from pipelines._internal.live_progress import LiveProgress
from schemas.errors import SchemaError, SynthdbError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

app = typer.Typer(
    name="synthdb",
    help="Turn a real relational database into a synthetic one: same schema, same statistics, every key valid.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
_err = Console(stderr=True)
_out = Console()

log = logging.getLogger("synthdb")


_OWN_LOGGERS = ("synthdb", "schemas", "connectors", "synth_engine", "pipelines")


class _ConsoleFilter(logging.Filter):
    """What reaches the console: synthdb's warnings (its INFO too with -v) and other libraries' errors.

    Everything else (INFO records the progress lines already say, Python warnings, libraries' warnings) goes to the
    run's log file only (``runs/<id>/run.log``), so no line is printed twice.
    """

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.own_level = logging.INFO if verbose else logging.WARNING

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name.split(".", 1)[0] in _OWN_LOGGERS
        return record.levelno >= (self.own_level if own else logging.ERROR)


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, RichHandler)]:
        root.removeHandler(old)
    handler = RichHandler(console=_err, show_path=False, show_time=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_ConsoleFilter(verbose))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    level = logging.DEBUG if verbose else logging.INFO  # INFO and up reach the run's log file
    for name in _OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)


def _fail(exc: SynthdbError) -> NoReturn:
    _err.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress in detail.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Run configuration (YAML or TOML).")]
SeedOpt = Annotated[
    str | None,
    typer.Option(help="Seed: the same seed gives the same output; 'auto' draws one (recorded in the manifest)."),
]
ScaleOpt = Annotated[float | None, typer.Option(help="Scale factor of the root tables' row counts.")]
RunsDirOpt = Annotated[Path | None, typer.Option(help="Where run directories go (default: runs).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on standard output.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress lines: errors, warnings and one closing line only.")
]
DbSchemaOpt = Annotated[
    str | None,
    typer.Option(
        "--db-schema", help="Database schema (namespace) to read, e.g. a PostgreSQL schema other than public."
    ),
]


def schema_to_json(schema: Any) -> dict[str, Any]:
    """The stable ``inspect --json`` shape."""
    tables = []
    for t in schema.tables:
        tables.append(
            {
                "name": t.name,
                "db_schema": t.db_schema,
                "excluded": t.excluded,
                "row_count": t.row_count,
                "columns": [
                    {
                        "name": c.name,
                        "type": c.type,
                        "native_type": c.native_type,
                        "nullable": c.nullable,
                        "kind": str(c.kind),
                        "kind_reason": c.kind_reason,
                        "excluded": c.excluded,
                    }
                    for c in t.columns
                ],
                "primary_key": list(t.primary_key.columns) if t.primary_key else [],
                "unique": [list(u.columns) for u in t.unique],
                "foreign_keys": [
                    {
                        "name": fk.name,
                        "columns": list(fk.columns),
                        "references": {"table": fk.ref_table, "columns": list(fk.ref_columns)},
                        "nullable": fk.nullable,
                        "virtual": fk.virtual,
                    }
                    for fk in t.foreign_keys
                ],
                "checks": [c.sqltext for c in t.checks],
            }
        )
    return {"dialect": schema.dialect, "tables": tables}


@app.command(
    epilog="Example:  synthdb inspect postgresql://app@db.internal/shop -o shop.yaml",
)
def inspect(
    source_url: Annotated[
        str, typer.Argument(help="SQLAlchemy URL of the source, or a folder of Parquet/CSV files.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the editable schema file (YAML) here.")
    ] = None,
    schema_file: Annotated[
        Path | None,
        typer.Option("--schema", help="An edited schema file whose choices are kept (kinds, keys...)."),
    ] = None,
    db_schema: DbSchemaOpt = None,
    sample_rows: Annotated[
        int, typer.Option(help="Rows sampled per table to infer kinds (bounded).", min=100)
    ] = 10_000,
    profile_only: Annotated[
        bool,
        typer.Option(
            "--profile-only",
            help="With -o: write a generation spec of aggregates only (no row-level values), for "
            "`synthdb generate --spec`; DP noise when the config's privacy.epsilon is set.",
        ),
    ] = False,
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="--profile-only: its privacy section (epsilon, delta).")
    ] = None,
    min_count: Annotated[
        int, typer.Option(help="--profile-only: categories with fewer sampled rows are suppressed.", min=1)
    ] = 10,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Reflect a database's tables, columns, keys and constraints, and infer each column's kind."""
    _setup_logging(verbose)
    from connectors.inspect import inspect_source
    from connectors.source import open_source
    from schemas.schema_file import dump_schema_yaml, load_schema, merge_overrides, save_schema

    try:
        edited = load_schema(schema_file) if schema_file else None
        if profile_only:
            from pipelines.spec import write_profile_spec
            from schemas.config import load_config
            from schemas.errors import ConfigError

            if output is None:
                raise ConfigError("--profile-only writes a spec file: give -o spec.yaml")
            written = write_profile_spec(
                source_url,
                output,
                config=load_config(config_file),
                db_schema=db_schema,
                edited=edited,
                sample_rows=sample_rows,
                min_count=min_count,
            )
            spent = written["epsilon"]
            dp = f", epsilon {spent:.4g} spent" if spent is not None else ", no differential privacy"
            _err.print(f"spec (aggregates only{dp}) written to {output}", highlight=False)
            return
        source = open_source(source_url, db_schema=db_schema, schema=edited)
        try:
            # with -o, columns of a type synthdb cannot write back are excluded in the file written for review,
            # and the command still fails (exit 2) naming them; without -o they are refused outright
            result = inspect_source(
                source, sample_rows=sample_rows, unsupported="exclude" if output is not None else "refuse"
            )
        finally:
            source.close()
        schema = merge_overrides(result.schema, edited) if edited is not None else result.schema
        schema.validate_all()
        if output is not None:
            save_schema(schema, output, proposals=result.proposals, profiles=result.profiles)
            _err.print(f"schema written to {output}", highlight=False)
            if result.unsupported:
                raise SchemaError(
                    result.unsupported,
                    header=(
                        f"The source has column types synthdb cannot write back as the same type; {output} "
                        "has them excluded (`excluded: true`): review it, then pass it with --schema"
                    ),
                )
        if as_json:
            payload = schema_to_json(schema)
            payload["proposed_virtual_foreign_keys"] = [
                {
                    "table": table,
                    "columns": list(fk.columns),
                    "references": {"table": fk.ref_table, "columns": list(fk.ref_columns)},
                    "reason": reason,
                }
                for table, fk, reason in result.proposals
            ]
            print(json.dumps(payload, indent=2, default=str))
        elif output is None:
            print(dump_schema_yaml(schema, proposals=result.proposals, profiles=result.profiles), end="")
    except SynthdbError as exc:
        _fail(exc)


@app.command(
    epilog="Example:  synthdb plan sqlite:///shop.sqlite --schema shop.yaml --json",
)
def plan(
    source_url: Annotated[
        str, typer.Argument(help="SQLAlchemy URL of the source, or a folder of Parquet/CSV files.")
    ],
    schema_file: Annotated[
        Path | None,
        typer.Option("--schema", help="Use this schema file (edited by you) instead of reflecting."),
    ] = None,
    db_schema: DbSchemaOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print the generation plan: topological generations, deferred foreign keys and context parents."""
    _setup_logging(verbose)
    from connectors.source import open_source
    from schemas.plan import build_plan
    from schemas.schema_file import load_schema, merge_overrides

    try:
        edited = load_schema(schema_file) if schema_file else None
        source = open_source(source_url, db_schema=db_schema, schema=edited)
        try:
            reflected = source.read_schema()
        finally:
            source.close()
        schema = merge_overrides(reflected, edited) if edited is not None else reflected
        schema.validate_all()
        the_plan = build_plan(schema)
        if as_json:
            print(json.dumps(the_plan.to_json(), indent=2))
        else:
            print(the_plan.render_tree())
    except SynthdbError as exc:
        _fail(exc)


@app.command(
    epilog="Example:  synthdb demo demo/nycflights13.sqlite --fraction 0.05",
)
def demo(
    path: Annotated[Path, typer.Argument(help="Where to write the demo SQLite database.")] = Path(
        "runs/demo/nycflights13.sqlite"
    ),
    fraction: Annotated[
        float, typer.Option(help="Share of flights to keep (parents are kept whole).", min=0.0001, max=1.0)
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the flights sample.")] = 0,
    verbose: VerboseOpt = False,
) -> None:
    """Build the bundled demo database: the real nycflights13 tables with declared primary and foreign keys."""
    _setup_logging(verbose)
    from connectors.demo import build_demo

    try:
        report = build_demo(path, fraction=fraction, seed=seed)
    except SynthdbError as exc:
        _fail(exc)
    _out.print(f"demo database written to {report.path}", highlight=False)
    for table, rows in report.rows.items():
        _out.print(f"  {table:<10} {rows:>9,} rows", highlight=False)
    for fk, count in report.orphans.items():
        _out.print(f"  orphaned references set to NULL: {fk}: {count:,}", highlight=False)
    for table, count in getattr(report, "duplicates_dropped", {}).items():
        if count:
            _out.print(f"  duplicate keys dropped: {table}: {count:,}", highlight=False)


DEMO_SOURCE = Path("runs/demo/nycflights13.sqlite")
DEMO_TARGET = Path("runs/demo/synthetic.sqlite")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  synthdb run      (the bundled demo: nycflights13 in, runs/demo/synthetic.sqlite out)\n\n"
        "  synthdb run --source postgresql://app@db/shop --target postgresql://app@test-db/shop --seed 7"
    ),
)
def run(
    source: Annotated[
        str | None, typer.Option(help="Source URL; default: the bundled demo database.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Target URL; default: runs/demo/synthetic.sqlite.")
    ] = None,
    config_file: ConfigOpt = None,
    schema_file: Annotated[Path | None, typer.Option("--schema", help="An edited schema file.")] = None,
    db_schema: DbSchemaOpt = None,
    seed: SeedOpt = None,
    scale: ScaleOpt = None,
    runs_dir: RunsDirOpt = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue a killed or failed run (its id, under --runs-dir), reusing every stage whose outputs are "
            "intact. Without --config, the run's recorded configuration is used.",
        ),
    ] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Generate a synthetic copy of SOURCE into TARGET: extract, train, generate, write, validate."""
    _setup_logging(verbose)
    from pipelines.run import run_pipeline
    from schemas.config import load_config

    try:
        overrides: dict[str, Any] = {
            "source.url": source,
            "target.url": target,
            "source.schema_file": str(schema_file) if schema_file else None,
            "source.db_schema": db_schema,
            "generation.seed": seed,
            "generation.scale": scale,
            "runs_dir": str(runs_dir) if runs_dir else None,
        }
        if resume is not None and config_file is None and all(
            v is None for k, v in overrides.items() if k != "runs_dir"
        ):
            from pipelines.resume import config_of_run

            config = config_of_run(load_config(None, overrides={"runs_dir": overrides["runs_dir"]}).runs_dir, resume)
            if runs_dir is not None:
                config.runs_dir = runs_dir
        else:
            config = load_config(config_file, overrides=overrides)
        if config.source.url is None:
            if not DEMO_SOURCE.exists():
                from connectors.demo import build_demo
                from pipelines.run import runs_dir_problems
                from schemas.errors import ConfigError

                for problem in runs_dir_problems(DEMO_SOURCE.parent):
                    raise ConfigError(f"the bundled demo: {problem.removeprefix('runs_dir: ')}")
                _err.print(f"building the bundled demo database at {DEMO_SOURCE}", highlight=False)
                build_demo(DEMO_SOURCE)
            config.source.url = f"sqlite:///{DEMO_SOURCE}"
            if config.target.url is None:
                DEMO_TARGET.parent.mkdir(parents=True, exist_ok=True)
                config.target.url = f"sqlite:///{DEMO_TARGET}"

        live = None if quiet else LiveProgress(_err)
        try:
            result = run_pipeline(config, progress=live.say if live else None, resume=resume, tracker=live)
        finally:  # the live display is gone before an error or the result is printed
            if live is not None:
                live.close()
    except SynthdbError as exc:
        _fail(exc)
    _print_result(result, quiet=quiet, as_json=as_json)


@app.command(
    epilog=(
        "Example:  synthdb generate --spec shop-spec.yaml --target sqlite:///synthetic.sqlite --seed 7\n\n"
        "No source: the spec (a schema file with a distributions: block, see README) is all there is. "
        "`synthdb inspect SOURCE --profile-only -o spec.yaml` writes one from a real database."
    ),
)
def generate(
    spec: Annotated[Path, typer.Option("--spec", help="The spec: schema plus declared distributions (YAML).")],
    target: Annotated[str, typer.Option(help="Target URL (a SQLAlchemy URL or a folder for Parquet).")],
    config_file: ConfigOpt = None,
    seed: SeedOpt = None,
    scale: ScaleOpt = None,
    runs_dir: RunsDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Generate a database from a spec alone (schema-only generation): no real data is read."""
    _setup_logging(verbose)
    from pipelines.spec import run_spec
    from schemas.config import load_config

    try:
        overrides: dict[str, Any] = {
            "target.url": target,
            "generation.seed": seed,
            "generation.scale": scale,
            "runs_dir": str(runs_dir) if runs_dir else None,
        }
        config = load_config(config_file, overrides=overrides)

        result = run_spec(spec, config, progress=_progress)
    except SynthdbError as exc:
        _fail(exc)
    _print_summary(result)
    _out.print("report: skipped (a spec run has no real data to compare with)", highlight=False)


def _progress(stage: str, message: str) -> None:
    """One progress line on standard error (what :meth:`LiveProgress.say` prints too, without a live display)."""
    LiveProgress.line(_err, stage, message)


def result_json(result: Any) -> dict[str, Any]:
    """A run's result for scripts (``synthdb run --json``): ids, paths, rows, times, verdicts, headline scores."""
    from connectors.sql.url import redact_url

    return {
        "run_id": result.run_id,
        "run_dir": str(result.run_dir),
        "target": redact_url(result.target_url),
        "seed": result.seed,
        "rows": {"real": result.real_rows, "synthetic": result.synth_rows},
        "stage_seconds": result.stage_seconds,
        "wall_seconds": result.wall_seconds,
        "validation": {"success": result.validation_success, "failures": result.validation_failures,
                       "profile_warnings": result.validation_warnings},
        "report": str(result.report_html) if result.report_html else None,
        "report_error": result.report_error,
        "headline": {k: v.get("score") for k, v in (result.report or {}).items()},
        "orphans": result.orphans,
    }


def _print_result(result: Any, *, quiet: bool, as_json: bool) -> None:
    if as_json:
        _out.print_json(json.dumps(result_json(result), default=str))
    elif quiet:
        from connectors.sql.url import redact_url

        _out.print(
            f"run {result.run_id}: {sum(result.synth_rows.values()):,} rows into {redact_url(result.target_url)}",
            highlight=False,
        )
    else:
        _print_summary(result)


def _print_summary(result: Any) -> None:
    from rich.table import Table as RichTable

    from connectors.sql.url import redact_url

    rows = RichTable(title="rows per table", show_edge=False)
    rows.add_column("table")
    rows.add_column("real", justify="right")
    rows.add_column("synthetic", justify="right")
    for name in sorted(set(result.real_rows) | set(result.synth_rows)):
        rows.add_row(name, f"{result.real_rows.get(name, 0):,}", f"{result.synth_rows.get(name, 0):,}")
    _out.print(rows)
    times = RichTable(title="seconds per stage", show_edge=False)
    times.add_column("stage")
    times.add_column("seconds", justify="right")
    for stage, seconds in result.stage_seconds.items():
        times.add_row(stage, f"{seconds:.1f}")
    times.add_row("sum of stages", f"{sum(result.stage_seconds.values()):.1f}")
    if result.wall_seconds is not None:
        times.add_row("wall clock (report beside write)", f"{result.wall_seconds:.1f}")
    _out.print(times)
    if result.validation_success is not None:
        verdict = "passed" if result.validation_success else "FAILED"
        _out.print(f"validation: {verdict} ({result.validation_warnings} profile warnings)", highlight=False)
    if result.data_docs:
        _out.print(f"data docs: {result.data_docs}", highlight=False)
    if result.report:
        from pipelines.stages.report import headline_lines

        _out.print("headline scores:", highlight=False)
        for line in headline_lines(result.report):
            _out.print(f"  {line}", highlight=False)
        _out.print(f"report: {result.report_html}", highlight=False)
    _out.print(f"target: {redact_url(result.target_url)}", highlight=False)
    if result.seed is not None:
        how = f" (drawn: generation.seed auto; rebuild with --seed {result.seed})" if result.seed_source == "auto" else ""
        _out.print(f"seed: {result.seed}{how}", highlight=False)
    _out.print(f"run directory: {result.run_dir}", highlight=False, soft_wrap=True)
    _out.print(f"run log: {result.run_dir / 'run.log'}", highlight=False, soft_wrap=True)


@app.command(
    epilog=(
        "Example:  synthdb report --real postgresql://app@db/shop --synth sqlite:///synthetic.sqlite -o report\n\n"
        "Exit codes: 0 report written (also with warnings, unless --fail-on-warn), 1 failed, 2 bad input."
    ),
)
def report(
    real: Annotated[
        str, typer.Option("--real", help="URL of the real database (or folder of Parquet/CSV files).")
    ],
    synth: Annotated[
        str, typer.Option("--synth", help="URL of the synthetic database, with the same tables.")
    ],
    schema_file: Annotated[
        Path | None,
        typer.Option("--schema", help="An edited schema file (kinds, keys); default: reflect --real."),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for report.html and report.json.")
    ] = Path("report"),
    holdout_share: Annotated[
        float,
        typer.Option(
            help="Share of real rows used as a pseudo-holdout for the privacy measures (0: no privacy).",
            min=0.0,
            max=0.9,
        ),
    ] = 0.1,
    max_rows: Annotated[
        int, typer.Option(help="Per table, read at most this many rows (a random sample beyond).", min=10)
    ] = 500_000,
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="Run configuration: its report section is used.")
    ] = None,
    db_schema: DbSchemaOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of every sample and classifier.")] = 0,
    fail_on_warn: Annotated[
        bool, typer.Option("--fail-on-warn", help="Exit 1 when a headline score is past its threshold.")
    ] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Score a synthetic database against the real one: fidelity, privacy, plots (any pair with the same keys)."""
    _setup_logging(verbose)
    from pipelines.stages.report import report_databases
    from schemas.config import load_config

    try:
        config = load_config(config_file)
        schema = None
        if schema_file is not None:
            from connectors.source import open_source
            from schemas.schema_file import load_schema, merge_overrides

            edited = load_schema(schema_file)
            source = open_source(real, db_schema=db_schema, schema=None)
            try:
                schema = merge_overrides(source.read_schema(), edited)
            finally:
                source.close()
        result = report_databases(
            real,
            synth,
            output,
            schema=schema,
            db_schema=db_schema,
            holdout_share=holdout_share,
            max_rows=max_rows,
            config=config.report,
            seed=seed,
        )
    except SynthdbError as exc:
        _fail(exc)
    if as_json:
        print(
            json.dumps(
                {"headline": result.headline, "report": str(result.html_path), "json": str(result.json_path)}
            )
        )
    else:
        from rich.table import Table as RichTable

        scores = RichTable(title="headline scores", show_edge=False)
        for column in ("score", "value", "threshold", "status"):
            scores.add_column(column, justify="left" if column in ("score", "status") else "right")
        for name, item in result.headline.items():
            value = "–" if item["score"] is None else f"{item['score']:.3f}"
            bound = ("≤ " if item["direction"] == "lower_is_better" else "≥ ") + f"{item['threshold']:.2f}"
            style = {"pass": "green", "warn": "bold yellow"}.get(item["status"], "dim")
            scores.add_row(name, value, bound, f"[{style}]{item['status']}[/]")
        _out.print(scores)
        _out.print(f"report: {result.html_path}", highlight=False)
        _out.print(f"json:   {result.json_path}", highlight=False)
    if fail_on_warn and result.warnings:
        _err.print(f"headline scores past their thresholds: {', '.join(result.warnings)}", highlight=False)
        raise typer.Exit(EXIT_FAILED)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  synthdb sample --run 20261201T220000Z-ab12cd --target sqlite:///uat.sqlite --scale 2 --seed 7\n\n"
        "  (a whole new database from the run's models: generate, write, validate and report run again, nothing is "
        "retrained and the source is not read; a new run directory records it)\n\n"
        "  synthdb sample --run 20261201T220000Z-ab12cd --table planes -n 1000 --where engine=Reciprocating "
        "-o planes.parquet\n\n"
        "  (rows of one table, keys left out, into a Parquet file)"
    ),
)
def sample(
    run: Annotated[str, typer.Option(help="A run directory, or a run id under --runs-dir.")],
    target: Annotated[
        str | None,
        typer.Option(help="Whole-database mode: the target URL to write a new synthetic database into."),
    ] = None,
    scale: ScaleOpt = None,
    table: Annotated[str | None, typer.Option(help="One-table mode: the table to sample.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="One-table mode: the Parquet file to write.")
    ] = None,
    rows: Annotated[int, typer.Option("-n", "--rows", min=1, help="One-table mode: rows to sample.")] = 1000,
    where: Annotated[
        list[str] | None,
        typer.Option(help="One-table mode: column=value to fix (repeatable); the rest follows the model."),
    ] = None,
    seed: SeedOpt = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories are.")] = Path("runs"),
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Sample again from a finished run's trained models (nothing is retrained): a whole database, or one table."""
    _setup_logging(verbose)
    from schemas.errors import ConfigError

    try:
        if (target is None) == (table is None):
            raise ConfigError(
                "sample: give --target URL (a whole new database from the run's models) or --table NAME with "
                "--output FILE (rows of one table), not both"
                if target is not None
                else "sample: give --target URL (a whole new database from the run's models) or --table NAME with "
                "--output FILE (rows of one table)"
            )
        if table is not None:
            if output is None:
                raise ConfigError(f"sample --table {table}: give --output FILE, the Parquet file to write")
            if scale is not None:
                raise ConfigError("sample --table: --scale applies to a whole database (--target); give -n ROWS")
            _sample_table(run, table, output, rows, where or [], seed, runs_dir)
            return
        if where or output is not None:
            raise ConfigError("sample --target: --where and --output apply to one table (--table); leave them out")
        from pipelines.from_run import config_from_run, load_origin
        from pipelines.run import run_pipeline

        assert target is not None
        origin = load_origin(run, runs_dir)
        config = config_from_run(origin, target=target, seed=seed, scale=scale, runs_dir=runs_dir)
        live = None if quiet else LiveProgress(_err)
        try:
            result = run_pipeline(config, progress=live.say if live else None, origin=origin, tracker=live)
        finally:  # the live display is gone before an error or the result is printed
            if live is not None:
                live.close()
    except SynthdbError as exc:
        _fail(exc)
    _print_result(result, quiet=quiet, as_json=as_json)


def _sample_table(
    run: str, table: str, output: Path, rows: int, where: list[str], seed: str | None, runs_dir: Path
) -> None:
    from pipelines.sample import resolve_run, sample_table, write_parquet_atomically
    from schemas.errors import ConfigError

    try:
        number = int(seed) if seed is not None else 0
    except ValueError:
        raise ConfigError(f"sample --table: --seed must be a whole number, got {seed!r}") from None
    fixed = {}
    for item in where:
        if "=" not in item:
            raise ConfigError(f"--where {item!r} must be written column=value")
        column, value = item.split("=", 1)
        fixed[column.strip()] = value.strip()
    out, found = sample_table(resolve_run(run, runs_dir), table, rows, where=fixed, seed=number)
    write_parquet_atomically(out, output)
    short = f" (only {found:,} of {rows:,}: the model gives {fixed} too rarely)" if found < rows else ""
    _out.print(f"{found:,} rows of {table} written to {output}{short}", highlight=False)


@app.command(
    epilog=(
        "Example:  synthdb clean --target postgresql://app@test-db/shop --runs-dir runs\n\n"
        "Only what a dead process left is removed; a live run's staging area and files are never touched."
    ),
)
def clean(
    target: Annotated[
        str | None, typer.Option(help="Target URL whose staging areas left by killed runs are removed.")
    ] = None,
    runs_dir: Annotated[
        Path | None,
        typer.Option(help="Runs folder: killed runs are marked 'killed' and their real-data Parquet deleted."),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Remove what killed runs left: staging areas, Spark temp folders, and real-data copies of killed runs."""
    _setup_logging(verbose)
    from pipelines.clean import clean as run_clean

    try:
        result = run_clean(target, runs_dir)
    except SynthdbError as exc:
        _fail(exc)
    for name in result.staging:
        _out.print(f"removed staging area {name}", highlight=False)
    for name in result.temp_folders:
        _out.print(f"removed temp folder {name}", highlight=False)
    for run_id in result.killed_runs:
        _out.print(f"run {run_id}: marked killed, real-data copies deleted", highlight=False)
    if result.freed_bytes:
        _out.print(f"{result.freed_bytes / 1e6:.1f} MB of real-data copies deleted", highlight=False)
    if not (result.staging or result.temp_folders or result.killed_runs):
        _out.print("nothing to clean", highlight=False)


@app.command(
    epilog=(
        "Example:  synthdb runs --runs-dir runs --limit 10\n\n"
        "A run shown as killed died without ending (`synthdb clean` marks it; `synthdb run --resume ID` continues it)."
    ),
)
def runs(
    runs_dir: Annotated[Path, typer.Option(help="Where run directories are.")] = Path("runs"),
    limit: Annotated[int | None, typer.Option(min=1, help="Show only the newest N runs.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List past runs, newest first: status, rows, time and headline scores (from each run's manifest and report)."""
    from rich.table import Table as RichTable

    from pipelines.runs import list_runs

    found = list_runs(runs_dir, limit=limit)
    if as_json:
        _out.print_json(json.dumps([r.to_json() for r in found]))
        return
    if not found:
        _out.print(f"no runs under {runs_dir}", highlight=False)
        return

    def score(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    table = RichTable(title=f"runs under {runs_dir}", show_edge=False)
    table.add_column("run", no_wrap=True, min_width=24)
    table.add_column("status", no_wrap=True, min_width=max(len(r.status) + 13 * bool(r.resumed) for r in found))
    for name, width in (("rows", 9), ("seconds", 7), ("overall", 7), ("dcr", 5), ("mia", 5), ("warns", 5)):
        table.add_column(name, justify="right", no_wrap=True, min_width=width)
    table.add_column("target", overflow="ellipsis", no_wrap=True, max_width=48)
    for r in found:
        status = r.status + (f", resumed {r.resumed}x" if r.resumed else "")
        table.add_row(
            r.run_id, status, "–" if r.synthetic_rows is None else f"{r.synthetic_rows:,}",
            "–" if r.seconds is None else f"{r.seconds:.1f}", score(r.headline.get("overall")),
            score(r.headline.get("dcr_share")), score(r.headline.get("mia_auc")), str(len(r.warnings)),
            r.target or "–",
        )
    _out.print(table)
    warned = [r for r in found if r.warnings]
    if warned:
        _out.print("warns: headline scores past their thresholds (`--json` names them; each run's report says why)",
                   highlight=False)


def main() -> None:
    """Entry point of the ``synthdb`` console script."""
    try:
        app()
    except SynthdbError as exc:  # pragma: no cover - commands catch their own; this is the last net
        _err.print(f"error: {exc.message}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
