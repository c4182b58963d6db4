"""subset: seeds, downward and upward closure of real subset tables, on small Parquet files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.stages.subset import subset_positions
from schemas.config import TableGeneration
from schemas.errors import ConfigError
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from schemas.plan import build_plan
from synth_engine import derive_seed


def fk(columns: str | Sequence[str], ref_table: str, ref_columns: str | Sequence[str] = "id") -> ForeignKey:
    cols = [columns] if isinstance(columns, str) else list(columns)
    refs = [ref_columns] if isinstance(ref_columns, str) else list(ref_columns)
    return ForeignKey(columns=cols, ref_table=ref_table, ref_columns=refs)


def table(
    name: str, *, fks: Iterable[ForeignKey] = (), pk: Sequence[str] = ("id",), nullable: Iterable[str] = ()
) -> Table:
    """A table of INTEGER key columns plus one learnable ``v`` column."""
    fks = list(fks)
    nullable = set(nullable)
    names = list(pk)
    for f in fks:
        names += [c for c in f.columns if c not in names]
    columns = [Column(name=n, type="INTEGER", nullable=n in nullable, kind=Kind.ID) for n in names]
    columns.append(Column(name="v", type="DOUBLE", kind=Kind.NUMERIC))
    return Table(name=name, columns=columns, primary_key=PrimaryKey(columns=list(pk)), foreign_keys=fks)


def write(tmp_path: Path, name: str, columns: dict[str, pl.Series], parts: int = 1) -> list[Path]:
    """The table as ``parts`` Parquet files (rows split in order), with a ``v`` column."""
    frame = pl.DataFrame(columns)
    frame = frame.with_columns(pl.Series("v", np.arange(frame.height, dtype=np.float64)))
    bounds = np.linspace(0, frame.height, parts + 1).astype(int)
    paths = []
    for i in range(parts):
        path = tmp_path / f"{name}-{i}.parquet"
        frame.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i])).write_parquet(path)
        paths.append(path)
    return paths


def ints(values: Iterable[int | None], dtype: type[pl.DataType] = pl.Int64) -> pl.Series:
    return pl.Series(list(values), dtype=dtype)


def run(
    schema: DatabaseSchema,
    sources: Mapping[str, list[Path]],
    seeds: Mapping[str, TableGeneration],
    *,
    subset: Iterable[str] | None = None,
    seed: int = 7,
) -> dict[str, np.ndarray]:
    assert schema.problems() == []
    tables = list(subset) if subset is not None else list(sources)
    out = subset_positions(schema, build_plan(schema), tables, sources, seeds, seed=seed)
    assert set(out) == set(tables)
    for positions in out.values():
        assert positions.dtype == np.int64
        assert np.all(np.diff(positions) > 0)
    assert_closed(schema, sources, out)
    return out


def read(paths: Sequence[Path]) -> pl.DataFrame:
    return pl.read_parquet(paths).with_row_index("pos").with_columns(pl.col("pos").cast(pl.Int64))


def assert_closed(
    schema: DatabaseSchema, sources: Mapping[str, list[Path]], kept: Mapping[str, np.ndarray]
) -> None:
    """Every non-NULL foreign key of a kept row, between subset tables, points at a kept row."""
    for child, key in schema.iter_foreign_keys():
        if child.name not in kept or key.ref_table not in kept:
            continue
        rows = read(sources[child.name]).filter(pl.col("pos").is_in(kept[child.name].tolist()))
        parent = read(sources[key.ref_table]).filter(pl.col("pos").is_in(kept[key.ref_table].tolist()))
        have = {tuple(r) for r in parent.select(key.ref_columns).iter_rows()}
        for r in rows.select(key.columns).iter_rows():
            if all(v is not None for v in r):
                assert tuple(r) in have, f"{child.name}{key.label}: {r} points at no kept row"


def _seed_rows(name: str, total: int, n: int, *, seed: int) -> list[int]:
    """The rows a seed table draws, as the module docstring specifies (PCG64 on derive_seed(seed, table, "subset"))."""
    rng = np.random.Generator(np.random.PCG64(derive_seed(seed, name, "subset")))
    return sorted(int(i) for i in rng.choice(total, size=n, replace=False))


def rows_where(paths: Sequence[Path], predicate: pl.Expr) -> list[int]:
    return read(paths).filter(predicate)["pos"].to_list()


# A root, its child and grandchild: customers -> orders -> items.
def shop(tmp_path: Path, n: int = 40) -> tuple[DatabaseSchema, dict[str, list[Path]]]:
    schema = DatabaseSchema(
        tables=[
            table("customers"),
            table("orders", fks=[fk("customer_id", "customers")]),
            table("items", fks=[fk("order_id", "orders")]),
        ]
    )
    rng = np.random.default_rng(0)
    sources = {
        "customers": write(tmp_path, "customers", {"id": ints(range(100, 100 + n))}),
        "orders": write(
            tmp_path,
            "orders",
            {"id": ints(range(3 * n)), "customer_id": ints(rng.integers(100, 100 + n, 3 * n).tolist())},
            parts=2,
        ),
        "items": write(
            tmp_path,
            "items",
            {"id": ints(range(6 * n)), "order_id": ints(rng.integers(0, 3 * n, 6 * n).tolist())},
        ),
    }
    return schema, sources


def test_seeded_root_is_followed_by_child_and_grandchild(tmp_path: Path) -> None:
    schema, sources = shop(tmp_path)
    out = run(schema, sources, {"customers": TableGeneration(share=0.5)})
    assert len(out["customers"]) == 20
    customer_ids = [100 + int(p) for p in out["customers"]]
    # positions of orders count across both files
    assert out["orders"].tolist() == rows_where(sources["orders"], pl.col("customer_id").is_in(customer_ids))
    order_ids = read(sources["orders"])["id"].gather(out["orders"]).to_list()
    assert out["items"].tolist() == rows_where(sources["items"], pl.col("order_id").is_in(order_ids))
    assert 0 < len(out["items"]) < 240


def test_undriven_lookup_holds_only_referenced_rows(tmp_path: Path) -> None:
    schema = DatabaseSchema(
        tables=[table("countries"), table("customers", fks=[fk("country_id", "countries")])]
    )
    sources = {
        "countries": write(tmp_path, "countries", {"id": ints(range(50))}),
        "customers": write(
            tmp_path,
            "customers",
            {"id": ints(range(30)), "country_id": ints([i % 10 * 3 for i in range(30)])},
        ),
    }
    out = run(schema, sources, {"customers": TableGeneration(rows=4)})
    assert len(out["customers"]) == 4
    referenced = sorted({i % 10 * 3 for i in out["customers"].tolist()})
    assert out["countries"].tolist() == referenced  # country id == its position


def test_self_reference_pulls_the_manager_chain(tmp_path: Path) -> None:
    schema = DatabaseSchema(
        tables=[
            table("employee", fks=[fk("manager_id", "employee")], nullable=["manager_id"]),
            table("tasks", fks=[fk("employee_id", "employee")]),
        ]
    )
    n = 12
    sources = {
        # employee i reports to i - 1; employee 0 to nobody
        "employee": write(
            tmp_path, "employee", {"id": ints(range(n)), "manager_id": ints([None, *range(n - 1)])}
        ),
        "tasks": write(tmp_path, "tasks", {"id": ints(range(n)), "employee_id": ints(range(n))}),
    }
    out = run(schema, sources, {"tasks": TableGeneration(rows=1)})
    (task,) = out["tasks"].tolist()
    assert out["employee"].tolist() == list(range(task + 1))


def test_self_reference_on_a_seed_table(tmp_path: Path) -> None:
    schema = DatabaseSchema(
        tables=[table("employee", fks=[fk("manager_id", "employee")], nullable=["manager_id"])]
    )
    # two chains: 0 <- 1 <- ... <- 9 and 10 <- 11 <- ... <- 19
    managers = [None if i % 10 == 0 else i - 1 for i in range(20)]
    sources = {"employee": write(tmp_path, "employee", {"id": ints(range(20)), "manager_id": ints(managers)})}
    seeds = {"employee": TableGeneration(rows=2)}
    out = run(schema, sources, seeds)
    drawn = _seed_rows("employee", 20, 2, seed=7)
    expected = {m for e in drawn for m in range(e // 10 * 10, e + 1)}
    assert out["employee"].tolist() == sorted(expected)


def test_two_tables_that_reference_each_other(tmp_path: Path) -> None:
    schema = DatabaseSchema(
        tables=[
            table("a", fks=[fk("b_id", "b")], nullable=["b_id"]),
            table("b", fks=[fk("a_id", "a")], nullable=["a_id"]),
        ]
    )
    n = 10
    # a_i -> b_i -> a_(i+1) -> ... -> b_(n-1) -> NULL: reaching the end takes many rounds of closure
    sources = {
        "a": write(tmp_path, "a", {"id": ints(range(n)), "b_id": ints(range(n))}),
        "b": write(tmp_path, "b", {"id": ints(range(n)), "a_id": ints([*range(1, n), None])}),
    }
    out = run(schema, sources, {"a": TableGeneration(rows=1)})
    first = int(out["a"][0])
    assert set(range(first, n)) <= set(out["a"].tolist())
    assert set(range(first, n)) <= set(out["b"].tolist())


def test_composite_foreign_key_with_different_integer_types(tmp_path: Path) -> None:
    schema = DatabaseSchema(
        tables=[
            table("sites", pk=["region", "code"]),
            table("visits", fks=[fk(["region", "code"], "sites", ["region", "code"])]),
        ]
    )
    regions = [r for r in range(3) for _ in range(4)]
    codes = [c for _ in range(3) for c in range(4)]
    sources = {
        "sites": write(tmp_path, "sites", {"region": ints(regions), "code": ints(codes)}),
        # the child's keys are INT32 where the parent's are INT64
        "visits": write(
            tmp_path,
            "visits",
            {"id": ints(range(3)), "region": ints([0, 2, 1], pl.Int32), "code": ints([3, 1, 3], pl.Int32)},
        ),
    }
    out = run(schema, sources, {"visits": TableGeneration(share=1.0)})
    assert out["visits"].tolist() == [0, 1, 2]
    # (0, 3), (2, 1), (1, 3): matched on both columns, not on code alone
    assert out["sites"].tolist() == [3, 7, 9]


def test_downward_composite_key_and_string_keys(tmp_path: Path) -> None:
    schema = DatabaseSchema(
        tables=[
            Table(
                name="sites",
                columns=[Column(name="region", type="VARCHAR(5)"), Column(name="code", type="INTEGER")],
                primary_key=PrimaryKey(columns=["region", "code"]),
            ),
            Table(
                name="visits",
                columns=[
                    Column(name="id", type="INTEGER"),
                    Column(name="region", type="VARCHAR(5)", nullable=True),
                    Column(name="code", type="BIGINT", nullable=True),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[fk(["region", "code"], "sites", ["region", "code"])],
            ),
        ]
    )
    sources = {
        "sites": write(
            tmp_path,
            "sites",
            {"region": pl.Series(["n", "n", "s", "s"]), "code": ints([1, 2, 1, 2], pl.Int32)},
        ),
        "visits": write(
            tmp_path,
            "visits",
            {
                "id": ints(range(6)),
                "region": pl.Series(["n", "n", "s", "s", None, "s"]),
                "code": ints([1, 2, 1, 2, 1, None]),
            },
        ),
    }
    out = run(schema, sources, {"sites": TableGeneration(rows=4)})
    assert out["visits"].tolist() == list(range(6))  # every site kept, partially NULL keys kept too
    one = subset_positions(
        schema, build_plan(schema), ["sites", "visits"], sources, {"sites": TableGeneration(rows=1)}, seed=3
    )
    (site,) = one["sites"].tolist()
    region, code = ["n", "n", "s", "s"][site], [1, 2, 1, 2][site]
    visits = read(sources["visits"])
    matching = visits.filter((pl.col("region") == region) & (pl.col("code") == code))["pos"].to_list()
    assert one["visits"].tolist() == sorted([*matching, 4, 5])


def test_null_foreign_keys_are_kept_and_pull_nothing(tmp_path: Path) -> None:
    schema = DatabaseSchema(
        tables=[
            table("customers"),
            table("lookup"),
            table(
                "orders",
                fks=[fk("customer_id", "customers"), fk("lookup_id", "lookup")],
                nullable=["customer_id", "lookup_id"],
            ),
        ]
    )
    sources = {
        "customers": write(tmp_path, "customers", {"id": ints(range(4))}),
        "lookup": write(tmp_path, "lookup", {"id": ints(range(4))}),
        "orders": write(
            tmp_path,
            "orders",
            {
                "id": ints(range(6)),
                "customer_id": ints([0, 1, None, 2, None, 3]),
                "lookup_id": ints([None] * 6),
            },
        ),
    }
    seeds = {"customers": TableGeneration(rows=1)}
    out = run(schema, sources, seeds)
    (customer,) = out["customers"].tolist()
    expected = sorted([2, 4, *rows_where(sources["orders"], pl.col("customer_id") == customer)])
    assert out["orders"].tolist() == expected
    assert out["lookup"].tolist() == []  # undriven, and every key into it is NULL


def test_two_seeds_and_a_child_of_both(tmp_path: Path) -> None:
    schema, sources = shop(tmp_path)
    out = run(schema, sources, {"customers": TableGeneration(share=0.5), "items": TableGeneration(rows=5)})
    assert len(out["items"]) == 5
    # the seeded items pull their orders, which pull their customers
    orders = read(sources["orders"])
    item_orders = read(sources["items"])["order_id"].gather(out["items"]).to_list()
    assert set(rows_where(sources["orders"], pl.col("id").is_in(item_orders))) <= set(out["orders"].tolist())
    needed = orders.filter(pl.col("id").is_in(item_orders))["customer_id"].to_list()
    assert {c - 100 for c in needed} <= set(out["customers"].tolist())


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    schema, sources = shop(tmp_path, n=400)
    seeds = {"customers": TableGeneration(share=0.5)}
    first = run(schema, sources, seeds, seed=1)
    again = run(schema, sources, seeds, seed=1)
    other = run(schema, sources, seeds, seed=2)
    for name in first:
        assert np.array_equal(first[name], again[name])
    assert not np.array_equal(first["customers"], other["customers"])
    assert len(other["customers"]) == len(first["customers"]) == 200


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (TableGeneration(share=0.5, rows=7), 7),
        (TableGeneration(rows=9), 9),
        (TableGeneration(rows=1000), 40),
        (TableGeneration(share=0.001), 1),
        (TableGeneration(share=0.3), 12),
        (TableGeneration(share=1.0), 40),
    ],
)
def test_share_and_rows_cap(tmp_path: Path, settings: TableGeneration, expected: int) -> None:
    schema, sources = shop(tmp_path)
    out = run(schema, sources, {"customers": settings})
    assert len(out["customers"]) == expected


def test_keys_into_tables_outside_the_subset_are_not_followed(tmp_path: Path) -> None:
    schema, sources = shop(tmp_path)
    subset_sources = {"orders": sources["orders"], "items": sources["items"]}
    out = run(schema, subset_sources, {"orders": TableGeneration(rows=3)})
    assert set(out) == {"orders", "items"}
    assert len(out["orders"]) == 3  # customers is not a subset table: its key filters nothing


def test_seed_on_a_table_outside_the_subset_is_refused(tmp_path: Path) -> None:
    schema, sources = shop(tmp_path)
    with pytest.raises(ConfigError, match="'items'"):
        subset_positions(
            schema,
            build_plan(schema),
            ["customers", "orders"],
            sources,
            {"customers": TableGeneration(share=0.5), "items": TableGeneration(rows=3)},
            seed=0,
        )


def test_subset_without_a_seed_is_refused(tmp_path: Path) -> None:
    schema, sources = shop(tmp_path)
    with pytest.raises(ConfigError, match=r"generation\.tables\.<t>\.share or rows"):
        subset_positions(
            schema,
            build_plan(schema),
            ["customers", "orders"],
            sources,
            {"orders": TableGeneration()},
            seed=0,
        )
