"""``synthdb sample``: rows of one table from a finished run's model store, optionally under fixed values.

Nothing is retrained and no source is read: the run directory's model store (``models/<table>``) holds what
training learned. A child table is conditioned on rows of its context parent drawn from the run's *synthetic*
parent rows. Keys are left out (a sample is not a database: its rows belong to no parent), and PII columns are
faked as in a run.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.errors import ConfigError
from schemas.kinds import Kind
from schemas.policy import Role


def write_parquet_atomically(table: pa.Table, path: Path) -> None:
    """Write through a temporary file beside ``path`` and a rename: an interrupted write leaves no half file."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def resolve_run(run: str, runs_dir: Path) -> Path:
    """A run directory given as a path or as a run id under ``runs_dir``."""
    for candidate in (Path(run), Path(runs_dir) / run):
        if (candidate / "manifest.json").exists():
            return candidate
    raise ConfigError(f"run {run!r} not found (neither a run directory nor a run id under {runs_dir}); see `ls {runs_dir}`")


def sample_table(
    run_dir: Path, table: str, n: int, *, where: dict[str, str], seed: int, locale: str = "en_US"
) -> tuple[pa.Table, int]:
    """``n`` rows of ``table`` (learned and PII columns), those in ``where`` fixed; returns rows and rows found."""
    from pipelines.stages.generate import list_parts
    from pipelines.stages.train import CTX_PREFIX, load_artifacts
    from synth_engine import derive_seed
    from synth_engine.conditions import sample_where
    from synth_engine.pii import fake_column, fake_text

    models = run_dir / "models"
    if not (models / table).exists():
        known = ", ".join(sorted(p.name for p in models.iterdir())) if models.exists() else "none"
        raise ConfigError(f"the run has no model of table {table!r} (tables: {known})")
    art = load_artifacts(run_dir, table)
    if art.kept or art.model is None:
        raise ConfigError(f"table {table!r} has no learned columns in this run (it is kept or all keys); nothing to sample")
    learned = set(art.roles.learned_kinds)
    unknown = sorted(set(where) - learned)
    if unknown:
        raise ConfigError(
            f"--where: {', '.join(repr(c) for c in unknown)} not learned columns of {table!r} "
            f"(learned: {', '.join(sorted(learned))})"
        )
    context = None
    if art.roles.context is not None and art.context_columns and getattr(art.model, "context_marginals_", None):
        parts = list_parts(run_dir, art.roles.context.parent)
        if not parts:
            raise ConfigError(f"the run has no synthetic rows of {art.roles.context.parent!r} to condition {table!r} on")
        parent = pa.concat_tables([pq.read_table(p, columns=art.context_columns) for p in parts[:8]])
        context = pa.table({CTX_PREFIX + c: parent.column(c) for c in art.context_columns})
    rows, found = sample_where(art.model, where, n=n, context=context, seed=derive_seed(seed, table, "sample"))
    for col in art.roles.columns(Role.PII):
        kind = Kind(art.pii_kinds[col])
        col_seed = derive_seed(seed, table, col, "sample")
        fmt = art.pii_formats.get(col)
        values = fake_text(found, seed=col_seed, locale=locale, fmt=fmt) if kind is Kind.TEXT else fake_column(
            kind, found, seed=col_seed, locale=locale, fmt=fmt
        )
        rows = rows.append_column(col, values)
    return rows, found
