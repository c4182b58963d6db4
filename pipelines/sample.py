"""``synthdb sample``: rows of one table from a finished run's model store, optionally under fixed values.

Nothing is retrained and no source is read: the run directory's model store (``models/<table>``) holds what
training learned. A child table is conditioned on rows of its context parent drawn from the run's *synthetic*
parent rows. Keys are left out (a sample is not a database: its rows belong to no parent), and PII columns are
faked as in a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    from pipelines.stages.train import CTX_PREFIX, KEPT_PREFIX, load_artifacts
    from synth_engine import derive_seed
    from synth_engine.conditions import sample_where
    from synth_engine.pii import fake_column, fake_text

    from pipelines.workspace import Workspace

    if not Workspace(run_dir).models(table).exists():
        models = Workspace(run_dir).area("models")
        known = ", ".join(sorted(p.name for p in models.iterdir())) if models.exists() else "none"
        raise ConfigError(f"the run has no model of table {table!r} (tables: {known})")
    art = load_artifacts(run_dir, table)
    if art.kept or art.model is None:
        raise ConfigError(f"table {table!r} has no learned columns in this run (it is kept or all keys); nothing to sample")
    learned = set(art.roles.learned_kinds)
    kept = set(art.kept_columns)
    unknown = sorted(set(where) - learned - kept)
    if unknown:
        raise ConfigError(
            f"--where: {', '.join(repr(c) for c in unknown)} not learned or kept columns of {table!r} "
            f"(learned: {', '.join(sorted(learned))}; kept: {', '.join(sorted(kept)) or 'none'})"
        )
    context = _context_pool(run_dir, art, {c: v for c, v in where.items() if c in kept}, table)
    model_where = {c: v for c, v in where.items() if c in learned}
    rows, found = sample_where(art.model, model_where, n=n, context=context, seed=derive_seed(seed, table, "sample"))
    if context is not None:  # the parent's columns go; the kept columns stay, under their own names
        rows = rows.drop_columns([c for c in rows.column_names if c.startswith(CTX_PREFIX)])
        rows = rows.rename_columns([c.removeprefix(KEPT_PREFIX) for c in rows.column_names])
    for col in art.roles.columns(Role.PII):
        kind = Kind(art.pii_kinds[col])
        col_seed = derive_seed(seed, table, col, "sample")
        fmt = art.pii_formats.get(col)
        values = fake_text(found, seed=col_seed, locale=locale, fmt=fmt) if kind is Kind.TEXT else fake_column(
            kind, found, seed=col_seed, locale=locale, fmt=fmt
        )
        rows = rows.append_column(col, values)
    return rows, found


_POOL_PARTS = 8  # synthetic parts read for the pool of contexts a sample draws from


def _context_pool(run_dir: Path, art: Any, kept_where: dict[str, str], table: str) -> pa.Table | None:
    """What the model is conditioned on, as a pool to draw from: the run's synthetic rows of the table (their
    kept columns, which hold real values, filtered by ``kept_where``) with their context parents' columns; or,
    without kept columns, rows of the synthetic context parent."""
    import polars as pl

    from pipelines.workspace import Workspace
    from pipelines.stages.train import CTX_PREFIX, KEPT_PREFIX

    marginals = {m.name for m in getattr(art.model, "context_marginals_", [])}
    if not marginals:
        return None
    ctx = art.roles.context
    with_parent = ctx is not None and art.context_columns and any(m.startswith(CTX_PREFIX) for m in marginals)
    parent = None
    if with_parent:
        parts = Workspace(run_dir).parts(ctx.parent)
        if not parts:
            raise ConfigError(f"the run has no synthetic rows of {ctx.parent!r} to condition {table!r} on")
        cols = list(dict.fromkeys([*ctx.ref_columns, *art.context_columns]))
        parent = pl.concat([pl.read_parquet(p, columns=cols) for p in parts[:_POOL_PARTS]])
        parent = parent.select(
            [pl.col(r).alias(c) for c, r in zip(ctx.columns, ctx.ref_columns, strict=True)]
            + [pl.col(c).alias(CTX_PREFIX + c) for c in art.context_columns]
        )
    if not art.kept_columns:
        return None if parent is None else parent.drop(list(ctx.columns)).to_arrow()
    own = Workspace(run_dir).parts(table)
    if not own:
        raise ConfigError(f"the run has no synthetic rows of {table!r} to take its kept columns' values from")
    key_cols = list(ctx.columns) if parent is not None else []
    pool = pl.concat([pl.read_parquet(p, columns=[*key_cols, *art.kept_columns]) for p in own[:_POOL_PARTS]])
    for column, value in kept_where.items():
        pool = pool.filter(pl.col(column).cast(pl.String) == value)
    if parent is not None:
        pool = pool.join(parent, on=key_cols, how="inner").drop(key_cols)
    if pool.height == 0:
        shown = ", ".join(f"{c}={v}" for c, v in kept_where.items())
        raise ConfigError(f"--where: no row of {table!r} in this run has the kept value(s) {shown}")
    return pool.rename({c: KEPT_PREFIX + c for c in art.kept_columns}).to_arrow()
