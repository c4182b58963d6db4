"""The plan: generations, deferred keys, cycles, context parents, on graphs built with the schemas model."""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Iterable, Sequence

import pytest

from schemas.errors import PlanError, SchemaError
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from schemas.plan import ContextChoice, FkRef, Plan, build_plan


def fk(
    columns: str | Sequence[str],
    ref_table: str,
    ref_columns: str | Sequence[str] = "id",
    name: str | None = None,
) -> ForeignKey:
    cols = [columns] if isinstance(columns, str) else list(columns)
    refs = [ref_columns] if isinstance(ref_columns, str) else list(ref_columns)
    return ForeignKey(columns=cols, ref_table=ref_table, ref_columns=refs, name=name)


def table(
    name: str,
    *,
    fks: Iterable[ForeignKey] = (),
    pk: Sequence[str] = ("id",),
    nullable: Iterable[str] = (),
    extra: int = 0,
    excluded: bool = False,
    context: str | None = None,
) -> Table:
    """A table whose columns are its primary key, its FK columns and ``extra`` learnable numeric columns."""
    fks = list(fks)
    nullable = set(nullable)
    names: list[str] = list(pk)
    for f in fks:
        names += [c for c in f.columns if c not in names]
    columns = [Column(name=n, type="INTEGER", nullable=n in nullable, kind=Kind.ID) for n in names]
    columns += [Column(name=f"v{i}", type="DOUBLE", kind=Kind.NUMERIC) for i in range(extra)]
    return Table(
        name=name,
        columns=columns,
        primary_key=PrimaryKey(columns=list(pk)) if pk else None,
        foreign_keys=fks,
        excluded=excluded,
        context=context,
    )


def plan_of(*tables: Table) -> Plan:
    schema = DatabaseSchema(tables=list(tables))
    assert schema.problems() == []
    return build_plan(schema)


def assert_parents_first(schema: DatabaseSchema, plan: Plan) -> None:
    deferred = set(plan.deferred)
    for t, f in schema.iter_foreign_keys():
        ref = FkRef.of(t, f)
        if ref not in deferred:
            assert plan.generation_of(f.ref_table) < plan.generation_of(t.name), ref.label


def test_chain_orders_parents_first_in_generations() -> None:
    plan = plan_of(
        table("c", fks=[fk("b_id", "b")]),
        table("a"),
        table("b", fks=[fk("a_id", "a")]),
    )
    assert plan.generations == [["a"], ["b"], ["c"]]
    assert plan.order == ["a", "b", "c"]
    assert plan.deferred == []
    assert {k: v.parent for k, v in plan.context.items()} == {"b": "a", "c": "b"}
    assert plan.context["b"].reason == "its only foreign key"
    assert plan.training_jobs == ["a", "b", "c"]
    assert plan.secondary == {"a": [], "b": [], "c": []}


def test_diamond_puts_both_middles_in_one_generation_and_chooses_richer_parent() -> None:
    plan = plan_of(
        table("top"),
        table("left", fks=[fk("top_id", "top")]),
        table("right", fks=[fk("top_id", "top")], extra=3),
        table("bottom", fks=[fk("l_id", "left"), fk("r_id", "right")]),
    )
    assert plan.generations == [["top"], ["left", "right"], ["bottom"]]
    choice = plan.context["bottom"]
    assert choice.parent == "right"  # three learnable columns beat none
    assert choice.reason == "its parent has the most learnable (non-key) columns"
    assert [f.label for f in plan.secondary["bottom"]] == ["bottom(l_id) -> left(id)"]


def test_two_foreign_keys_to_one_parent_are_two_edges() -> None:
    plan = plan_of(
        table("airports", pk=["faa"]),
        table(
            "flights", fks=[fk("origin", "airports", "faa"), fk("dest", "airports", "faa")], nullable=["dest"]
        ),
    )
    assert plan.generations == [["airports"], ["flights"]]
    choice = plan.context["flights"]
    assert (choice.parent, choice.columns) == ("airports", ("origin",))
    assert choice.reason == "it is NOT NULL, the other candidates are nullable"
    assert [(f.columns, f.ref_table) for f in plan.secondary["flights"]] == [(("dest",), "airports")]
    assert len(plan.to_json()["secondary_foreign_keys"]) == 1


def test_two_equal_foreign_keys_to_one_parent_tie_break_by_name() -> None:
    plan = plan_of(
        table("p"),
        table("c", fks=[fk("z_id", "p"), fk("a_id", "p")]),
    )
    assert plan.context["c"].columns == ("a_id",)
    assert plan.context["c"].reason == "tie on every rule; chosen by name order"
    assert [f.columns for f in plan.secondary["c"]] == [("z_id",)]


def test_nullable_self_reference_is_deferred() -> None:
    plan = plan_of(
        table("employees", fks=[fk("manager_id", "employees")], nullable=["manager_id"]),
        table("sales", fks=[fk("employee_id", "employees")]),
    )
    assert plan.generations == [["employees"], ["sales"]]
    assert [f.label for f in plan.deferred] == ["employees(manager_id) -> employees(id)"]
    assert "employees" not in plan.context  # its only key is deferred: nothing to condition on
    assert plan.context["sales"].parent == "employees"
    assert "employees(manager_id) -> employees(id)" in plan.render_tree()


def test_not_null_self_reference_is_an_error_naming_table_columns_and_fix() -> None:
    with pytest.raises(PlanError) as info:
        plan_of(table("employees", fks=[fk("manager_id", "employees")]))
    message = str(info.value)
    assert "'employees'" in message and "manager_id" in message
    assert "nullable" in message and "exclude" in message and "schema file" in message


def test_two_table_cycle_is_broken_at_the_nullable_key() -> None:
    plan = plan_of(
        table("departments", fks=[fk("head_id", "employees")], nullable=["head_id"]),
        table("employees", fks=[fk("dept_id", "departments")]),
    )
    assert [f.label for f in plan.deferred] == ["departments(head_id) -> employees(id)"]
    assert plan.generations == [["departments"], ["employees"]]
    assert {k: v.parent for k, v in plan.context.items()} == {"employees": "departments"}


def test_three_table_cycle_is_broken_once_at_its_only_nullable_key() -> None:
    plan = plan_of(
        table("a", fks=[fk("c_id", "c")]),
        table("b", fks=[fk("a_id", "a")], nullable=["a_id"]),
        table("c", fks=[fk("b_id", "b")]),
    )
    assert [f.label for f in plan.deferred] == ["b(a_id) -> a(id)"]
    assert plan.generations == [["b"], ["c"], ["a"]]


def test_cycle_breaking_prefers_the_key_that_breaks_the_most_cycles() -> None:
    # Cycles hub -> spoke -> a -> hub and hub -> spoke -> b -> hub share spoke(hub_id). Breaking there breaks both;
    # any other nullable key breaks one, so the greedy choice is spoke(hub_id) despite its name coming later.
    plan = plan_of(
        table("hub", fks=[fk("a_id", "a"), fk("b_id", "b")], nullable=["a_id", "b_id"]),
        table("spoke", fks=[fk("hub_id", "hub")], nullable=["hub_id"]),
        table("a", fks=[fk("spoke_id", "spoke")]),
        table("b", fks=[fk("spoke_id", "spoke")]),
    )
    assert [f.label for f in plan.deferred] == ["spoke(hub_id) -> hub(id)"]
    assert plan.generations == [["spoke"], ["a", "b"], ["hub"]]


def test_cycles_sharing_a_table_are_each_broken_and_ties_go_by_name() -> None:
    # hub <-> spoke (only hub(spoke_id) nullable) and spoke <-> other (both nullable: the tie goes by name).
    plan = plan_of(
        table("hub", fks=[fk("spoke_id", "spoke")], nullable=["spoke_id"]),
        table("spoke", fks=[fk("hub_id", "hub"), fk("other_id", "other")], nullable=["other_id"]),
        table("other", fks=[fk("spoke_id", "spoke")], nullable=["spoke_id"]),
    )
    assert [f.label for f in plan.deferred] == ["hub(spoke_id) -> spoke(id)", "other(spoke_id) -> spoke(id)"]
    assert plan.generations == [["hub", "other"], ["spoke"]]


def test_cycle_without_nullable_key_lists_all_its_tables_and_keys() -> None:
    with pytest.raises(PlanError) as info:
        plan_of(
            table("a", fks=[fk("c_id", "c")]),
            table("b", fks=[fk("a_id", "a")]),
            table("c", fks=[fk("b_id", "b")]),
            table("free"),
        )
    message = str(info.value)
    assert "a, b, c" in message
    for label in ("a(c_id) -> c(id)", "b(a_id) -> a(id)", "c(b_id) -> b(id)"):
        assert label in message
    assert "nullable" in message and "exclude" in message
    assert "free" not in message


def test_every_unbreakable_cycle_is_reported_at_once() -> None:
    with pytest.raises(PlanError) as info:
        plan_of(
            table("a", fks=[fk("b_id", "b")]),
            table("b", fks=[fk("a_id", "a")]),
            table("x", fks=[fk("y_id", "y")]),
            table("y", fks=[fk("x_id", "x")]),
            table("s", fks=[fk("s_id", "s")]),
        )
    problems = info.value.problems
    assert len(problems) == 3
    assert any("tables a, b" in p for p in problems)
    assert any("tables x, y" in p for p in problems)
    assert any("'s'" in p and "s_id" in p for p in problems)
    # it pickles (Ray carries it across processes) and stays a SchemaError for the CLI's exit code
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, SchemaError) and again.problems == problems


def test_primary_key_that_is_a_foreign_key_is_one_to_one_and_the_context() -> None:
    plan = plan_of(
        table("users", extra=1),
        table("orgs", extra=5),
        table("profiles", pk=["user_id"], fks=[fk("org_id", "orgs"), fk("user_id", "users")], extra=2),
    )
    assert [f.label for f in plan.one_to_one] == ["profiles(user_id) -> users(id)"]
    assert plan.context["profiles"].parent == "users"  # identifying key beats the richer parent
    assert plan.context["profiles"].reason.startswith("its columns are part of the child's primary key")
    assert plan.to_json()["one_to_one"] == [
        {"table": "profiles", "columns": ["user_id"], "references": {"table": "users", "columns": ["id"]}}
    ]


def test_composite_foreign_key_is_preferred_and_kept_whole() -> None:
    plan = plan_of(
        table("weather", pk=["origin", "hour"], extra=4),
        table("carriers", extra=8),
        table(
            "flights",
            fks=[fk(["origin", "hour"], "weather", ["origin", "hour"]), fk("carrier_id", "carriers")],
            nullable=["origin", "hour", "carrier_id"],
        ),
    )
    choice = plan.context["flights"]
    assert (choice.parent, choice.columns, choice.ref_columns) == (
        "weather",
        ("origin", "hour"),
        ("origin", "hour"),
    )
    assert choice.reason == "it has more columns (composite key)"
    assert plan.one_to_one == []


def test_excluded_tables_and_their_keys_are_ignored() -> None:
    plan = plan_of(
        table("audit", excluded=True, fks=[fk("user_id", "users")]),
        table("users", fks=[fk("audit_id", "audit")]),  # would make a NOT NULL cycle if audit were active
        table("orders", fks=[fk("user_id", "users")]),
    )
    assert plan.generations == [["users"], ["orders"]]
    assert "users" not in plan.context
    assert "audit" not in plan.training_jobs and "audit" not in plan.secondary


def test_context_naming_an_excluded_parent_leaves_the_table_a_root() -> None:
    plan = plan_of(
        table("audit", excluded=True),
        table("users", fks=[fk("audit_id", "audit")], context="audit"),
    )
    assert plan.generations == [["users"]] and plan.context == {}


def test_context_override_by_parent_and_by_constraint_name() -> None:
    tables = [
        table("rich", extra=10),
        table("poor"),
        table("child", fks=[fk("rich_id", "rich", name="fk_rich"), fk("poor_id", "poor", name="fk_poor")]),
    ]
    assert plan_of(*tables).context["child"].parent == "rich"
    for setting in ("poor", "fk_poor"):
        tables[2] = tables[2].model_copy(update={"context": setting})
        choice = plan_of(*tables).context["child"]
        assert (choice.parent, choice.reason) == ("poor", "set in the schema file")


def test_context_override_protects_its_key_when_breaking_a_cycle() -> None:
    tables = [
        table("a", fks=[fk("b_id", "b")], nullable=["b_id"]),
        table("b", fks=[fk("a_id", "a")], nullable=["a_id"]),
    ]
    assert [f.label for f in plan_of(*tables).deferred] == ["a(b_id) -> b(id)"]
    tables[0] = tables[0].model_copy(update={"context": "b"})
    plan = plan_of(*tables)
    assert [f.label for f in plan.deferred] == ["b(a_id) -> a(id)"]
    assert plan.context["a"].parent == "b"


def test_context_override_on_a_deferred_key_is_an_error() -> None:
    with pytest.raises(PlanError, match="'employees': context 'employees'"):
        plan_of(
            table(
                "employees", fks=[fk("manager_id", "employees")], nullable=["manager_id"], context="employees"
            )
        )


def test_same_plan_for_shuffled_input() -> None:
    tables = _random_schema(25, seed=3, cycles=True).tables
    expected = build_plan(DatabaseSchema(tables=tables))
    rng = random.Random(11)
    for _ in range(5):
        shuffled = [
            t.model_copy(update={"foreign_keys": rng.sample(t.foreign_keys, len(t.foreign_keys))})
            for t in tables
        ]
        rng.shuffle(shuffled)
        plan = build_plan(DatabaseSchema(tables=shuffled))
        assert plan.to_json() == expected.to_json()
        assert plan.context == expected.context
        assert plan.deferred == expected.deferred
        assert plan.render_tree() == expected.render_tree()


def test_sixty_table_random_dag_is_ordered_parents_first() -> None:
    schema = _random_schema(60, seed=1, cycles=False)
    plan = build_plan(schema)
    assert sorted(plan.order) == sorted(t.name for t in schema.tables)
    assert len(plan.training_jobs) == 60 and len(set(plan.training_jobs)) == 60
    assert plan.deferred == []
    assert len(plan.generations) > 3
    assert_parents_first(schema, plan)
    for child, choice in plan.context.items():
        parents = {f.ref_table for f in schema.table(child).foreign_keys}
        assert choice.parent in parents


def test_random_graph_with_cycles_is_broken_at_nullable_keys_only() -> None:
    schema = _random_schema(40, seed=5, cycles=True)
    plan = build_plan(schema)
    assert plan.deferred and all(f.nullable for f in plan.deferred)
    assert_parents_first(schema, plan)


def test_to_json_has_the_exact_stable_shape() -> None:
    plan = plan_of(
        table("employees", fks=[fk("manager_id", "employees")], nullable=["manager_id"]),
        table("airports", pk=["faa"]),
        table(
            "flights", fks=[fk("origin", "airports", "faa"), fk("dest", "airports", "faa")], nullable=["dest"]
        ),
    )
    data = plan.to_json()
    assert data == {
        "generations": [["airports", "employees"], ["flights"]],
        "deferred_foreign_keys": [
            {
                "table": "employees",
                "columns": ["manager_id"],
                "references": {"table": "employees", "columns": ["id"]},
            }
        ],
        "context": {"flights": "airports"},
        "one_to_one": [],
        "secondary_foreign_keys": [
            {"table": "flights", "columns": ["dest"], "references": {"table": "airports", "columns": ["faa"]}}
        ],
    }
    assert json.loads(json.dumps(data)) == data


def test_render_tree_draws_children_under_their_context_parent() -> None:
    plan = plan_of(
        table("a"),
        table("b", fks=[fk("a_id", "a")]),
        table("c", fks=[fk("a_id", "a")]),
        table("d", fks=[fk("b_id", "b")]),
    )
    text = plan.render_tree()
    tree = text.split("Context tree")[1].splitlines()[1:]
    assert tree[0].strip() == "a"
    assert tree[1].lstrip().startswith("├── b")
    assert tree[2].lstrip().startswith("│   └── d")
    assert tree[3].lstrip().startswith("└── c")
    assert "1. a" in text and "2. b, c" in text and "3. d" in text


def test_context_choice_and_fkref_are_frozen_values() -> None:
    ref = FkRef("c", ("p_id",), "p", ("id",), True)
    with pytest.raises(AttributeError):
        ref.table = "x"  # type: ignore[misc]
    assert ContextChoice("c", "p", ("p_id",), ("id",), "r") == ContextChoice(
        "c", "p", ("p_id",), ("id",), "r"
    )


def _random_schema(n: int, *, seed: int, cycles: bool) -> DatabaseSchema:
    """``n`` tables t00..; each has 0-3 keys to earlier tables, and with ``cycles`` some nullable back-keys."""
    rng = random.Random(seed)
    names = [f"t{i:02d}" for i in range(n)]
    tables = []
    for i, name in enumerate(names):
        fks = []
        nullable = []
        parents = rng.sample(names[:i], min(i, rng.randint(0, 3)))
        for p in parents:
            fks.append(fk(f"{p}_id", p))
            if rng.random() < 0.3:
                nullable.append(f"{p}_id")
        if cycles and i < n - 1 and rng.random() < 0.25:
            later = rng.choice(names[i + 1 :])
            fks.append(fk(f"{later}_id", later))
            nullable.append(f"{later}_id")  # a back-key: always nullable so the cycle can be broken
        tables.append(table(name, fks=fks, nullable=nullable, extra=rng.randint(0, 4)))
    return DatabaseSchema(tables=tables)
