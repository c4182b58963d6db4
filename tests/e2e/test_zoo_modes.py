"""The generation modes on every zoo database (real Ray, real Spark, into SQLite), with every key valid.

Per zoo database, ONE run combines the modes its schema allows, chosen generically from the inspected schema
(never by table name):

- ``tables.mode.<t>: keep``: the smallest lookup table (:func:`schemas.inference.lookup_tables`): its real rows
  are copied row for row;
- ``tables.mode.<t>: subset`` with ``generation.tables.<t>.share: 0.5``: the largest other lookup table (two rows
  at least), when there is one: a subset of the real rows, every foreign key into it resolving;
- ``generation.tables.<root>.share: 0.5`` on a synthesized root table (one with children, where there is one),
  and ``generation.tables.<t>.scale: 2`` on a synthesized child table with a key of its own;
- ``tables.columns.<t>.<c>.mode: keep`` on a learned, non-key, non-PII column of another synthesized root table
  (generated at its real size: its values are the real column's, as a multiset);
- ``generation.rebalance`` of a learned categorical column of a synthesized table: its two most frequent real
  values at 0.5 / 0.5 (the reached share checked within 0.1 where the table has 200 rows or more);
- ``generation.seed: auto``: the manifest records the drawn seed.

Then SQL on the target: no duplicate primary or unique key and no orphaned foreign key (``zoo_violations``), every
table non-empty, and the per-mode checks above. A mode the schema gives no candidate for is left out of that
database's run, and the choices are named in every assertion message.

Schema-only generation runs once per database too: ``synthdb inspect --profile-only -o spec.yaml`` on the zoo
source, then ``synthdb generate --spec``; it exits 0 and every key is valid.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner
from zoo import ZOO, ZooDatabase
from zoo.checks import row_counts, zoo_violations

from connectors.inspect import inspect_source
from connectors.source import open_source
from pipelines.cli import app
from pipelines.run import run_pipeline
from schemas.config import load_config
from schemas.inference import lookup_tables
from schemas.kinds import Kind
from schemas.model import DatabaseSchema, Table
from schemas.plan import Plan, build_plan

pytestmark = pytest.mark.usefixtures("ray_session")

SEED = 5  # the zoo's data; the combined run draws its own (generation.seed: auto)
SHARE = 0.5
SCALE = 2.0
SCALE_LOW, SCALE_HIGH = 1.5, 2.5  # children per parent, over few parents (four regions) in some databases
REBALANCE_TOLERANCE = 0.10
REBALANCE_MIN_ROWS = 200
#: a kept column's kinds, in order of preference
KEPT_COLUMN_KINDS = (Kind.CATEGORICAL, Kind.NUMERIC, Kind.DATE)
#: a rebalanced column has this many distinct real values at most (a handful of categories, not labels)
REBALANCE_MAX_VALUES = 20


# --- the choice of modes, from the inspected schema ---------------------------------------------------------------


@dataclass
class Modes:
    """What one database's combined run sets, and why a mode is missing."""

    kept: list[str] = field(default_factory=list)
    subset: str | None = None
    share_root: str | None = None
    scaled: str | None = None
    scaled_parent: str | None = None
    kept_column: tuple[str, str] | None = None
    rebalance: tuple[str, str, dict[str, float]] | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    def overrides(self) -> dict[str, Any]:
        mode = {t: "keep" for t in self.kept}
        tables: dict[str, dict[str, float]] = {}
        if self.subset is not None:
            mode[self.subset] = "subset"
            tables[self.subset] = {"share": SHARE}
        if self.share_root is not None:
            tables[self.share_root] = {"share": SHARE}
        if self.scaled is not None:
            tables[self.scaled] = {"scale": SCALE}
        out: dict[str, Any] = {"tables.mode": mode, "generation.tables": tables, "generation.seed": "auto"}
        if self.kept_column is not None:
            out["tables.columns"] = {".".join(self.kept_column): {"mode": "keep"}}
        if self.rebalance is not None:
            table, column, shares = self.rebalance
            out["generation.rebalance"] = {f"{table}.{column}": shares}
        return out

    def describe(self) -> str:
        parts = [
            f"keep={self.kept}",
            f"subset={self.subset}",
            f"share_root={self.share_root}",
            f"scale2={self.scaled}",
            f"kept_column={'.'.join(self.kept_column) if self.kept_column else None}",
            f"rebalance={f'{self.rebalance[0]}.{self.rebalance[1]}: {self.rebalance[2]}' if self.rebalance else None}",
        ]
        parts += [f"no {mode}: {why}" for mode, why in self.skipped.items()]
        return "; ".join(parts)


def _inspect(url: str) -> DatabaseSchema:
    """The source's schema as a run inspects it (kinds inferred, row counts)."""
    source = open_source(url)
    try:
        return inspect_source(source).schema
    finally:
        source.close()


def _has_context_children(plan: Plan, table: str) -> bool:
    return any(choice.parent == table for choice in plan.context.values())


def _kept_column_candidate(t: Table) -> str | None:
    """A learned column (categorical, numeric or date), not a key member, not PII."""
    for kind in KEPT_COLUMN_KINDS:
        for c in t.active_columns:
            if c.kind is kind and c.name not in t.key_columns and not c.kind.is_pii:
                return c.name
    return None


def _scale_tier(t: Table) -> int | None:
    """How safely a child table takes twice its children per parent: 0 for a primary key of its own columns
    (no unique key), 1 for a primary key with a member of its own (a date beside the parent's key), None when
    every key member is a foreign key (a link table: twice the links may not exist)."""
    fk_cols = {c for fk in t.foreign_keys for c in fk.columns}
    if t.primary_key is None:
        return None
    own = set(t.primary_key.columns) - fk_cols
    if own == set(t.primary_key.columns) and not t.unique:
        return 0
    return 1 if own else None


def _top_values(url: str, table: str, column: str) -> list[tuple[Any, int]]:
    engine = sa.create_engine(url)
    q = engine.dialect.identifier_preparer
    sql = (
        f"SELECT {q.quote(column)}, count(*) AS n FROM {q.quote(table)} WHERE {q.quote(column)} IS NOT NULL "
        f"GROUP BY {q.quote(column)} ORDER BY n DESC"
    )
    try:
        with engine.connect() as conn:
            return [(v, int(n)) for v, n in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def choose_modes(schema: DatabaseSchema, url: str) -> Modes:
    """One setting per mode where the schema has a candidate (see the module notes)."""
    plan = build_plan(schema)
    modes = Modes()
    tables = {t.name: t for t in schema.active_tables}
    rows = {name: t.row_count or 0 for name, t in tables.items()}
    lookups = sorted(lookup_tables(schema), key=lambda n: (rows[n], n))
    # keep: the smallest lookup table whose every referenced table is kept too (a lookup references nothing)
    for name in lookups:
        if all(fk.ref_table in modes.kept or fk.ref_table == name for fk in tables[name].foreign_keys):
            modes.kept = [name]
            break
    else:
        modes.skipped["keep"] = "no lookup table"
    # subset: the largest other lookup table of two rows or more, referencing kept tables only, not referenced
    # by a kept one
    kept_refs = {fk.ref_table for k in modes.kept for fk in tables[k].foreign_keys}
    for name in reversed(lookups):
        if name in modes.kept or rows[name] < 2 or name in kept_refs:
            continue
        if all(fk.ref_table in modes.kept or fk.ref_table == name for fk in tables[name].foreign_keys):
            modes.subset = name
            break
    else:
        modes.skipped["subset"] = f"no second lookup table (lookups: {lookups})"
    copied = set(modes.kept) | ({modes.subset} if modes.subset else set())
    roots = [n for n in plan.order if n not in plan.context and n not in copied]
    # the share goes to a root with children (they follow it), the kept column to another root with a learned
    # column; with a single synthesized root the kept column has it
    by_size = sorted(roots, key=lambda n: (not _has_context_children(plan, n), -rows[n], n))
    with_column = [n for n in sorted(roots, key=lambda n: (-rows[n], n)) if _kept_column_candidate(tables[n])]
    if len(roots) >= 2 or not with_column:
        modes.share_root = by_size[0] if by_size else None
        with_column = [n for n in with_column if n != modes.share_root]
    if with_column:
        table = with_column[0]
        column = _kept_column_candidate(tables[table])
        assert column is not None
        modes.kept_column = (table, column)
    else:
        modes.skipped["kept column"] = f"no other synthesized root with a learned column (roots: {roots})"
    if modes.share_root is None:
        modes.skipped["root share"] = f"no synthesized root left for it (roots: {roots})"
    # scale 2: the smallest synthesized child table with a key of its own (else a key member of its own)
    tiers = {n: _scale_tier(tables[n]) for n in plan.order if n in plan.context and n not in copied}
    children = sorted((n for n, tier in tiers.items() if tier is not None), key=lambda n: (tiers[n], rows[n], n))
    if children:
        modes.scaled = children[0]
        modes.scaled_parent = plan.context[children[0]].parent
    else:
        modes.skipped["scale"] = "every synthesized child table is keyed by its foreign keys alone"
    # rebalance: in the largest synthesized table (not the kept column's) with a learned categorical column of a
    # handful of values, the one with the fewest: its two most frequent values at 0.5 / 0.5. Root tables first:
    # a child's rows are drawn under their parent's, so a value its parent makes unlikely (an invoice's billing
    # country under its customer's country) is missed by that row, and the wanted share is not reached
    kept_table = modes.kept_column[0] if modes.kept_column else None
    for name in sorted(tables, key=lambda n: (n in plan.context, -rows[n], n)):
        if name in copied or name == kept_table:
            continue
        t = tables[name]
        found = [
            (len(top), c.name, top)
            for c in t.active_columns
            if c.kind is Kind.CATEGORICAL and c.name not in t.key_columns
            for top in [_top_values(url, name, c.name)]
            if 2 <= len(top) <= REBALANCE_MAX_VALUES
        ]
        if found:
            _, column, top = min(found, key=lambda f: (f[0], f[1]))
            modes.rebalance = (name, column, {str(top[0][0]): 0.5, str(top[1][0]): 0.5})
            break
    else:
        modes.skipped["rebalance"] = "no learned categorical column of a few values in a synthesized table"
    return modes


# --- SQL on source and target --------------------------------------------------------------------------------------


def _normalize(value: object) -> object:
    """One spelling per value across writers: numbers as rounded floats, timestamps as ISO text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return round(float(value), 6)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return value


def _select(url: str, table: str, columns: Sequence[str] | None = None) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    q = engine.dialect.identifier_preparer
    cols = ", ".join(q.quote(c) for c in columns) if columns else "*"
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT {cols} FROM {q.quote(table)}")).all()
    finally:
        engine.dispose()
    return [tuple(_normalize(v) for v in r) for r in rows]


def _column_names(db: ZooDatabase, table: str) -> list[str]:
    return [c.name for c in db.metadata().tables[table].columns]


def _value_shares(url: str, table: str, column: str) -> tuple[dict[str, float], int]:
    """Each value's share of the column's rows, values as text (as ``generation.rebalance`` names them)."""
    values = [str(r[0]) for r in _raw(url, table, column)]  # NULL as 'None': a share of its own
    n = len(values)
    return {v: c / n for v, c in Counter(values).items()}, n


def _raw(url: str, table: str, column: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    q = engine.dialect.identifier_preparer
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT {q.quote(column)} FROM {q.quote(table)}")).all())
    finally:
        engine.dispose()


def _mode_problems(db: ZooDatabase, modes: Modes, source: str, target: str, result: Any) -> list[str]:
    problems: list[str] = []
    real = row_counts(source, db.tables)
    synth = row_counts(target, db.tables)
    problems += [f"{t} is empty (real: {real[t]} rows)" for t, n in synth.items() if n == 0]
    for table in modes.kept:
        cols = _column_names(db, table)
        got, want = sorted(_select(target, table, cols), key=repr), sorted(_select(source, table, cols), key=repr)
        if got != want:
            extra = sorted(set(got) - set(want), key=repr)[:3]
            missing = sorted(set(want) - set(got), key=repr)[:3]
            problems.append(
                f"kept {table}: {len(got)} rows vs {len(want)} real; not real: {extra}; real, missing: {missing}"
            )
    if modes.subset is not None:
        table = modes.subset
        cols = _column_names(db, table)
        synth_rows, real_rows = Counter(_select(target, table, cols)), Counter(_select(source, table, cols))
        foreign = list((synth_rows - real_rows).elements())
        if foreign:
            problems.append(f"subset {table}: {len(foreign)} row(s) not among the real rows, e.g. {foreign[:3]}")
        if not 0 < synth[table] < real[table]:
            problems.append(f"subset {table}: {synth[table]} rows of {real[table]} real (share {SHARE})")
        into = [fk for fk in db.foreign_keys if fk[2] == table]
        orphans = zoo_violations(target, db).orphaned_foreign_keys
        for child, cols_, parent, _ in into:
            n = orphans.get(f"{child}({', '.join(cols_)}) -> {parent}", 0)
            if n:
                problems.append(f"subset {table}: {n} {child} row(s) reference a row outside it")
    if modes.share_root is not None:
        table = modes.share_root
        expected = round(real[table] * SHARE)
        if abs(synth[table] - expected) > max(1, 0.02 * expected):
            problems.append(f"share root {table}: {synth[table]} rows, not ~{expected} ({SHARE} of {real[table]})")
    if modes.scaled is not None and modes.scaled_parent is not None:
        child, parent = modes.scaled, modes.scaled_parent
        factor = (synth[child] / max(synth[parent], 1)) / (real[child] / max(real[parent], 1))
        if not SCALE_LOW <= factor <= SCALE_HIGH:
            problems.append(
                f"scaled {child}: {factor:.2f} times the real children per {parent} row, not ~{SCALE:g} "
                f"({synth[child]} per {synth[parent]} vs {real[child]} per {real[parent]} real)"
            )
    if modes.kept_column is not None:
        table, column = modes.kept_column
        synth_values = Counter(_select(target, table, [column]))
        real_values = Counter(_select(source, table, [column]))
        if synth_values != real_values:
            extra = list((synth_values - real_values).elements())[:5]
            missing = list((real_values - synth_values).elements())[:5]
            problems.append(
                f"kept column {table}.{column}: {sum(synth_values.values())} values vs {sum(real_values.values())} "
                f"real; not real (or too many): {extra}; real, missing: {missing}"
            )
    if modes.rebalance is not None:
        table, column, wanted = modes.rebalance
        shares, n = _value_shares(target, table, column)
        if n >= REBALANCE_MIN_ROWS:
            for value, share in wanted.items():
                if abs(shares.get(value, 0.0) - share) > REBALANCE_TOLERANCE:
                    problems.append(
                        f"rebalanced {table}.{column}={value!r}: {shares.get(value, 0.0):.1%} of {n} rows, wanted "
                        f"{share:.0%} (all shares: { {k: round(v, 3) for k, v in shares.items()} })"
                    )
    manifest = json.loads((Path(result.run_dir) / "manifest.json").read_text(encoding="utf-8"))
    seed = manifest.get("seed") or {}
    if seed.get("source") != "auto" or not isinstance(seed.get("value"), int) or seed["value"] != result.seed:
        problems.append(f"generation.seed: auto: the manifest records {seed}, the run used {result.seed}")
    return problems


# --- the tests -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ZOO))
def test_every_mode_on_a_zoo_database_keeps_every_key_valid(
    name: str, sqlite_url: str, second_db: Callable[[str], str], tmp_path: Path
) -> None:
    db = ZOO[name]
    source, target = sqlite_url, second_db("sqlite")
    db.create(source, seed=SEED)
    modes = choose_modes(_inspect(source), source)
    config = load_config(
        None,
        overrides={
            "source.url": source,
            "target.url": target,
            "runs_dir": str(tmp_path / "runs"),
            "report.enabled": False,
            **modes.overrides(),
        },
        environ={},
    )
    result = run_pipeline(config)
    assert result.validation_success is True, f"{name} ({modes.describe()}): {result.validation_failures}"
    problems = zoo_violations(target, db).problems()
    problems += _mode_problems(db, modes, source, target, result)
    assert not problems, f"{name}, seed {result.seed} ({modes.describe()}):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", list(ZOO))
def test_a_profile_only_spec_of_a_zoo_database_generates_with_every_key_valid(
    name: str, sqlite_url: str, tmp_path: Path
) -> None:
    db = ZOO[name]
    db.create(sqlite_url, seed=SEED)
    spec = tmp_path / "spec.yaml"
    runner = CliRunner()
    res = runner.invoke(app, ["inspect", sqlite_url, "--profile-only", "-o", str(spec)])
    assert res.exit_code == 0, f"{name}: inspect --profile-only: {res.output}"
    target = f"sqlite:///{tmp_path}/from_spec.sqlite"
    res = runner.invoke(
        app, ["generate", "--spec", str(spec), "--target", target, "--runs-dir", str(tmp_path / "runs"), "--seed", "1"]
    )
    assert res.exit_code == 0, f"{name}: generate --spec: {res.output}"
    problems = zoo_violations(target, db).problems()
    empty = [t for t, n in row_counts(target, db.tables).items() if n == 0]
    problems += [f"{t} is empty" for t in empty]
    assert not problems, f"{name} from its profile-only spec:\n  " + "\n  ".join(problems)
