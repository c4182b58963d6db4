"""Inspect a source: reflect its schema, profile a bounded sample of each table, infer kinds, propose virtual keys.

This is the first stage of a run and the body of ``synthdb inspect``. Its cost is bounded by ``sample_rows`` per
table (plus, for proposed foreign keys, the key column of parents up to ``max_parent_keys`` rows), not by the size
of the database. The result is written as the editable schema file by :func:`schemas.schema_file.save_schema`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

from connectors.profile import profile_table
from connectors.source import Source
from schemas.errors import ConnectorError, SchemaError
from schemas.inference import apply_inference, propose_virtual_foreign_keys, virtual_fk_candidates
from schemas.model import DatabaseSchema, ForeignKey, Table
from schemas.profile import TableProfile

logger = logging.getLogger(__name__)


@dataclass
class InspectResult:
    """What inspection found.

    Attributes:
        schema: the reflected schema with row counts, and kinds inferred (user-set kinds kept).
        profiles: per-table profiles of the samples, keyed by table name.
        proposals: proposed virtual foreign keys: (child table, key with ``virtual=True``, reason).
        warnings: tables that could not be sampled, and why (their kinds come from types and names alone).
    """

    schema: DatabaseSchema
    profiles: dict[str, TableProfile]
    proposals: list[tuple[str, ForeignKey, str]]
    warnings: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    """Columns of a type synthdb cannot write back, excluded (``unsupported="exclude"``), one message each."""


def inspect_source(
    source: Source,
    *,
    sample_rows: int = 10_000,
    seed: int = 0,
    max_parent_keys: int = 1_000_000,
    unsupported: Literal["refuse", "exclude"] = "refuse",
) -> InspectResult:
    """Reflect, sample, profile, infer kinds and propose virtual foreign keys.

    Args:
        source: an open source.
        sample_rows: rows sampled per table for profiling (the bound on the work per table).
        seed: the sampling seed, so that inspection is repeatable.
        max_parent_keys: a candidate parent table with at most this many rows has its whole primary-key column
            read, so that a proposed key is checked against every parent key rather than a sample of them.
        unsupported: columns of a type synthdb cannot write back as the same type: ``"refuse"`` raises one
            :class:`SchemaError` naming them all; ``"exclude"`` marks them ``excluded`` (so that a schema file can
            be written for the user to review) and lists them in :attr:`InspectResult.unsupported`.

    Returns:
        The inferred schema, the profiles and the proposals.
    """
    reflected = source.read_schema()
    problems = unsupported_type_problems(reflected)
    if problems and unsupported == "refuse":
        refuse_unsupported_types(reflected)
    if problems:
        reflected = _exclude_unsupported(reflected)
    active = reflected.active_tables
    logger.info("inspecting %d tables (%d excluded)", len(active), len(reflected.tables) - len(active))
    samples: dict[str, pa.Table] = {}
    profiles: dict[str, TableProfile] = {}
    warnings: list[str] = []
    tables: list[Table] = []
    for i, t in enumerate(reflected.tables, start=1):
        if t.excluded:
            tables.append(t)
            continue
        started = time.perf_counter()
        try:
            sample = source.sample_table(t.name, rows=sample_rows, seed=seed)
            row_count = _row_count(source, t, sample, sample_rows)
        except ConnectorError as exc:
            # One unreadable table should not stop the others; its kinds still come from types and names.
            warnings.append(
                f"table {t.name!r} could not be sampled, so its kinds come from types only: {exc}"
            )
            logger.warning("%s", warnings[-1])
            tables.append(t)
            continue
        samples[t.name] = sample
        profiles[t.name] = profile_table(sample, name=t.name, row_count=row_count)
        tables.append(t.model_copy(update={"row_count": row_count}))
        logger.info(
            "[%d/%d] %s: %d rows, profiled %d sampled rows in %.2fs",
            i,
            len(reflected.tables),
            t.name,
            row_count,
            sample.num_rows,
            time.perf_counter() - started,
        )
    schema = apply_inference(reflected.model_copy(update={"tables": tables}), profiles)
    parent_keys = _read_parent_keys(source, schema, samples, max_parent_keys)
    proposals = propose_virtual_foreign_keys(schema, samples, parent_keys=parent_keys)
    logger.info(
        "inspection done: %d tables profiled, %d virtual foreign keys proposed", len(profiles), len(proposals)
    )
    return InspectResult(
        schema=schema, profiles=profiles, proposals=proposals, warnings=warnings, unsupported=problems
    )


def unsupported_type_problems(schema: DatabaseSchema) -> list[str]:
    """One message per active column whose source type synthdb cannot round-trip (see the refusal below)."""
    from connectors.sql.reflect import UNSUPPORTED_REASON

    return [
        f"table {t.name!r}, column {c.name!r}: type {c.native_type or c.type} has no synthdb counterpart, so it "
        "cannot be written back as the same type; set `excluded: true` on the column, or `type: TEXT` to treat "
        "it as text, in the schema file"
        for t in schema.active_tables
        for c in t.active_columns
        if (c.kind_reason or "").startswith(UNSUPPORTED_REASON)
    ]


def _exclude_unsupported(schema: DatabaseSchema) -> DatabaseSchema:
    from connectors.sql.reflect import UNSUPPORTED_REASON

    tables = []
    for t in schema.tables:
        columns = [
            c.model_copy(update={"excluded": True})
            if (c.kind_reason or "").startswith(UNSUPPORTED_REASON)
            else c
            for c in t.columns
        ]
        tables.append(t.model_copy(update={"columns": columns}))
    return schema.model_copy(update={"tables": tables})


def refuse_unsupported_types(schema: DatabaseSchema) -> None:
    """Refuse every active column whose source type synthdb cannot round-trip, all of them in one error.

    Reflection marks such a column (``kind_reason`` starting with
    :data:`connectors.sql.reflect.UNSUPPORTED_REASON`) instead of turning it into text behind the user's back. A
    schema file that excludes the column, or gives it a type (the user's choice), lifts the refusal.

    Raises:
        SchemaError: naming each table, column and type, and the schema-file settings that fix it (exit code 2).
    """
    problems = unsupported_type_problems(schema)
    if problems:
        raise SchemaError(
            problems,
            header="The source has column types synthdb cannot write back as the same type",
        )


def _row_count(source: Source, t: Table, sample: pa.Table, sample_rows: int) -> int:
    """The table's row count: exact when the sample holds every row, else the reflected figure when plausible."""
    if sample.num_rows < sample_rows:
        return int(sample.num_rows)  # the sample is the whole table
    if t.row_count is None or t.row_count < sample.num_rows:
        # No figure, or a catalog estimate that is plainly stale (PostgreSQL reports -1 before ANALYZE).
        return int(source.count_rows(t.name))
    return t.row_count


def _read_parent_keys(
    source: Source, schema: DatabaseSchema, samples: dict[str, pa.Table], max_parent_keys: int
) -> dict[str, pa.ChunkedArray]:
    """Every key of each candidate parent that is small enough and not already wholly in its sample."""
    keys: dict[str, pa.ChunkedArray] = {}
    wanted = {(c.parent, c.parent_column) for c in virtual_fk_candidates(schema)}
    for parent, column in sorted(wanted):
        t = schema.table(parent)
        sample = samples.get(parent)
        rows = t.row_count or 0
        if sample is None or sample.num_rows >= rows or rows > max_parent_keys:
            continue
        batches = list(source.read_table(parent, columns=[column]))
        if batches:
            keys[parent] = pa.Table.from_batches(batches).column(0)
            logger.info(
                "read %d keys of %s.%s to check proposed foreign keys", len(keys[parent]), parent, column
            )
    return keys
