"""The privacy budget of a run: allocated at plan time (before any data moves), accounted after training.

With ``privacy.epsilon`` set, :func:`plan_budget` lists what each table learns, removes what ``privacy.public``
declares public, and splits the budget (:class:`synth_engine.privacy.Budget`); an allocation that cannot be met
stops the run there. After training, :func:`account_budget` composes what every table actually spent with one RDP
accountant and writes ``privacy.json`` into the run directory (the manifest and the report show it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.manifest import atomic_write_text
from pipelines.stages._models import dp_model
from pipelines.workspace import Workspace
from schemas.config import PRIVACY_STATISTICS, RunConfig
from schemas.model import DatabaseSchema
from schemas.plan import Plan
from schemas.policy import Role, table_roles
from synth_engine.privacy import Accountant, Budget, PrivacyBudgetError, Spend

def public_declarations(schema: DatabaseSchema, config: RunConfig) -> dict[str, list[str]]:
    """``privacy.public`` per table (``*`` for a whole table), checked against the schema.

    Raises:
        PrivacyBudgetError: naming every entry that is not a table, a statistic or a column of its table.
    """
    out: dict[str, list[str]] = {}
    problems = []
    names = {t.name for t in schema.active_tables}
    for item in config.privacy.public:
        table, _, rest = item.partition(".")
        if table not in names:
            problems.append(f"privacy.public: {item!r} names no table (tables: {', '.join(sorted(names))})")
            continue
        if rest and rest not in PRIVACY_STATISTICS and not schema.table(table).has_column(rest):
            problems.append(
                f"privacy.public: {item!r}: {rest!r} is neither a statistic ({', '.join(PRIVACY_STATISTICS)}) "
                f"nor a column of {table}"
            )
            continue
        out.setdefault(table, []).append(rest or "*")
    for table in config.privacy.tables:
        if table not in names:
            problems.append(f"privacy.tables: {table!r} names no table (tables: {', '.join(sorted(names))})")
    if problems:
        raise PrivacyBudgetError("invalid privacy settings:\n" + "\n".join(f"  - {p}" for p in problems))
    return out


def public_tables(schema: DatabaseSchema, config: RunConfig) -> frozenset[str]:
    """Tables whose rows are public under DP: declared whole in ``privacy.public``, or copied as they are (mode
    keep or subset). Their row counts and keys are no secret, so a child's counts per such parent need no
    protection against a parent row added or removed (see :func:`synth_engine.privacy.mechanisms.count_histogram`).
    """
    declared = {t for t, items in public_declarations(schema, config).items() if "*" in items}
    return frozenset(declared | {t.name for t in schema.active_tables if t.copied})


def table_statistics(schema: DatabaseSchema, plan: Plan, table_name: str, *, model: str = "copula") -> list[str]:
    """The statistics ``table_name`` learns (before public declarations) with ``model`` (``copula``: its
    correlation; ``neural``: its network, trained by DP-SGD)."""
    table = schema.table(table_name)
    roles = table_roles(table, plan)
    stats = ["row_count"]
    nullable = {c.name for c in table.active_columns if c.nullable}
    fk_cols = {c for ref in [*roles.secondary, *roles.deferred] for c in ref.columns}
    if roles.context is not None:
        fk_cols |= set(roles.context.columns)
    if nullable & (set(roles.columns(Role.PII)) | fk_cols):
        stats.append("null_shares")
    if roles.learned_kinds:
        stats += ["model.marginals", "model.network" if model == "neural" else "model.correlation"]
    if roles.context is not None:
        stats += ["children_per_parent", "cardinality.marginals", "cardinality.correlation"]
    if roles.secondary or roles.deferred:
        stats.append("indegree")
    if any(len(rule.learned) == 1 and _grid_type(table, rule.learned[0]) for rule in roles.key_rules):
        stats.append("member_grid")  # a step grid; a pool of several members comes from the model's marginals
    if text_keys(table, roles):
        stats.append("key_formats")  # integer keys start at 1, UUIDs need no data
    if roles.columns(Role.PII):
        stats.append("pii_formats")
    if sequence_candidates(table, plan):
        stats.append("sequences")
    return stats


def text_keys(table: Any, roles: Any) -> list[str]:
    """Generated key columns whose format is learned from data (text; integers and UUIDs need none)."""
    from schemas.types import Family

    return [c for c in roles.columns(Role.KEY) if table.column(c).family is Family.STRING]


def sequence_candidates(table: Any, plan: Plan) -> list[str]:
    """Integer members of a primary key made of the context foreign key and that one column (``line_no``): the
    run checks on the data whether they count 1..k within each parent."""
    ctx = plan.context.get(table.name)
    if not table.primary_key or ctx is None:
        return []
    pk = table.primary_key.columns
    rest = [c for c in pk if c not in ctx.columns]
    if len(rest) != 1 or not set(ctx.columns) <= set(pk) or table.column(rest[0]).family.value != "integer":
        return []
    return rest


def _grid_type(table: Any, column: str) -> bool:
    import pyarrow as pa

    t = table.column(column).sql_type.to_arrow()
    return bool(pa.types.is_integer(t) or pa.types.is_temporal(t))


def plan_budget(schema: DatabaseSchema, plan: Plan, config: RunConfig) -> Budget:
    """Allocate ``privacy.epsilon`` and ``privacy.delta`` over the tables and their statistics.

    Raises:
        PrivacyBudgetError: invalid declarations, or requests that the budget cannot cover (the message says what
            each table asks for and which statistics could be declared public instead).
    """
    priv = config.privacy
    assert priv.epsilon is not None
    public = public_declarations(schema, config)
    needs = {}
    for name in plan.training_jobs:
        declared = public.get(name, [])
        if schema.table(name).copied:  # its real rows are released as they are: public by the user's word
            declared = ["*"]
        learns = table_statistics(schema, plan, name, model=dp_model(name, config))
        needs[name] = [] if "*" in declared else [s for s in learns if s not in declared]
    return Budget.allocate(
        priv.epsilon,
        priv.delta,
        needs,
        requests={t: c.epsilon for t, c in priv.tables.items() if c.epsilon is not None},
        weights={t: c.weight for t, c in priv.tables.items()},
        shares={t: c.shares for t, c in priv.tables.items()},
        public=public,
    )


def account_budget(run_dir: Path, budget: Budget, spent: dict[str, list[Spend]]) -> dict[str, Any]:
    """Compose what every table spent, write ``privacy.json`` and return it.

    Raises:
        PrivacyBudgetError: the accountant's epsilon exceeds the budget (a bug: the allocation is exact).
    """
    accountant = Accountant(budget.delta)
    for spends in spent.values():
        accountant.record(spends)
    summary = accountant.summary(budget)
    summary["allocation"] = budget.to_json()
    atomic_write_text(Workspace(run_dir).privacy, json.dumps(summary, indent=2, default=str))
    if not summary["within_budget"]:
        raise PrivacyBudgetError(
            f"the accountant's epsilon {summary['epsilon']:.4f} exceeds privacy.epsilon={budget.epsilon:g}; "
            "nothing was generated. Per table: "
            + ", ".join(f"{t}: {v['epsilon']:.4f}" for t, v in summary["tables"].items())
        )
    return summary


def read_budget(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``privacy.json``, or None for a run without DP."""
    path = Workspace(run_dir).privacy
    return json.loads(path.read_text()) if path.exists() else None
