"""How each column of a table is produced: learned by the model, generated as a key, wired to a parent, or faked.

Keys are not learned as values: they are generated, and foreign keys are wired to generated parents, so integrity
holds by construction. PII is never learned: it is faked with values of the same kind and format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from schemas.kinds import Kind
from schemas.model import Column, Table
from schemas.plan import ContextChoice, FkRef, Plan
from schemas.types import Family


class Role(StrEnum):
    LEARNED = "learned"  # modelled by the table model
    FOREIGN_KEY = "foreign_key"  # wired to a generated parent row
    KEY = "key"  # a generated, unique, format-preserving key
    SEQUENCE = "sequence"  # 1..k within each parent (e.g. order_line.line_no)
    PII = "pii"  # faked
    CONSTANT_NULL = "null"  # nothing to learn: all NULL in the source


@dataclass(frozen=True)
class TableRoles:
    """The role of every active column of one table, and the keys it must keep unique."""

    table: str
    roles: dict[str, Role]
    learned_kinds: dict[str, Kind]
    context: ContextChoice | None
    secondary: list[FkRef]
    deferred: list[FkRef]
    one_to_one: bool
    # composite keys that mix parent keys with learned values: made unique after sampling, per context group
    dedupe_keys: list[list[str]] = field(default_factory=list)
    unique_single: list[str] = field(default_factory=list)

    def columns(self, role: Role) -> list[str]:
        return [c for c, r in self.roles.items() if r is role]


def learned_kind(col: Column) -> Kind:
    """The kind to learn a column with, also for key columns that carry data (e.g. weather's ``hour``)."""
    if col.kind.is_learned:
        return col.kind
    family = col.family
    if family in (Family.INTEGER, Family.FLOAT, Family.DECIMAL):
        return Kind.NUMERIC
    if family is Family.DATE:
        return Kind.DATE
    if family is Family.TIME:
        return Kind.TIME
    if family in (Family.TIMESTAMP, Family.TIMESTAMP_TZ):
        return Kind.DATETIME
    if family is Family.BOOLEAN:
        return Kind.BOOLEAN
    return Kind.CATEGORICAL


def table_roles(table: Table, plan: Plan, *, sequence_columns: set[str] | None = None) -> TableRoles:
    """Decide each column's role from the schema and the plan.

    Args:
        table: the table.
        plan: the run's plan (context parent, secondary and deferred foreign keys).
        sequence_columns: composite-key columns found to count 1..k within each parent in the real data.
    """
    context = plan.context.get(table.name)
    deferred = [f for f in plan.deferred if f.table == table.name]
    secondary = list(plan.secondary.get(table.name, []))
    one_to_one = context is not None and any(
        f.table == table.name and f.columns == context.columns for f in plan.one_to_one
    )
    fk_cols: set[str] = set()
    for ref in [context] if context else []:
        fk_cols.update(ref.columns)
    for ref in secondary + deferred:
        fk_cols.update(ref.columns)
    pk = list(table.primary_key.columns) if table.primary_key else []
    seq = sequence_columns or set()
    roles: dict[str, Role] = {}
    kinds: dict[str, Kind] = {}
    dedupe: list[list[str]] = []
    pk_data = [c for c in pk if c not in fk_cols]
    for col in table.active_columns:
        if col.name in fk_cols:
            roles[col.name] = Role.FOREIGN_KEY
        elif col.name in pk:
            if len(pk) == 1 or not (set(pk) & fk_cols):
                # a standalone key (single or composite without parent columns)
                roles[col.name] = Role.KEY if len(pk_data) == 1 else Role.LEARNED
            elif col.name in seq:
                roles[col.name] = Role.SEQUENCE
            else:
                roles[col.name] = Role.LEARNED
            if roles[col.name] is Role.LEARNED:
                kinds[col.name] = learned_kind(col)
        elif col.kind.is_pii or col.kind is Kind.TEXT:
            # free text is faked like PII: it is where real data hides names and stories, so it is never copied
            roles[col.name] = Role.PII
        elif col.kind is Kind.ID:
            roles[col.name] = Role.KEY
        else:
            roles[col.name] = Role.LEARNED
            kinds[col.name] = col.kind
    if pk and any(roles.get(c) is Role.LEARNED for c in pk):
        dedupe.append(pk)
    unique_single: list[str] = []
    for uq in table.unique:
        active = [c for c in uq.columns if c in roles]
        if len(active) != len(uq.columns):
            continue
        if len(active) == 1:
            c = active[0]
            if roles[c] is Role.LEARNED:
                roles[c] = Role.KEY
                kinds.pop(c, None)
            unique_single.append(c)
        elif any(roles[c] is Role.LEARNED for c in active):
            dedupe.append(active)
    return TableRoles(
        table=table.name,
        roles=roles,
        learned_kinds=kinds,
        context=context,
        secondary=secondary,
        deferred=deferred,
        one_to_one=one_to_one,
        dedupe_keys=dedupe,
        unique_single=unique_single,
    )
