"""A spec's declared ranges against its simple CHECK constraints (pipelines._internal.spec_checks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines._internal.spec_checks import Bound, simple_bounds
from pipelines.spec import load_spec
from schemas.errors import SchemaError


@pytest.mark.parametrize(
    ("sqltext", "bounds"),
    [
        ("age >= 18", [Bound("age", ">=", 18.0)]),
        ("(age > 17)", [Bound("age", ">", 17.0)]),
        ("0 <= e", [Bound("e", ">=", 0.0)]),
        ("`d` < -5.5e1", [Bound("d", "<", -55.0)]),  # MariaDB
        ("`b` between 0.5 and 10", [Bound("b", ">=", 0.5), Bound("b", "<=", 10.0)]),  # MariaDB
        ('"Age" BETWEEN 1 AND 5', [Bound("Age", ">=", 1.0), Bound("Age", "<=", 5.0)]),
        # PostgreSQL: BETWEEN comes back as AND, negative and mixed-type literals with casts
        ("b >= 0.5::double precision AND b <= 10::double precision", [Bound("b", ">=", 0.5), Bound("b", "<=", 10.0)]),
        ("c > '-1'::integer::numeric", [Bound("c", ">", -1.0)]),
        ("((a)::numeric >= 18.5)", [Bound("a", ">=", 18.5)]),
    ],
)
def test_simple_checks_are_read_in_every_dialects_spelling(sqltext: str, bounds: list[Bound]) -> None:
    assert simple_bounds(sqltext) == bounds


@pytest.mark.parametrize(
    "sqltext",
    ["g > 0 OR g IS NULL", "a NOT BETWEEN 1 AND 2", "length(a) > 3", "a > b", "a >= 1 AND a IS NOT NULL",
     "json_valid(`x`)", "signup >= '2020-01-01'"],
)
def test_anything_more_complex_is_left_to_the_database(sqltext: str) -> None:
    assert simple_bounds(sqltext) is None


SPEC = """\
version: 1
dialect: sqlite
tables:
  - name: t
    columns:
      - {name: id, type: INTEGER, nullable: false, kind: id}
      - {name: n, type: INTEGER, nullable: false, kind: numeric}
      - {name: x, type: DOUBLE PRECISION, nullable: true, kind: numeric}
    primary_key: [id]
    checks:
      - {sqltext: CHECK_TEXT}
distributions:
  t:
    rows: 10
    columns:
      n: N_DECL
      x: {min: 0, max: 1}
"""


def _problems(tmp_path: Path, check: str, n: str) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("CHECK_TEXT", check).replace("N_DECL", n), encoding="utf-8")
    try:
        load_spec(path)
    except SchemaError as exc:
        return list(exc.problems)
    return []


@pytest.mark.parametrize(
    ("check", "n"),
    [
        ("n >= 18", "{min: 18, max: 95}"),
        ("n >= 18", "{min: 17.6, max: 95}"),  # an integer column: 17.6 is stored as 18
        ("n > 17", "{quantiles: [18, 30, 95]}"),
        ("n BETWEEN 1 AND 3", "{values: {1: 0.5, 3: 0.5}}"),
        ("n >= 0", "{distribution: lognormal, mu: 1, sigma: 1}"),  # a lognormal is above 0
        ("n > 0 OR n IS NULL", "{distribution: normal, mean: 0, sd: 1}"),  # not simple: left to the database
    ],
)
def test_a_range_the_check_allows_loads(tmp_path: Path, check: str, n: str) -> None:
    assert _problems(tmp_path, check, n) == []


@pytest.mark.parametrize(
    ("check", "n", "expected"),
    [
        ("n >= 18", "{min: 16, max: 95}", ("min 16 breaks the table's check `n >= 18`: values below 18 would be "
                                            "refused by the database at the write; set min to at least 18, or "
                                            "change the check")),
        ("n > 17", "{min: 17, max: 95}", "set min to at least 18"),
        ("n < 90", "{quantiles: [18, 30, 95]}", "the last quantile 95 breaks the table's check `n < 90`"),
        ("n BETWEEN 1 AND 3", "{values: {0: 0.5, 3: 0.5}}", "the value 0 breaks the table's check"),
        ("n >= 0", "{distribution: normal, mean: 40, sd: 10}",
         "a normal distribution without min (it reaches below 0) breaks the table's check `n >= 0`"),
    ],
)
def test_a_range_the_check_refuses_is_a_problem_with_its_line(
    tmp_path: Path, check: str, n: str, expected: str
) -> None:
    problems = _problems(tmp_path, check, n)
    assert len(problems) == 1, problems
    assert "spec.yaml:16: table 't', column 'n': " in problems[0]
    assert expected in problems[0], problems[0]
