"""The one policy: SQL type and profile -> kind -> role. Every stage reads these decisions; none re-derives them.

- :data:`FAMILY_KINDS` / :func:`default_kind`: the kind a column gets from its SQL type alone (before any data is
  seen); :mod:`schemas.inference` refines it from names and a profile.
- :func:`table_roles`: how each column of a table is produced: learned by the model, generated as a key, wired to
  a parent, drawn as a sequence, or faked.

Keys are not learned as values: they are generated, and foreign keys are wired to generated parents, so integrity
holds by construction. PII is never learned: it is faked with values of the same kind and format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from schemas.kinds import Kind
from schemas.model import Column, Table
from schemas.plan import ContextChoice, FkRef, Plan
from schemas.types import Family, SqlType

FAMILY_KINDS: dict[Family, Kind] = {
    Family.INTEGER: Kind.NUMERIC,
    Family.FLOAT: Kind.NUMERIC,
    Family.DECIMAL: Kind.NUMERIC,
    Family.STRING: Kind.CATEGORICAL,
    Family.BOOLEAN: Kind.BOOLEAN,
    Family.DATE: Kind.DATE,
    Family.TIME: Kind.TIME,
    Family.TIMESTAMP: Kind.DATETIME,
    Family.TIMESTAMP_TZ: Kind.DATETIME,
    Family.BINARY: Kind.BINARY,
    Family.UUID: Kind.ID,  # UUIDs identify; their values are generated unique, never learned
    Family.JSON: Kind.JSON,
    Family.INTERVAL: Kind.NUMERIC,  # a duration in microseconds, written back as an interval
    # An INET address says who or where: faked as a valid IPv4 literal, never copied (CIDR, MACADDR: default_kind).
    Family.NETWORK: Kind.IP,
    # Ranges, arrays, points and bit strings are not learned value by value: their observed literals are drawn as
    # categories, so every generated value is one the database accepts.
    Family.RANGE: Kind.CATEGORICAL,
    Family.ARRAY: Kind.CATEGORICAL,
    Family.GEOMETRIC: Kind.CATEGORICAL,
    Family.BIT: Kind.CATEGORICAL,
    # Documents and search vectors are free text: faked as words (valid XML content, a valid tsvector literal).
    Family.XML: Kind.TEXT,
    Family.TEXT_SEARCH: Kind.TEXT,
}
"""The kind of a column from its SQL type's family alone."""


def default_kind(sql_type: SqlType) -> Kind:
    """The kind a column gets from its SQL type alone, before any look at the data.

    Bounded strings (``VARCHAR(n)``, ``CHAR(n)``) are categorical, unbounded ``TEXT`` is free text, a UUID is an
    identifier, an INET an IP address and a MACADDR a MAC address (both faked), a CIDR network categorical.
    Data-driven inference (:mod:`schemas.inference`: e-mails, names, unique codes) refines this later.
    """
    if sql_type.family is Family.STRING and sql_type.name == "TEXT":
        return Kind.TEXT
    if sql_type.family is Family.NETWORK and sql_type.name.startswith("MACADDR"):
        return Kind.MAC_ADDRESS  # a device's identifier: faked (locally administered addresses), never copied
    if sql_type.family is Family.NETWORK and sql_type.name != "INET":
        # CIDR networks (with their masks) have no fake: observed values are drawn as categories
        return Kind.CATEGORICAL
    return FAMILY_KINDS[sql_type.family]


USER_PREFIX = "user:"
"""``kind_reason`` prefix marking a kind the user chose; inference leaves such kinds alone."""
KEY_MEMBER_REASON = "member of the composite primary key"
"""How inference's ``kind_reason`` starts for a text member of a composite primary key whose kind it inferred
from the data (see :func:`_text_member_role`); older schema files say ``id`` for every key column instead."""


class Role(StrEnum):
    LEARNED = "learned"  # modelled by the table model
    FOREIGN_KEY = "foreign_key"  # wired to a generated parent row
    KEY = "key"  # a generated, unique, format-preserving key
    SEQUENCE = "sequence"  # 1..k within each parent (e.g. order_line.line_no)
    PII = "pii"  # faked
    CONSTANT_NULL = "null"  # nothing to learn: all NULL in the source
    KEPT = "kept"  # mode: keep: real values copied; the learned columns are conditioned on them


KeyScope = Literal["none", "group", "table"]


@dataclass(frozen=True)
class KeyRule:
    """How one primary or unique key of a table is kept unique when its columns are not generated unique.

    Attributes:
        columns: the key's columns.
        group: the context foreign-key columns inside the key: rows of one context parent form a group.
        drawn: labels of the secondary foreign keys inside the key, drawn *without replacement* within the group
            (a link table); empty when the key has a learned member, which then carries the uniqueness.
        learned: the key's learned members, moved to free slots of their real grid within the group (the group
            being the key's other columns).
        scope: ``"none"`` when a member is generated unique (a generated key, a sequence within the context
            parent), ``"group"`` when the context parent fixes part of the key so that each block can make it
            unique alone, ``"table"`` when uniqueness spans the whole table (a repair pass after generation).
        wired: key columns set by a foreign key that cannot be drawn without replacement (it overlaps the group or
            another drawn key, or lies partly outside the key): wired by matching; repeats are removed and counted.
    """

    columns: tuple[str, ...]
    group: tuple[str, ...]
    drawn: tuple[str, ...]
    learned: tuple[str, ...]
    scope: KeyScope
    wired: tuple[str, ...] = ()


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
    key_rules: list[KeyRule] = field(default_factory=list)
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
    fk_cols: set[str] = set(context.columns) if context else set()
    for ref in secondary + deferred:
        fk_cols.update(ref.columns)
    pk = list(table.primary_key.columns) if table.primary_key else []
    seq = sequence_columns or set()
    roles: dict[str, Role] = {}
    kinds: dict[str, Kind] = {}
    pk_data = [c for c in pk if c not in fk_cols]
    for col in table.active_columns:
        if col.name in fk_cols:
            roles[col.name] = Role.FOREIGN_KEY
        elif col.name in pk:
            text_role = _text_member_role(col) if len(pk) > 1 else None
            if text_role is not None:
                roles[col.name] = text_role
            elif len(pk) == 1 or not (set(pk) & fk_cols):
                # a standalone key (single or composite without parent columns)
                roles[col.name] = Role.KEY if len(pk_data) == 1 else Role.LEARNED
            elif col.name in seq:
                roles[col.name] = Role.SEQUENCE
            else:
                roles[col.name] = Role.LEARNED
            if roles[col.name] is Role.LEARNED:
                kinds[col.name] = learned_kind(col)
        elif col.mode == "keep":
            roles[col.name] = Role.KEPT  # a key column cannot be kept (refused by the run's checks)
        elif col.kind.is_pii or col.kind is Kind.TEXT:
            # free text is faked like PII: it is where real data hides names and stories, so it is never copied
            roles[col.name] = Role.PII
        elif col.kind is Kind.ID:
            roles[col.name] = Role.KEY
        else:
            roles[col.name] = Role.LEARNED
            kinds[col.name] = col.kind
    keys: list[list[str]] = [pk] if pk else []
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
        if active not in keys:
            keys.append(active)
    rules = [_key_rule(key, roles, context, secondary, deferred) for key in keys if not _generated_unique(key, roles)]
    return TableRoles(
        table=table.name,
        roles=roles,
        learned_kinds=kinds,
        context=context,
        secondary=secondary,
        deferred=deferred,
        one_to_one=one_to_one,
        key_rules=rules,
        unique_single=unique_single,
    )


def _text_member_role(col: Column) -> Role | None:
    """The role of a text column of a composite primary key, from its inferred kind (None: the numeric rules).

    Such a member carries data (``tag(sensor_code, label)``): a code-like one is generated in its format, so no
    real label reaches the model; PII is faked; a few-valued one is learned as categories. A schema file written
    before members were inferred says ``id`` for every key column: those keep being learned.
    """
    if col.family is not Family.STRING:
        return None
    reason = col.kind_reason or ""
    if col.kind is Kind.ID:
        inferred = reason.startswith((KEY_MEMBER_REASON, USER_PREFIX))
        return Role.KEY if inferred else None
    return Role.PII if (col.kind.is_pii or col.kind is Kind.TEXT) else Role.LEARNED


def _generated_unique(key: list[str], roles: dict[str, Role]) -> bool:
    """A key with a generated-unique member (a generated key, a unique fake) is unique by construction."""
    return any(roles.get(c) is Role.KEY for c in key) or (len(key) == 1 and roles.get(key[0]) is Role.PII)


def _key_rule(
    key: list[str],
    roles: dict[str, Role],
    context: ContextChoice | None,
    fks: list[FkRef],
    deferred: list[FkRef],
) -> KeyRule:
    in_key = set(key)
    if any(set(f.columns) & in_key for f in deferred):
        # a foreign key filled in the second pass (it breaks a cycle) is drawn after every block exists: its key
        # is not made unique here (a known limit, rare: a key holding a self-reference)
        return KeyRule(tuple(key), (), (), (), "none")
    group = tuple(context.columns) if context is not None and set(context.columns) <= in_key else ()
    learned = tuple(c for c in key if roles.get(c) is Role.LEARNED)
    sequence = any(roles.get(c) is Role.SEQUENCE for c in key)
    if sequence and group and all(c in group or roles.get(c) is Role.SEQUENCE for c in key):
        return KeyRule(tuple(key), group, (), (), "none")
    drawn: list[str] = []
    taken = set(group)
    for f in fks:
        cols = set(f.columns)
        # a foreign key wholly inside the key and sharing no column with the group or another drawn key is drawn
        # without replacement; one that overlaps them (or lies partly outside the key) is wired by matching
        if not learned and cols <= in_key and not cols & taken:
            drawn.append(f.label)
            taken |= cols
    wired = tuple(
        c for c in key if c not in taken and c not in learned and roles.get(c) is Role.FOREIGN_KEY
    )
    return KeyRule(tuple(key), group, tuple(drawn), learned, "group" if group else "table", wired)
