"""Schema-only generation: a spec (schema + declared distributions) becomes a database, with no real data at all.

Two entry points:

- :func:`run_spec` (``synthdb generate --spec``): the spec is turned into the same per-table artifacts that
  training produces (:class:`pipelines.stages.train.TableArtifacts`), saved in a run directory's model store, and
  the existing generate -> write -> validate -> commit stages run on them. Keys go through the key mechanism as in
  any run, so every primary and foreign key is valid. There is no real data, so the report stage is skipped.
- :func:`write_profile_spec` (``synthdb inspect --profile-only -o spec.yaml``): a spec written from a real database
  as aggregates only, optionally with differential privacy, so that the spec can leave the data owner's premises.

How marginals are built: each learned column's declared distribution is turned into a *pseudo-column* of
:data:`PSEUDO_ROWS` values placed at evenly spaced quantiles (``Q((i + 0.5) / n)``; categories by largest-remainder
counts), each column shuffled by its own fixed seed, and a :class:`~synth_engine.copula.GaussianCopulaModel` is
fitted on that pseudo-table. The fit is deterministic (fixed seeds throughout), reproduces the declared shares and
quantiles to within 1/``PSEUDO_ROWS``, and, the columns being shuffled independently, its correlation is the
identity up to about 1/sqrt(``PSEUDO_ROWS``) (columns are independent: a spec declares marginals, not dependence).
Children per parent become the sorted count quantiles (``count_quantiles``) that generation stratifies over the
generated parents, with a cardinality model without parent columns.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from pipelines._internal import preload
from pipelines.run import Progress, RunResult, check_scale, check_target, url_problems, write_validate_commit
from pipelines.stages._models import ModelChoice
from pipelines.stages.train import NO_CONTEXT, FkStats, TableArtifacts, save_artifacts
from pipelines.workspace import Workspace
from schemas.config import RunConfig, resolve_seed
from schemas.errors import ConfigError, SchemaError
from schemas.model import DatabaseSchema, Table
from schemas.plan import Plan, build_plan
from schemas.policy import Role, table_roles
from schemas.profile import TableProfile
from schemas.spec import (
    ChildrenSpec,
    ColumnSpec,
    Spec,
    TableSpec,
    fk_key,
    parse_distributions,
    ref_label,
    ref_parent,
)

log = logging.getLogger(__name__)

PSEUDO_ROWS = 20_000
"""Values per pseudo-column a marginal is fitted on (see the module notes)."""

COUNT_QUANTILES = 10_000
"""Children-per-parent quantiles kept per foreign key (generation stratifies them over the generated parents)."""

MIN_CATEGORY_ROWS = 10
"""``inspect --profile-only``: a category with fewer rows than this is not written (merged and suppressed)."""

_SPEC_SEED = 0x5BEC  # pseudo-columns and their shuffles: the same spec always gives the same artifacts
_NOT_REPORTED = "a spec run has no real data: fidelity and privacy cannot be measured against anything"


# ---------------------------------------------------------------------------------------------------------------
# Loading a spec


def load_spec(path: Path) -> Spec:
    """Load a spec file: the schema part through :func:`schemas.schema_file.parse_schema_yaml`, then the
    ``distributions`` block (see :mod:`schemas.spec`).

    A declared numeric range that a simple CHECK constraint of its table refuses (``col >= N``, ``col BETWEEN a
    AND b``...) is one of those problems (see :mod:`pipelines._internal.spec_checks`); other checks are left to
    the database at the write.

    Raises:
        SchemaError: every problem at once, each with the file and line, the table and the column (exit code 2).
    """
    from pipelines._internal.spec_checks import check_problems
    from schemas.schema_file import parse_schema_yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(
            f"spec {path} does not exist; write one (see README, Schema-only generation) or run "
            "`synthdb inspect SOURCE --profile-only -o spec.yaml`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"spec {path} cannot be read: {exc}") from None
    try:
        data = YAML().load(text)
    except (MarkedYAMLError, YAMLError):
        data = None  # the schema parser below reports the syntax error with its line
    distributions: Any = None
    schema_text = text
    if isinstance(data, Mapping) and "distributions" in data:
        distributions = data["distributions"]
        schema_text = _blank_top_level_key(text, data, "distributions")
    schema = parse_schema_yaml(schema_text, source=str(path))
    if not isinstance(data, Mapping) or "distributions" not in data:
        raise SchemaError(
            f"{path}: the spec has no `distributions:` block; add one with each table's rows and each column's "
            "distribution (see README, Schema-only generation)",
            header=f"The spec {path} has problems",
        )
    plan = build_plan(schema)
    spec, problems = parse_distributions(distributions, schema, plan, source=str(path), locate=_line_of)
    problems += check_problems(spec, distributions, source=str(path), locate=_line_of)  # CHECKs the write would fail
    if problems:
        raise SchemaError(problems, header=f"The spec {path} has problems")
    return spec


def _blank_top_level_key(text: str, data: Any, key: str) -> str:
    """``text`` with the lines of one top-level block blanked, so that the rest keeps its line numbers."""
    lines = text.splitlines(keepends=True)
    starts = sorted(int(data.lc.key(k)[0]) for k in data)
    first = int(data.lc.key(key)[0])
    later = [s for s in starts if s > first]
    last = later[0] if later else len(lines)
    return "".join("\n" if first <= i < last else line for i, line in enumerate(lines))


def _line_of(node: Any, key: Any) -> int | None:
    try:
        if key is None:
            return int(node.lc.line)
        return int(node.lc.key(key)[0])
    except (AttributeError, KeyError, TypeError):
        return None


# ---------------------------------------------------------------------------------------------------------------
# Spec -> artifacts


def _quantile_function(c: ColumnSpec) -> Callable[[np.ndarray], np.ndarray]:
    """The declared distribution's quantile function, in storage units."""
    from scipy import stats

    if c.quantiles is not None:
        p = np.array([q[0] for q in c.quantiles])
        x = np.array([q[1] for q in c.quantiles])
        if p[0] > 0 or p[-1] < 1:  # the first and last knots bound the values: stretch them to 0 and 1
            p = (p - p[0]) / (p[-1] - p[0])
        return lambda u: np.interp(u, p, x)
    lo = -math.inf if c.lo is None else c.lo
    hi = math.inf if c.hi is None else c.hi
    params = c.params
    if c.distribution == "uniform":
        return lambda u: lo + u * (hi - lo)
    if c.distribution == "normal":
        dist = stats.norm(params["mean"], params["sd"])
    elif c.distribution == "lognormal":
        dist = stats.lognorm(params["sigma"], scale=math.exp(params["mu"]))
    else:  # exponential
        dist = stats.expon(scale=params["mean"])
    a, b = float(dist.cdf(lo)), float(dist.cdf(hi))
    return lambda u: np.clip(dist.ppf(a + u * (b - a)), lo, hi)


def _largest_remainder(shares: np.ndarray, n: int) -> np.ndarray:
    exact = shares / shares.sum() * n
    counts = np.floor(exact).astype(np.int64)
    rest = n - int(counts.sum())
    if rest > 0:
        counts[np.argsort(-(exact - counts), kind="stable")[:rest]] += 1
    return np.asarray(counts, dtype=np.int64)


def pseudo_column(c: ColumnSpec, arrow_type: pa.DataType, *, numeric: bool, n: int, seed: int) -> pa.Array:
    """``n`` values that follow the declared distribution exactly (see the module notes), shuffled by ``seed``."""
    from synth_engine._internal.arrow_numbers import from_float

    nulls = round(c.null * n)
    m = n - nulls
    if c.values is not None:
        counts = _largest_remainder(np.array([s for _, s in c.values]), m)
        picks = np.repeat(np.arange(len(c.values)), counts)
        if numeric:
            x = np.array([v for v, _ in c.values], dtype=np.float64)[picks]
            values = from_float(x, None, arrow_type)
        else:
            values = pa.array([c.values[i][0] for i in picks.tolist()], type=arrow_type)
    else:
        u = (np.arange(m) + 0.5) / max(m, 1)
        values = from_float(np.asarray(_quantile_function(c)(u), dtype=np.float64), None, arrow_type)
    full = pa.concat_arrays([values, pa.nulls(nulls, type=arrow_type)])
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    return full.take(pa.array(order))


def count_quantiles(c: ChildrenSpec, *, n: int = COUNT_QUANTILES) -> np.ndarray:
    """Sorted children-per-parent counts at ``n`` evenly spaced quantiles of the declared distribution."""
    from scipy import stats

    u = (np.arange(n) + 0.5) / n
    if c.counts is not None:
        k = np.array([k for k, _ in c.counts], dtype=np.int64)
        cdf = np.cumsum([s for _, s in c.counts])
        cdf = cdf / cdf[-1]
        out = k[np.minimum(np.searchsorted(cdf, u, side="right"), k.size - 1)]
    elif c.quantiles is not None:
        p = np.array([q[0] for q in c.quantiles])
        p = (p - p[0]) / (p[-1] - p[0])
        out = np.rint(np.interp(u, p, [q[1] for q in c.quantiles])).astype(np.int64)
    elif c.distribution == "poisson":
        out = stats.poisson(c.params.get("mean", 0.0)).ppf(u).astype(np.int64)
    else:
        out = np.full(n, round(c.params.get("count", 0.0)), dtype=np.int64)
    if c.max is not None:
        out = np.minimum(out, c.max)
    return np.sort(out)


def _key_format(spec: Mapping[str, Any] | None, arrow_type: pa.DataType) -> Any:
    from synth_engine.keys import KeyFormat

    if spec is None:
        return KeyFormat.learn(pa.array([], type=arrow_type))  # integers or counters from 1, UUIDs
    return KeyFormat(
        style=spec["style"],
        arrow_type=arrow_type,
        first=int(spec.get("first", 1)),
        prefix=str(spec.get("prefix", "")),
        suffix=str(spec.get("suffix", "")),
        alphabets=tuple(str(a) for a in spec.get("alphabets", ())),
        uppercase=bool(spec.get("uppercase", False)),
    )


def _fk_null_share(ts: TableSpec, columns: tuple[str, ...]) -> float:
    return max((ts.columns[c].null for c in columns if c in ts.columns), default=0.0)


def build_artifacts(spec: Spec) -> tuple[dict[str, TableArtifacts], dict[str, TableProfile]]:
    """Every table's artifacts, as training would make them, from the declared aggregates; and a profile of each
    table's pseudo-table, from which the validation suite takes its ranges, value sets and NULL shares."""
    from connectors.profile import profile_table
    from synth_engine import derive_seed
    from synth_engine.cardinality import CopulaCardinalityModel
    from synth_engine.copula import GaussianCopulaModel
    from synth_engine.keys import MemberGrid
    from synth_engine.pii import PiiFormat

    schema, plan = spec.schema, spec.plan
    arts: dict[str, TableArtifacts] = {}
    profiles: dict[str, TableProfile] = {}
    for name in plan.order:
        table = schema.table(name)
        ts = spec.tables[name]
        roles = table_roles(table, plan)
        arrow_schema = pa.schema([pa.field(c.name, c.sql_type.to_arrow()) for c in table.active_columns])
        art = TableArtifacts(table=name, real_rows=0, roles=roles, arrow_schema=arrow_schema)
        art.nullable_cols = {c.name for c in table.active_columns if c.nullable}
        art.model_choice = ModelChoice(name, "copula", "spec: marginals from the declared distributions", 0.0)
        learned = list(roles.learned_kinds)
        pseudo = pa.table(
            {
                c: pseudo_column(
                    ts.columns[c],
                    arrow_schema.field(c).type,
                    numeric=ts.columns[c].values is not None and roles.learned_kinds[c].value not in
                    ("categorical", "boolean"),
                    n=PSEUDO_ROWS,
                    seed=derive_seed(_SPEC_SEED, name, c),
                )
                for c in learned
            }
        )
        if learned:
            widest = max((len(ts.columns[c].values or ()) for c in learned), default=0)
            art.model = GaussianCopulaModel(roles.learned_kinds, max_categories=max(100, widest + 1)).fit(pseudo)
        for col in roles.columns(Role.KEY):
            art.key_formats[col] = _key_format(ts.columns[col].key_format, arrow_schema.field(col).type)
        for rule in roles.key_rules:
            if rule.learned:
                art.member_grids[rule.columns] = MemberGrid.learn(pseudo, rule.learned)
        for col in roles.columns(Role.PII):
            c = table.column(col)
            art.pii_kinds[col] = str(c.kind)
            art.pii_formats[col] = PiiFormat(max_length=ts.columns[col].max_length or c.sql_type.length)
            art.fake_null_share[col] = ts.columns[col].null
        ctx = roles.context
        if ctx is None:
            art.real_rows = int(ts.rows or 0)
        else:
            parent_rows = arts[ctx.parent].real_rows
            null_share = _fk_null_share(ts, ctx.columns)
            children = ts.children.get(ref_label(ctx))
            if children is None:  # only `rows`: a Poisson count with that total (see schemas.spec)
                mean = (ts.rows or 0) * (1.0 - null_share) / max(parent_rows, 1)
                children = ChildrenSpec(distribution="poisson", params={"mean": mean})
            observed = count_quantiles(children)
            if roles.one_to_one:
                observed = np.minimum(observed, 1)
            art.count_quantiles = observed
            art.context_null_share = null_share
            art.context_kinds = {}
            art.cardinality = CopulaCardinalityModel(
                {}, max_count=int(observed.max()), one_to_one=roles.one_to_one
            ).fit(pa.table({NO_CONTEXT: np.zeros(observed.size, dtype=np.int32)}), pa.array(observed))
            # the total generation aims at: the declared rows, else parents x mean children, plus the rows whose
            # context key is NULL (a few quantiles miss a heavy tail's mass: 3 airports of 1,458 hold every
            # weather row, so a declared total keeps the table's size where the quantiles alone would not)
            art.real_rows = int(ts.rows) if ts.rows else round(
                parent_rows * float(observed.mean()) / max(1e-9, 1.0 - null_share)
            )
        for ref in [*roles.secondary, *roles.deferred]:
            declared = ts.children.get(ref.label)
            art.fk_stats[ref.label] = FkStats(
                ref=ref,
                null_share=_fk_null_share(ts, ref.columns),
                indegree=count_quantiles(declared) if declared is not None else np.ones(1, dtype=np.int64),
            )
        arts[name] = art
        profiles[name] = profile_table(pseudo, name=name, row_count=art.real_rows)
    return arts, profiles


def spec_schema(spec: Spec, arts: Mapping[str, TableArtifacts]) -> DatabaseSchema:
    """The spec's schema with each table's planned row count (what :func:`pipelines.run.check_scale` reads)."""
    tables = [
        t.model_copy(update={"row_count": arts[t.name].real_rows}) if t.name in arts else t
        for t in spec.schema.tables
    ]
    return spec.schema.model_copy(update={"tables": tables})


# ---------------------------------------------------------------------------------------------------------------
# The run


def run_spec(
    spec_path: Path, config: RunConfig, *, progress: Progress | None = None, run_id: str | None = None
) -> RunResult:
    """``synthdb generate --spec``: build the artifacts from the spec, then generate, write, validate and commit.

    The spec and the target are checked before the run directory is created and before any engine starts.

    Raises:
        SchemaError: the spec has problems (exit code 2), all of them listed with their lines.
        ConfigError: the target is missing or cannot work (exit code 2).
        ValidationFailed: the generated data failed an integrity expectation; the live target is untouched.
    """
    from pipelines._internal.target_claim import claim_target
    from pipelines.manifest import mark_failed, new_run_id

    spec = load_spec(spec_path)
    problems = [] if config.target.url else ["target.url is not set: give --target URL"]
    problems += url_problems(config)
    if problems:
        raise ConfigError("cannot start the run:\n" + "\n".join(f"  - {p}" for p in problems))
    check_target(config)
    seed_source = "auto" if config.generation.seed == "auto" else "config"
    config = resolve_seed(config)
    run_id = run_id or new_run_id()
    lock = claim_target(config, run_id, tables=list(spec.plan.order))  # no source to list the tables from
    try:
        return _run_spec(spec, Path(spec_path), config, progress=progress, run_id=run_id, seed_source=seed_source)
    except BaseException as exc:
        mark_failed(config.runs_dir, run_id, exc)
        raise
    finally:
        lock.release()


def _run_spec(
    spec: Spec, spec_path: Path, config: RunConfig, *, progress: Progress | None, run_id: str, seed_source: str
) -> RunResult:
    from connectors.spark.session import start_spark_in_background
    from pipelines.expectations import build_suite
    from pipelines.manifest import Manifest, atomic_write_text
    from pipelines.ray_runtime import init_ray, warm_workers
    from pipelines.run import _redacted_config, elapsed
    from pipelines.stages.generate import run_generate
    from schemas.schema_file import save_schema

    say = progress or (lambda stage, msg: None)
    assert config.target.url is not None
    started = time.perf_counter()
    manifest = Manifest.create(config.runs_dir, run_id=run_id, config=_redacted_config(config))
    run_dir = manifest.run_dir
    result = RunResult(run_id=manifest.run_id, run_dir=run_dir, target_url=config.target.url)
    result.seed, result.seed_source = config.generation.fixed_seed, seed_source
    manifest.seed = {"value": result.seed, "source": seed_source}
    manifest.save()
    start_spark_in_background(config.spark)
    for stage, reason in (("inspect", "schema-only generation: the schema comes from the spec"),
                          ("extract", "schema-only generation: there is no source")):
        manifest.skip(stage, reason)
    with manifest.stage("plan") as rec:
        arts, profiles = build_artifacts(spec)
        schema = spec_schema(spec, arts)
        plan = spec.plan
        for line in check_scale(schema, plan, config.generation):
            say("plan", line)
        save_schema(schema, Workspace(run_dir).schema)
        atomic_write_text(Workspace(run_dir).spec, spec_path.read_text(encoding="utf-8"))
        atomic_write_text(Workspace(run_dir).plan, json.dumps(plan.to_json(), indent=2))
        suite = build_suite(schema, profiles)
        rec.detail["spec"] = str(spec_path)
        say("plan", f"spec {spec_path}: {len(plan.order)} tables in {len(plan.generations)} generations")
    preload.start()
    init_ray(config.ray)
    warm_workers()
    with manifest.stage("train") as rec:
        for art in arts.values():
            save_artifacts(run_dir, art)
        rec.rows = {n: 0 for n in arts}
        rec.detail["models"] = {
            n: {"model": "spec", "reason": "marginals from the declared distributions (nothing trained)"}
            for n in arts
        }
        say("train", "nothing to train: artifacts built from the declared distributions")
    with manifest.stage("generate") as rec:
        rec.rows = run_generate(run_dir, schema, plan, config)
        for name in plan.order:
            say("generate", f"{name}: {rec.rows.get(name, 0):,} rows")
        result.synth_rows = dict(rec.rows)
    manifest.skip("report", _NOT_REPORTED)
    write_validate_commit(config, schema, plan, suite, manifest, result, say)
    say("report", f"skipped: {_NOT_REPORTED}")
    try:
        manifest.status = "done"
        manifest.save()
    except Exception:  # committed: a manifest that cannot be saved is only logged
        log.warning("could not save the run's manifest after the commit", exc_info=True)
    result.stage_seconds = {k: v.seconds for k, v in manifest.stages.items() if v.seconds is not None}
    result.wall_seconds = elapsed(started)
    return result


# ---------------------------------------------------------------------------------------------------------------
# A spec from a real database, as aggregates only (``synthdb inspect --profile-only``)

QUANTILE_KNOTS = 51
"""Quantiles written per numeric column (evenly spaced probabilities, 0 and 1 included)."""

COUNT_KNOTS = 101
"""Quantiles written per foreign key's children per parent, when its histogram would hold rare counts."""

EXACT_VALUES = 50
"""A number with at most this many distinct values, each seen often enough, is written as exact value shares."""


class _Noise:
    """The releases of one profile-only spec: exact without DP, else Gaussian mechanisms of one multiplier.

    Every release (a row count, a NULL share, a vocabulary, a numeric range and histogram, a children-per-parent
    histogram) gets the same noise multiplier, calibrated so that their composition under the RDP accountant
    spends ``privacy.epsilon`` (see :mod:`synth_engine.privacy`); the accountant then says what was spent.
    """

    def __init__(self, config: RunConfig, releases: int, vocabularies: int) -> None:
        from synth_engine.privacy import Accountant, calibrate_multiplier
        from synth_engine.privacy.accounting import SELECTION_SHARE

        self.epsilon = config.privacy.epsilon
        self.accountant = Accountant(config.privacy.delta)
        self.rng = np.random.Generator(np.random.PCG64([_SPEC_SEED, config.generation.fixed_seed]))
        self.releases = releases
        self.multiplier = 0.0
        self.selection_delta = 0.0
        if self.epsilon is not None and releases:
            one = calibrate_multiplier(self.epsilon, self.accountant.accountant_delta)
            self.multiplier = one * math.sqrt(releases)
            self.selection_delta = config.privacy.delta * SELECTION_SHARE / max(vocabularies, 1)

    @property
    def on(self) -> bool:
        return self.epsilon is not None

    def std(self, table: str, statistic: str, *, sensitivity: float = 1.0, count: int = 1,
            vocabulary: bool = False) -> float:
        from synth_engine.privacy import Spend

        self.accountant.record(
            [Spend(table, statistic, self.multiplier, count, self.selection_delta if vocabulary else 0.0)]
        )
        return self.multiplier * sensitivity


def _releases(schema: DatabaseSchema, plan: Plan) -> tuple[int, int]:
    """(releases, vocabularies) a profile-only spec of ``schema`` makes (see :class:`_Noise`)."""
    releases = vocabularies = 0
    for t in schema.active_tables:
        roles = table_roles(t, plan)
        releases += 1  # the row count
        fk_cols = {c for r in _refs(roles) for c in r.columns}
        for c in t.active_columns:
            role = roles.roles[c.name]
            releases += int(c.nullable and (c.name not in fk_cols or _first_fk_column(roles, c.name)))
            if role is Role.LEARNED:
                kind = roles.learned_kinds[c.name].value
                vocab = kind in ("categorical", "boolean")
                releases += 1 if vocab else 3
                vocabularies += int(vocab)
            elif role is Role.KEY and c.family.value == "string":
                releases += 3  # a text key's counters, layouts and literal characters (thresholded)
                vocabularies += 3
        releases += len(_refs(roles))
    return releases, vocabularies


def _refs(roles: Any) -> list[Any]:
    return [*([roles.context] if roles.context else []), *roles.secondary, *roles.deferred]


def _first_fk_column(roles: Any, column: str) -> bool:
    return any(r.columns[0] == column for r in _refs(roles))


def write_profile_spec(
    source_url: str,
    output: Path,
    *,
    config: RunConfig,
    db_schema: str | None = None,
    edited: DatabaseSchema | None = None,
    sample_rows: int = 10_000,
    min_count: int = MIN_CATEGORY_ROWS,
) -> dict[str, Any]:
    """Write a spec of the database at ``source_url`` as aggregates only, with DP noise under ``privacy.epsilon``.

    Aggregates: every table's row count; per column its NULL share and category shares (categories with at least
    ``min_count`` sampled rows; rarer ones suppressed) or quantiles rounded to 4 significant digits of the range;
    children-per-parent distributions per foreign key; key formats. Numbers and shares come from a sample of at
    most ``sample_rows`` rows per table; children per parent from every row of the foreign key's columns.

    Returns:
        What was written: ``{"path", "epsilon" (spent, or None), "suppressed": {table.column: categories}}``.
    """
    from connectors.inspect import inspect_source
    from connectors.source import open_source
    from connectors.sql.url import redact_url
    from pipelines.manifest import atomic_write_text
    from schemas.schema_file import dump_schema_yaml, merge_overrides

    source = open_source(source_url, db_schema=db_schema, schema=edited)
    try:
        inspected = inspect_source(source, sample_rows=sample_rows, unsupported="exclude")
        schema = merge_overrides(inspected.schema, edited) if edited is not None else inspected.schema
        schema = schema.validate_all()
        plan = build_plan(schema)
        releases, vocabularies = _releases(schema, plan)
        noise = _Noise(config, releases, vocabularies)
        writer = _ProfileWriter(source, schema, plan, noise, min_count=min_count, sample_rows=sample_rows)
        block = writer.block(inspected.profiles)
    finally:
        source.close()
    # the schema part without real row counts (the spec's `rows` carry them, noised under DP) and nothing kept
    tables = [t.model_copy(update={"row_count": None, "mode": "synthesize"}) for t in schema.tables]
    schema_text = dump_schema_yaml(schema.model_copy(update={"tables": tables}))
    spent = noise.accountant.epsilon() if noise.on else None
    header = _profile_header(redact_url(source_url), noise, spent, sample_rows, min_count, writer.suppressed)
    buf = _dump_block(block)
    atomic_write_text(Path(output), header + schema_text + "\n" + buf)
    return {"path": str(output), "epsilon": spent, "suppressed": dict(writer.suppressed)}


def _dump_block(block: Any) -> str:
    import io

    from ruamel.yaml.comments import CommentedMap

    root = CommentedMap()
    root["distributions"] = block
    root.yaml_set_comment_before_after_key(
        "distributions", before="Declared distributions per table (see README, Schema-only generation)."
    )
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(root, buf)
    return buf.getvalue()


def _profile_header(
    source: str, noise: _Noise, spent: float | None, sample_rows: int, min_count: int, suppressed: Mapping[str, int]
) -> str:
    from datetime import UTC, datetime

    lines = [
        (
            f"synthdb generation spec, written by `synthdb inspect --profile-only` from {source} at "
            f"{datetime.now(UTC).isoformat(timespec='seconds')}."
        ),
        "Aggregates only, no row-level values:",
        "  - row counts of every table; per column its NULL share, and category shares or quantiles;",
        f"  - categories seen in fewer than {min_count} sampled rows are not written: they are suppressed, the",
        (
            "    other shares renormalised, and each such column's comment says how many were suppressed"
            f" ({sum(suppressed.values())} in all);"
        ),
        f"  - numbers and dates: {QUANTILE_KNOTS} quantiles at evenly spaced probabilities, rounded to 4 significant",
        "    digits of the column's range (the lowest down, the highest up), so that none is a real row's value;",
        f"  - shares and quantiles come from a sample of at most {sample_rows:,} rows per table; children per",
        "    parent (quantiles or a histogram, zeros included) from every row of each foreign key;",
        "  - keys: their format only (style, literal prefix/suffix, alphabets per position); PII and free text:",
        "    faked by their kind, only their NULL share is written.",
    ]
    if noise.on and spent is not None:
        lines += [
            (
                f"Differential privacy: epsilon {spent:.4g} spent of privacy.epsilon {noise.epsilon:g} "
                f"(delta {noise.accountant.accountant_delta + noise.accountant.selection_delta:.2g}), over "
                f"{noise.releases} Gaussian releases of noise multiplier {noise.multiplier:.3g}, composed by the "
                "RDP accountant (dp_accounting)."
            ),
            "  Not covered by the budget: key formats, and which columns are keys, PII or categories (the schema).",
        ]
    else:
        lines.append("Differential privacy: off (privacy.epsilon is not set): the aggregates are exact on the sample.")
    lines.append("Generate a database from it: synthdb generate --spec THIS_FILE --target URL")
    return "".join(f"# {line}\n" for line in lines) + "#\n"


class _ProfileWriter:
    def __init__(
        self, source: Any, schema: DatabaseSchema, plan: Plan, noise: _Noise, *, min_count: int, sample_rows: int
    ) -> None:
        self.source = source
        self.schema = schema
        self.plan = plan
        self.noise = noise
        self.min_count = min_count
        self.sample_rows = sample_rows
        self.suppressed: dict[str, int] = {}

    def block(self, profiles: Mapping[str, TableProfile]) -> Any:
        from ruamel.yaml.comments import CommentedMap

        out = CommentedMap()
        for name in self.plan.order:
            t = self.schema.table(name)
            profile = profiles.get(name)
            out[name] = self.table(t, profile.row_count if profile else self.source.count_rows(name))
        return out

    def table(self, t: Table, row_count: int) -> Any:
        from ruamel.yaml.comments import CommentedMap

        roles = table_roles(t, self.plan)
        node = CommentedMap()
        rows = row_count  # every table's: a child's total keeps its size where its count quantiles miss a tail
        if self.noise.on:
            from synth_engine.privacy import mechanisms as dpm

            std = self.noise.std(t.name, "row_count")
            rows = round(dpm.noisy_count(row_count, std, self.noise.rng))
        node["rows"] = max(1, rows)
        sample = self.source.sample_table(t.name, rows=self.sample_rows, seed=0)
        fk_first = {r.columns[0] for r in _refs(roles)}
        columns = CommentedMap()
        for c in t.active_columns:
            role = roles.roles[c.name]
            if role in (Role.FOREIGN_KEY, Role.SEQUENCE, Role.CONSTANT_NULL) and c.name not in fk_first:
                continue
            col = CommentedMap()
            values = sample.column(c.name) if c.name in sample.column_names else pa.nulls(0)
            if c.nullable:
                col["null_share"] = self.null_share(t.name, values)
            if role is Role.LEARNED:
                kind = roles.learned_kinds[c.name].value
                if kind in ("categorical", "boolean"):
                    self.categories(t, c.name, values, col, kind == "boolean")
                else:
                    self.numbers(t, c.name, values, col)
            elif role is Role.KEY:
                col["format"] = self.key_format(t.name, values, text=c.family.value == "string")
            if col:
                col.fa.set_flow_style()
                columns[c.name] = col
        if columns:
            node["columns"] = columns
        children = CommentedMap()
        for ref in _refs(roles):
            children[fk_key(ref)] = self.children(t, ref)
        if children:
            node["children"] = children
        return node

    def null_share(self, table: str, values: Any) -> float:
        n, nulls = len(values), values.null_count
        if not self.noise.on:
            return round(nulls / n, 4) if n else 0.0
        from synth_engine.privacy import mechanisms as dpm

        std = self.noise.std(table, "null_shares")
        return round(dpm.null_share(nulls, n, std, self.noise.rng), 4)

    def categories(self, t: Table, column: str, values: Any, col: Any, boolean: bool) -> None:
        import pyarrow.compute as pc

        from synth_engine._internal.arrow_numbers import plain

        arr = plain(values).drop_null()
        if self.noise.on:
            from synth_engine.privacy import mechanisms as dpm

            std = self.noise.std(t.name, "model.marginals", vocabulary=True)
            cats, counts = dpm.vocabulary(arr, std, self.noise.selection_delta, self.noise.rng)
        else:
            vc = pc.value_counts(arr)
            cats = vc.field("values")
            counts = np.asarray(vc.field("counts").to_numpy(zero_copy_only=False), dtype=np.float64)
        order = np.argsort(-counts, kind="stable")
        listed = [(cats[int(i)].as_py(), float(counts[i])) for i in order]
        kept = listed if boolean else [(v, n) for v, n in listed if n >= self.min_count]
        dropped = len(listed) - len(kept)
        share = 1.0 - sum(n for _, n in kept) / max(sum(n for _, n in listed), 1e-9)
        if dropped:
            self.suppressed[f"{t.name}.{column}"] = dropped
        if not kept:
            length = t.column(column).sql_type.length
            kept = [("other"[: length or 5] if pa.types.is_string(arr.type) else 0, 1.0)]
        total = sum(n for _, n in kept)
        shares = _rounded_shares([n / total for _, n in kept])
        from ruamel.yaml.comments import CommentedMap

        node = CommentedMap((_yaml_scalar(v), s) for (v, _), s in zip(kept, shares, strict=True))
        node.fa.set_flow_style()
        col["values"] = node
        if dropped:
            col.yaml_add_eol_comment(
                f"{dropped} categories with fewer than {self.min_count} rows suppressed ({share:.1%} of rows; "
                "the other shares renormalised)",
                "values",
            )

    def numbers(self, t: Table, column: str, values: Any, col: Any) -> None:
        from synth_engine._internal.arrow_numbers import from_float, is_integral, plain, to_float

        arr = plain(values).drop_null()
        arrow_type = arr.type
        x = np.sort(to_float(arr)[0]) if len(arr) else np.zeros(0)
        integral = is_integral(arrow_type) or pa.types.is_temporal(arrow_type)
        exact: tuple[np.ndarray, np.ndarray] | None = None
        knots: tuple[np.ndarray, np.ndarray] | None = None
        if self.noise.on:
            from synth_engine.privacy import mechanisms as dpm

            std = self.noise.std(t.name, "model.marginals", count=3)
            if x.size == 0:
                x = np.zeros(1)
            lo, hi = dpm.numeric_range(x, std, self.noise.rng)
            vals, rest = dpm.numeric_values(x, lo, hi, is_integral(arrow_type), std, self.noise.rng)
            if vals is not None:
                assert isinstance(rest, np.ndarray)
                exact = (vals, rest)
            else:
                assert isinstance(rest, tuple)
                knots = rest
        elif x.size:
            distinct, counts = np.unique(x, return_counts=True)
            if distinct.size <= EXACT_VALUES and counts.min() >= self.min_count:
                exact = (distinct, counts.astype(np.float64))
            else:
                p = np.linspace(0.0, 1.0, x.size)
                knots = (p, x)
        else:
            knots = (np.array([0.0, 1.0]), np.zeros(2))
        if exact is not None:
            keep = exact[1] >= self.min_count
            if not keep.any():
                keep[int(np.argmax(exact[1]))] = True
            vals_kept, weights = exact[0][keep], exact[1][keep]
            shares = _rounded_shares(list(weights / weights.sum()))
            shown = from_float(vals_kept, None, arrow_type).to_pylist()
            from ruamel.yaml.comments import CommentedMap

            node = CommentedMap((_yaml_scalar(v), s) for v, s in zip(shown, shares, strict=True))
            node.fa.set_flow_style()
            col["values"] = node
            return
        assert knots is not None
        p_out = np.linspace(0.0, 1.0, QUANTILE_KNOTS)
        q = np.interp(p_out, knots[0], knots[1])
        span = float(q[-1] - q[0])
        if span > 0:
            step = 10.0 ** (math.floor(math.log10(span)) - 3)
            if integral:
                step = max(1.0, float(round(step)))
            q = np.round(q / step) * step
            q[0] = math.floor(float(knots[1][0]) / step) * step if not self.noise.on else q[0]
            q[-1] = math.ceil(float(knots[1][-1]) / step) * step if not self.noise.on else q[-1]
            q = np.maximum.accumulate(q)
        shown = from_float(q, None, arrow_type).to_pylist()
        from ruamel.yaml.comments import CommentedSeq

        seq = CommentedSeq([_yaml_scalar(v) for v in shown])
        seq.fa.set_flow_style()
        col["quantiles"] = seq

    def key_format(self, table: str, values: Any, *, text: bool) -> Any:
        """A generated key's format; under DP from three thresholded vocabularies (text keys only: integers start
        at 1, see :meth:`synth_engine.keys.KeyFormat.learn_private`)."""
        from ruamel.yaml.comments import CommentedMap

        from synth_engine.keys import KeyFormat

        if not self.noise.on:
            fmt = KeyFormat.learn(values)
        else:
            std = self.noise.std(table, "key_formats", count=3, vocabulary=True) if text else float("inf")
            fmt = KeyFormat.learn_private(values, std=std, delta=self.noise.selection_delta, rng=self.noise.rng)
        node = CommentedMap(style=fmt.style)
        if fmt.prefix:
            node["prefix"] = fmt.prefix
        if fmt.suffix:
            node["suffix"] = fmt.suffix
        if fmt.alphabets:
            node["alphabets"] = list(fmt.alphabets)
        if fmt.uppercase:
            node["uppercase"] = True
        node.fa.set_flow_style()
        return node

    def children(self, t: Table, ref: Any) -> Any:
        import pyarrow.compute as pc
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        cols = list(ref.columns)
        batches = list(self.source.read_table(t.name, columns=cols))
        keys = pa.Table.from_batches(batches) if batches else pa.table({c: pa.array([]) for c in cols})
        any_null = functools.reduce(pc.or_kleene, [pc.is_null(keys.column(c)) for c in cols])  # any arity
        keys = keys.filter(pc.invert(any_null))
        grouped = keys.group_by(cols).aggregate([([], "count_all")]) if keys.num_rows else None
        counts = (
            np.asarray(grouped.column("count_all").to_numpy(), dtype=np.int64) if grouped is not None
            else np.zeros(0, dtype=np.int64)
        )
        parents = self.source.count_rows(ref_parent(ref))
        counts = np.concatenate([counts, np.zeros(max(0, parents - counts.size), dtype=np.int64)])
        if self.noise.on:
            from synth_engine.privacy import mechanisms as dpm

            std = self.noise.std(t.name, "children_per_parent", sensitivity=math.sqrt(2.0))
            counts = dpm.count_histogram(counts, std, self.noise.rng)
        if counts.size == 0:
            counts = np.zeros(1, dtype=np.int64)
        distinct, n = np.unique(counts, return_counts=True)
        node = CommentedMap()
        if distinct.size <= EXACT_VALUES and n.min() >= self.min_count:
            hist = CommentedMap(
                (int(k), s) for k, s in zip(distinct, _rounded_shares(list(n / n.sum())), strict=True)
            )
            hist.fa.set_flow_style()
            node["counts"] = hist
        else:
            q = np.quantile(np.sort(counts), np.linspace(0.0, 1.0, COUNT_KNOTS), method="inverted_cdf")
            seq = CommentedSeq([int(v) for v in q])
            seq.fa.set_flow_style()
            node["quantiles"] = seq
        node.fa.set_flow_style()
        return node


def _rounded_shares(shares: list[float]) -> list[float]:
    """Shares rounded to 4 decimals that still sum to 1 (the largest takes the rounding)."""
    out = [round(float(s), 4) for s in shares]
    if out:
        i = int(np.argmax(out))
        out[i] = round(out[i] + 1.0 - sum(out), 4)
    return out


def _yaml_scalar(value: Any) -> Any:
    """A value as YAML writes it back readably: dates and times as ISO text, numbers and text as they are."""
    from datetime import date, datetime, time, timedelta
    from decimal import Decimal

    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value / timedelta(microseconds=1))
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, Decimal):  # a NUMERIC column's values: YAML has no decimal, and a share keeps a number
        return float(value)
    return value
