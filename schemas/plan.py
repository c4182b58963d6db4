"""The plan: the foreign-key graph (networkx) turned into an order of work.

:func:`build_plan` reads a :class:`~schemas.model.DatabaseSchema` and decides, without any I/O:

- the generation order, as topological generations of the active tables (parents first);
- which foreign keys are *deferred*: left NULL in the first pass and filled in a second pass. Self-references
  always are, and every cycle is broken at a nullable foreign key;
- each child's *context* parent, the one parent it is conditioned on; its other foreign keys are *secondary* and
  are assigned afterwards;
- one training job per active table. Each child trains on real parent rows, so the jobs are independent.

Every problem that makes the graph impossible to order (a NOT NULL self-reference, a cycle with no nullable foreign
key, a context that cannot be used) is collected and raised once as a :class:`~schemas.errors.PlanError`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx

from schemas.errors import PlanError
from schemas.model import DatabaseSchema, ForeignKey, Table

logger = logging.getLogger(__name__)

# Counting the simple cycles through each edge is exponential in the worst case; real schemas have few short
# cycles, so a cap keeps pathological graphs fast while staying deterministic (the graph is built in sorted order).
_MAX_CYCLES_COUNTED = 5_000

_OVERRIDE_REASON = "set in the schema file"


@dataclass(frozen=True)
class FkRef:
    """One foreign key between two active tables, identified without ambiguity.

    Attributes:
        table: the child (referencing) table.
        columns: the child's referencing columns, in the order that matches ``ref_columns``.
        ref_table: the parent (referenced) table.
        ref_columns: the parent's referenced columns.
        nullable: whether the key may be NULL (any of its columns is nullable).
        name: the constraint name, when the schema has one (informational; not part of the identity).
    """

    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    nullable: bool
    name: str | None = None

    @classmethod
    def of(cls, table: Table, fk: ForeignKey) -> FkRef:
        """The reference for foreign key ``fk`` of ``table``."""
        return cls(
            table=table.name,
            columns=tuple(fk.columns),
            ref_table=fk.ref_table,
            ref_columns=tuple(fk.ref_columns),
            nullable=fk.nullable,
            name=fk.name,
        )

    @property
    def label(self) -> str:
        """``child(col, ...) -> parent(col, ...)``, for messages and the CLI."""
        return f"{self.table}({', '.join(self.columns)}) -> {self.ref_table}({', '.join(self.ref_columns)})"

    @property
    def is_self_reference(self) -> bool:
        return self.table == self.ref_table

    def sort_key(self) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
        """A total order on foreign keys by names, used wherever a choice must be deterministic."""
        return (self.table, self.columns, self.ref_table, self.ref_columns)

    def to_json(self) -> dict[str, Any]:
        """``{"table", "columns", "references": {"table", "columns"}}``."""
        return {
            "table": self.table,
            "columns": list(self.columns),
            "references": {"table": self.ref_table, "columns": list(self.ref_columns)},
        }


@dataclass(frozen=True)
class ContextChoice:
    """The parent a child table is conditioned on, and why it was chosen.

    Attributes:
        table: the child table (the *target*).
        parent: the context parent table.
        columns: the child's foreign key columns to that parent.
        ref_columns: the parent's referenced columns.
        reason: which rule decided, in words (or ``"set in the schema file"`` for an override).
    """

    table: str
    parent: str
    columns: tuple[str, ...]
    ref_columns: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Plan:
    """The order of work derived from the foreign-key graph.

    Attributes:
        generations: topological generations of the active tables (parents first), names sorted in each.
        deferred: foreign keys left NULL in the first pass and filled in a second pass (self-references and the
            keys that break cycles), sorted by names.
        context: child table -> its context parent; only tables with at least one non-deferred foreign key.
        one_to_one: foreign keys whose columns are exactly the child's primary key (the primary key is also a
            foreign key), sorted by names.
        secondary: every active table -> its non-context, non-deferred foreign keys (an empty list when none),
            assigned after the context parent.
        training_jobs: one per active table, in plan order; they do not depend on each other.
    """

    generations: list[list[str]]
    deferred: list[FkRef]
    context: dict[str, ContextChoice]
    one_to_one: list[FkRef]
    secondary: dict[str, list[FkRef]]
    training_jobs: list[str]

    @property
    def order(self) -> list[str]:
        """Every active table, parents before children (the generations flattened)."""
        return [t for generation in self.generations for t in generation]

    def generation_of(self, table: str) -> int:
        """The index of the generation holding ``table``; raises :class:`PlanError` when it is not planned."""
        for i, generation in enumerate(self.generations):
            if table in generation:
                return i
        raise PlanError(f"table {table!r} is not in the plan (excluded, or not in the schema)")

    def to_json(self) -> dict[str, Any]:
        """A stable, JSON-ready description (the shape ``synthdb plan --json`` prints).

        Returns:
            ``{"generations": [[table, ...], ...], "deferred_foreign_keys": [fk, ...], "context": {child: parent},
            "one_to_one": [fk, ...], "secondary_foreign_keys": [fk, ...]}`` where each ``fk`` is
            ``{"table", "columns", "references": {"table", "columns"}}``.
        """
        secondary = sorted((fk for fks in self.secondary.values() for fk in fks), key=FkRef.sort_key)
        return {
            "generations": [list(g) for g in self.generations],
            "deferred_foreign_keys": [fk.to_json() for fk in self.deferred],
            "context": {child: choice.parent for child, choice in sorted(self.context.items())},
            "one_to_one": [fk.to_json() for fk in self.one_to_one],
            "secondary_foreign_keys": [fk.to_json() for fk in secondary],
        }

    def render_tree(self) -> str:
        """A readable plain-text picture of the plan, for the CLI.

        Each child is drawn under its context parent, so the tree shows what conditions what; the generations,
        secondary and deferred foreign keys are listed alongside.
        """
        lines = [f"Generation order ({len(self.generations)} generation(s), {len(self.order)} table(s)):"]
        lines += [f"  {i + 1}. {', '.join(g)}" for i, g in enumerate(self.generations)]
        lines.append("Context tree (each table under the parent it is conditioned on):")
        children: dict[str, list[str]] = {}
        for child, choice in self.context.items():
            children.setdefault(choice.parent, []).append(child)
        position = {t: i for i, t in enumerate(self.order)}
        roots = [t for t in self.order if t not in self.context]

        def describe(table: str) -> str:
            parts = [table]
            choice = self.context.get(table)
            if choice is not None:
                parts.append(f"  [via ({', '.join(choice.columns)}): {choice.reason}]")
            also = self.secondary.get(table, [])
            if also:
                parts.append(
                    "  + " + "; ".join(f"({', '.join(fk.columns)}) -> {fk.ref_table}" for fk in also)
                )
            return "".join(parts)

        def walk(table: str, prefix: str, last: bool, top: bool) -> None:
            branch = "" if top else ("└── " if last else "├── ")
            lines.append(f"{prefix}{branch}{describe(table)}")
            below = sorted(children.get(table, []), key=position.__getitem__)
            extension = "" if top else ("    " if last else "│   ")
            for i, child in enumerate(below):
                walk(child, prefix + extension, i == len(below) - 1, False)

        for root in roots:
            walk(root, "  ", True, True)
        if self.deferred:
            lines.append("Deferred foreign keys (NULL in the first pass, filled in a second pass):")
            lines += [f"  {fk.label}" for fk in self.deferred]
        if self.one_to_one:
            lines.append("One-to-one (primary key is also the foreign key):")
            lines += [f"  {fk.label}" for fk in self.one_to_one]
        return "\n".join(lines)


def build_plan(schema: DatabaseSchema) -> Plan:
    """Turn the schema's foreign-key graph into a plan.

    Args:
        schema: the database schema. Excluded tables, and foreign keys into them or over excluded columns, are
            ignored.

    Returns:
        The plan. The same schema always gives the same plan, whatever the order of its tables and keys.

    Raises:
        PlanError: listing every problem at once: a NOT NULL self-reference, a cycle with no nullable foreign key,
            or a ``context`` that names a foreign key the plan cannot use.
    """
    tables = {t.name: t for t in schema.active_tables}
    refs_by_table: dict[str, list[FkRef]] = {name: [] for name in tables}
    named: dict[FkRef, ForeignKey] = {}
    for table, fk in schema.iter_foreign_keys():
        ref = FkRef.of(table, fk)
        refs_by_table[table.name].append(ref)
        named[ref] = fk
    for refs in refs_by_table.values():
        refs.sort(key=FkRef.sort_key)
    all_refs = sorted((r for refs in refs_by_table.values() for r in refs), key=FkRef.sort_key)

    problems: list[str] = []
    deferred: list[FkRef] = []
    for ref in all_refs:
        if not ref.is_self_reference:
            continue
        if ref.nullable:
            deferred.append(ref)
        else:
            problems.append(
                f"table {ref.table!r}: self-referencing foreign key ({', '.join(ref.columns)}) -> "
                f"{ref.ref_table}({', '.join(ref.ref_columns)}) is NOT NULL, so no first row could be written. "
                f"Make column(s) {', '.join(ref.columns)} nullable, exclude them, or drop the constraint in the "
                "schema file"
            )

    # Keys that a table's context override points at are the last ones a cycle should be broken at.
    preferred = {
        ref for name, table in tables.items() for ref in _override_matches(table, refs_by_table[name])
    }
    graph = _graph(sorted(tables), [r for r in all_refs if not r.is_self_reference])
    broken, cycle_problems = _break_cycles(graph, preferred)
    deferred += broken
    problems += cycle_problems
    deferred.sort(key=FkRef.sort_key)

    context: dict[str, ContextChoice] = {}
    secondary: dict[str, list[FkRef]] = {name: [] for name in sorted(tables)}
    deferred_set = set(deferred)
    for name in sorted(tables):
        candidates = [r for r in refs_by_table[name] if r not in deferred_set]
        if not candidates:
            if tables[name].context is not None and refs_by_table[name]:
                problems.append(
                    f"table {name!r}: context {tables[name].context!r} cannot be used because every foreign key of "
                    "the table is deferred (a self-reference or the key that breaks a cycle); remove the context "
                    "setting, or make another key in the cycle nullable"
                )
            elif tables[name].context is not None:
                # Its parents are all excluded: the table is a root now and the setting has nothing to choose.
                logger.warning(
                    "table %r: context %r ignored; the table has no foreign key to an active table",
                    name,
                    tables[name].context,
                )
            continue
        try:
            choice = _choose_context(tables[name], candidates, tables, refs_by_table[name])
        except PlanError as exc:
            problems.extend(exc.problems)
            continue
        context[name] = choice
        secondary[name] = [
            r for r in candidates if (r.ref_table, r.columns) != (choice.parent, choice.columns)
        ]

    if problems:
        raise PlanError(problems, header="The foreign-key graph cannot be planned")

    dag = graph.copy()
    dag.remove_edges_from(
        [(u, v, k) for u, v, k, d in graph.edges(keys=True, data=True) if d["ref"] in deferred_set]
    )
    generations = [sorted(g) for g in nx.topological_generations(dag)]
    order = [t for g in generations for t in g]

    one_to_one = [r for r in all_refs if _is_primary_key(tables[r.table], r.columns)]
    plan = Plan(
        generations=generations,
        deferred=deferred,
        context=context,
        one_to_one=one_to_one,
        secondary=secondary,
        training_jobs=list(order),
    )
    logger.debug(
        "plan: %d table(s) in %d generation(s), %d deferred foreign key(s)",
        len(order),
        len(generations),
        len(deferred),
    )
    return plan


def _graph(nodes: list[str], refs: Iterable[FkRef]) -> nx.MultiDiGraph:
    """parent -> child, one edge per foreign key, inserted in sorted order so traversals are deterministic."""
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(nodes)
    for ref in refs:
        graph.add_edge(ref.ref_table, ref.table, ref=ref)
    return graph


def _break_cycles(graph: nx.MultiDiGraph, preferred: set[FkRef]) -> tuple[list[FkRef], list[str]]:
    """Remove nullable edges until the graph is acyclic; report every cycle that has no nullable way out.

    Returns:
        The removed (deferred) foreign keys, and one problem line per strongly connected component that cannot be
        broken.
    """
    work = graph.copy()
    removed: list[FkRef] = []
    problems: list[str] = []
    pending = _cyclic_components(work)
    while pending:
        component = pending.pop(0)
        sub = work.subgraph(component)
        edges = sorted(
            ((u, v, k, d["ref"]) for u, v, k, d in sub.edges(keys=True, data=True)),
            key=lambda e: e[3].sort_key(),
        )
        nullable = [e for e in edges if e[3].nullable]
        if not nullable:
            problems.append(_cycle_problem(component, [e[3] for e in edges]))
            continue
        scores = _cycles_broken(sub)
        u, v, k, ref = min(
            nullable,
            key=lambda e: (e[3] in preferred, -scores.get((e[0], e[1]), 0), e[3].sort_key()),
        )
        logger.debug("breaking a cycle among %s at %s", sorted(component), ref.label)
        work.remove_edge(u, v, key=k)
        removed.append(ref)
        # Removing one edge may split the component into several smaller cycles (or none): re-examine it.
        pending = _cyclic_components(work.subgraph(component).copy()) + pending
    return removed, problems


def _cyclic_components(graph: nx.MultiDiGraph) -> list[list[str]]:
    """Strongly connected components with more than one table, each sorted, in sorted order."""
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)


def _cycles_broken(sub: nx.MultiDiGraph) -> dict[tuple[str, str], int]:
    """For each parent -> child pair, how many simple cycles removing its edge would break.

    A pair joined by several parallel edges breaks nothing when one of them goes (the others keep the cycle).
    """
    multiplicity: dict[tuple[str, str], int] = {}
    for u, v in sub.edges():
        multiplicity[(u, v)] = multiplicity.get((u, v), 0) + 1
    simple = nx.DiGraph()
    simple.add_nodes_from(sorted(sub.nodes))
    simple.add_edges_from(sorted(multiplicity))
    scores: dict[tuple[str, str], int] = {}
    for cycle in itertools.islice(nx.simple_cycles(simple), _MAX_CYCLES_COUNTED):
        for u, v in zip(cycle, cycle[1:] + cycle[:1], strict=True):
            if multiplicity[(u, v)] == 1:
                scores[(u, v)] = scores.get((u, v), 0) + 1
    return scores


def _cycle_problem(component: list[str], refs: list[FkRef]) -> str:
    keys = "; ".join(r.label + (" NULL" if r.nullable else " NOT NULL") for r in refs)
    return (
        f"tables {', '.join(component)} form a cycle of foreign keys with no nullable key to break it "
        f"(foreign keys: {keys}). Make one of these keys' columns nullable, exclude one of the tables, or drop "
        "one constraint in the schema file"
    )


def _override_matches(table: Table, refs: list[FkRef]) -> list[FkRef]:
    """The foreign keys that the table's ``context`` setting names: by constraint name, else by parent table."""
    if table.context is None:
        return []
    by_name = [r for r in refs if r.name is not None and r.name == table.context]
    return by_name or [r for r in refs if r.ref_table == table.context]


def _is_primary_key(table: Table, columns: tuple[str, ...]) -> bool:
    """True when ``columns`` are exactly the table's primary key (in any order)."""
    return table.primary_key is not None and sorted(columns) == sorted(table.primary_key.columns)


def _learnable_columns(table: Table) -> int:
    """Columns a model learns from the parent's row: not keys, not PII, not excluded."""
    keys = table.key_columns
    return sum(1 for c in table.active_columns if c.name not in keys and c.kind.is_learned)


_RULE_REASONS = (
    "its columns are part of the child's primary key (identifying relationship)",
    "its columns contain another foreign key's columns, so it decides that key too",
    "it is NOT NULL, the other candidates are nullable",
    "it has more columns (composite key)",
    "its parent has the most learnable (non-key) columns",
    "tie on every rule; chosen by name order",
)


def _choose_context(
    table: Table, candidates: list[FkRef], tables: dict[str, Table], all_refs: list[FkRef]
) -> ContextChoice:
    """Pick the context parent among the non-deferred candidates (see the rules in :func:`build_plan`)."""
    reason: str | None = None
    pool = candidates
    if table.context is not None:
        matches = _override_matches(table, all_refs)
        usable = [r for r in matches if r in candidates]
        if not usable:
            found = (
                "a foreign key that is deferred to break a cycle"
                if matches
                else "no foreign key between active tables"
            )
            options = sorted({r.name or r.ref_table for r in candidates})
            raise PlanError(
                f"table {table.name!r}: context {table.context!r} names {found}; "
                f"set context to one of: {', '.join(options)}, or remove the setting"
            )
        pool = usable
        reason = _OVERRIDE_REASON
    pk = set(table.primary_key.columns) if table.primary_key else set()

    def covers(r: FkRef) -> bool:
        # e.g. flights(origin, year, month, day, hour) -> weather contains flights(origin) -> airports: conditioning
        # on the weather row also fixes the origin, so both keys stay consistent.
        return any(o != r and set(o.columns) < set(r.columns) for o in candidates)

    def key(r: FkRef) -> tuple[Any, ...]:
        return (
            not (pk and set(r.columns) <= pk),
            not covers(r),
            r.nullable,
            -len(r.columns),
            -_learnable_columns(tables[r.ref_table]),
            r.ref_table,
            r.columns,
        )

    ranked = sorted(pool, key=key)
    best = ranked[0]
    if reason is None:
        if len(ranked) == 1:
            reason = "its only foreign key"
        else:
            runner_up = key(ranked[1])
            decided = next(i for i, (a, b) in enumerate(zip(key(best), runner_up, strict=True)) if a != b)
            reason = _RULE_REASONS[min(decided, len(_RULE_REASONS) - 1)]
    return ContextChoice(
        table=table.name,
        parent=best.ref_table,
        columns=best.columns,
        ref_columns=best.ref_columns,
        reason=reason,
    )
