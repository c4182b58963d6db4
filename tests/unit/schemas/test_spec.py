"""The spec's distributions block: every problem named with its file, line, table and column, raised once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.spec import count_quantiles, load_spec
from schemas.errors import SchemaError
from schemas.spec import ChildrenSpec

SCHEMA = """\
version: 1
dialect: sqlite
tables:
  - name: customers
    columns:
      - {name: id, type: INTEGER, nullable: false, kind: id}
      - {name: segment, type: VARCHAR(10), nullable: false, kind: categorical}
      - {name: age, type: INTEGER, nullable: true, kind: numeric}
    primary_key: [id]
  - name: orders
    columns:
      - {name: id, type: INTEGER, nullable: false, kind: id}
      - {name: customer_id, type: INTEGER, nullable: false, kind: id}
      - {name: amount, type: DOUBLE PRECISION, nullable: false, kind: numeric}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
"""

GOOD = """\
distributions:
  customers:
    rows: 100
    columns:
      segment: {values: {a: 0.7, b: 0.3}}
      age: {distribution: normal, mean: 40, sd: 10, min: 18, max: 90, null: 0.1}
  orders:
    children:
      customer_id: {counts: {0: 0.5, 2: 0.5}}
    columns:
      amount: {quantiles: [1, 10, 100]}
"""


def _write(tmp_path: Path, distributions: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SCHEMA + distributions, encoding="utf-8")
    return path


def test_a_valid_spec_loads_with_its_distributions(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, GOOD))
    customers = spec.tables["customers"]
    assert customers.rows == 100
    assert customers.columns["segment"].values == (("a", 0.7), ("b", 0.3))
    assert customers.columns["age"].null == 0.1  # a bare `null:` key is the NULL share
    assert customers.columns["age"].params == {"mean": 40.0, "sd": 10.0}
    assert list(spec.tables["orders"].children) == ["orders(customer_id) -> customers(id)"]


def test_unknown_column_bad_shares_and_min_above_max_are_all_reported_with_lines(tmp_path: Path) -> None:
    bad = GOOD.replace("segment: {values: {a: 0.7, b: 0.3}}", "segment: {values: {a: 0.7, b: 0.2}}")
    bad = bad.replace("min: 18, max: 90", "min: 90, max: 18")
    bad = bad.replace("amount: {quantiles: [1, 10, 100]}", "amount: {quantiles: [1, 10, 100]}\n      amonut: {min: 1}")
    path = _write(tmp_path, bad)
    with pytest.raises(SchemaError) as err:
        load_spec(path)
    problems = err.value.problems
    assert err.value.exit_code == 2
    lines = SCHEMA.count("\n")
    shares = next(p for p in problems if "sum to" in p)
    assert shares.startswith(f"{path}:{lines + 5}: table 'customers', column 'segment'") and "0.9" in shares
    swapped = next(p for p in problems if "greater than max" in p)
    assert swapped.startswith(f"{path}:{lines + 6}: table 'customers', column 'age'")
    unknown = next(p for p in problems if "amonut" in p)
    assert "table 'orders', column 'amonut'" in unknown and "did you mean 'amount'" in unknown


def test_missing_distributions_and_children_say_what_to_add(tmp_path: Path) -> None:
    path = _write(tmp_path, "distributions:\n  customers:\n    columns:\n      segment: {values: {a: 1}}\n")
    with pytest.raises(SchemaError) as err:
        load_spec(path)
    text = err.value.message
    assert "table 'customers': a root table needs its row count" in text
    assert "table 'customers', column 'age': its numeric distribution is not declared" in text
    assert "children per parent of its context foreign key orders(customer_id) -> customers(id)" in text


def test_a_broken_schema_part_keeps_its_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(GOOD + SCHEMA.replace("kind: numeric}", "kind: numerc}", 1), encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        load_spec(path)
    line = GOOD.count("\n") + SCHEMA.splitlines().index(
        "      - {name: age, type: INTEGER, nullable: true, kind: numeric}"
    ) + 1
    assert f"{path}:{line}: table 'customers', column 'age': unknown kind 'numerc'" in err.value.message


def test_null_share_on_a_not_null_column_and_values_on_a_key_are_refused(tmp_path: Path) -> None:
    bad = GOOD.replace("segment: {values: {a: 0.7, b: 0.3}}", "segment: {values: {a: 0.7, b: 0.3}, null_share: 0.2}")
    bad = bad.replace("    columns:\n      amount", "    columns:\n      id: {values: {1: 1.0}}\n      amount")
    with pytest.raises(SchemaError) as err:
        load_spec(_write(tmp_path, bad))
    text = err.value.message
    assert "table 'customers', column 'segment': null_share is 0.2 but the column is NOT NULL" in text
    assert "table 'orders', column 'id': is generated as a unique key" in text


def test_count_quantiles_follow_the_declared_histogram() -> None:
    counts = count_quantiles(ChildrenSpec(counts=((0, 0.25), (1, 0.5), (4, 0.25))), n=1000)
    assert (counts == 0).mean() == 0.25 and (counts == 1).mean() == 0.5 and (counts == 4).mean() == 0.25
