"""The zoo of real schema shapes, each database run end to end (real Ray, real Spark) into the same dialect.

Per (database, dialect): the source is built from the zoo's seeded generator, ``run_pipeline`` writes a second
fresh database, and SQL on that target counts duplicate primary and unique keys and orphaned foreign keys (all must
be 0) and compares every table's rows with the source's (within 0.98..1.02). Cheap checks of the real data ride
along: learned timestamp key members stay on their grid (hourly), and a 90%-childless parent stays so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from zoo import ZOO, ZooDatabase
from zoo.checks import childless_share, off_grid, row_counts, row_ratios, zoo_violations

from pipelines.run import run_pipeline
from schemas.config import load_config

pytestmark = pytest.mark.usefixtures("ray_session")

RATIO_LOW, RATIO_HIGH = 0.98, 1.02
CHILDLESS_TOLERANCE = 0.05
SEED = 5

#: MariaDB runs for the two zoo databases first published for MySQL (the Employees sample) or ported to it early
_MARIADB = ("employees", "northwind")
CASES = [
    pytest.param(
        name, dialect, "copula", id=f"{name}-{dialect}", marks=[pytest.mark.server] if dialect != "sqlite" else []
    )
    for name in ZOO
    for dialect in ("sqlite", "postgresql", *(("mariadb",) if name in _MARIADB else ()))
]
#: the neural model (and auto's choice) on every zoo database, into SQLite: keys and sizes hold whatever the model
CASES += [pytest.param(name, "sqlite", model, id=f"{name}-sqlite-{model}") for name in ZOO for model in ("neural", "auto")]
NEURAL_BUDGET_S = 20  # seconds per table: the zoo's tables are small, and early stopping usually comes first


def _source(request: pytest.FixtureRequest, dialect: str) -> str:
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mariadb": "mariadb_url"}[dialect]
    return str(request.getfixturevalue(fixture))


def _real_data_problems(db: ZooDatabase, source: str, target: str) -> list[str]:
    problems = []
    for table, (column, seconds) in db.timestamp_grids.items():
        n_real_off, n_real, _ = off_grid(source, table, column, seconds)
        assert n_real and n_real_off == 0, f"the zoo's own {table}.{column} is off its {seconds}s grid"
        n_off, n, examples = off_grid(target, table, column, seconds)
        if n_off or not n:
            problems.append(
                f"{n_off} of {n} {table}.{column} values off the {seconds}s grid, e.g. {examples}"
            )
    for (parent, child, fk_column), expected in db.childless.items():
        key = db.primary_keys[parent][0]
        real = childless_share(source, parent, key, child, fk_column)
        assert abs(real - expected) < 0.01, (
            f"the zoo's own {parent} is {real:.1%} childless, not {expected:.0%}"
        )
        synth = childless_share(target, parent, key, child, fk_column)
        if abs(synth - real) > CHILDLESS_TOLERANCE:
            problems.append(f"{parent} without {child}: {synth:.1%} synthetic vs {real:.1%} real")
    return problems


@pytest.mark.parametrize(("name", "dialect", "model"), CASES)
def test_zoo_database_round_trip_keeps_every_key_and_every_table_size(
    name: str,
    dialect: str,
    model: str,
    request: pytest.FixtureRequest,
    second_db: Callable[[str], str],
    tmp_path: Path,
) -> None:
    db = ZOO[name]
    source = _source(request, dialect)
    target = second_db(dialect)
    built = db.create(source, seed=SEED)
    real = row_counts(source, db.tables)
    assert real == built  # the builder wrote what it generated
    config = load_config(
        None,
        overrides={
            "source.url": source,
            "target.url": target,
            "runs_dir": str(tmp_path / "runs"),
            "generation.seed": SEED,
            "training.model": model,
            "training.time_budget_s": NEURAL_BUDGET_S,
        },
        environ={},
    )
    result = run_pipeline(config)
    assert result.validation_success is True, result.validation_failures

    violations = zoo_violations(target, db)
    synth = row_counts(target, db.tables)
    ratios = row_ratios(real, synth)
    off_ratio = {
        t: f"{r:.3f} ({synth[t]}/{real[t]})" for t, r in ratios.items() if not RATIO_LOW <= r <= RATIO_HIGH
    }
    problems = violations.problems()
    problems += [
        f"{t}: synthetic/real rows {r} outside {RATIO_LOW}..{RATIO_HIGH}" for t, r in off_ratio.items()
    ]
    problems += _real_data_problems(db, source, target)
    assert not problems, f"{name} on {dialect}:\n  " + "\n  ".join(problems)
