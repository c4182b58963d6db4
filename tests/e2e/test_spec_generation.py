"""Schema-only generation: a spec (schema + declared distributions) becomes a database, with no real data.

Real Ray and Spark. The spec's shares, NULL shares, ranges and children per parent are followed, every key is
valid, a bad spec is refused naming its table and column, and `inspect --profile-only` writes aggregates only.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.spec import run_spec
from schemas.config import load_config

pytestmark = pytest.mark.usefixtures("ray_session")
runner = CliRunner()

SPEC = """\
version: 1
dialect: sqlite
tables:
  - name: customers
    columns:
      - {name: id, type: INTEGER, nullable: false, kind: id}
      - {name: code, type: VARCHAR(12), nullable: false, kind: id}
      - {name: segment, type: VARCHAR(10), nullable: false, kind: categorical}
      - {name: age, type: INTEGER, nullable: true, kind: numeric}
      - {name: income, type: DOUBLE PRECISION, nullable: true, kind: numeric}
      - {name: signup, type: DATE, nullable: true, kind: date}
      - {name: email, type: VARCHAR(60), nullable: true, kind: email}
    primary_key: [id]
    unique: [[code]]
    checks:
      - {sqltext: age >= 18}
  - name: orders
    columns:
      - {name: id, type: INTEGER, nullable: false, kind: id}
      - {name: customer_id, type: INTEGER, nullable: false, kind: id}
      - {name: amount, type: DOUBLE PRECISION, nullable: false, kind: numeric}
      - {name: status, type: VARCHAR(10), nullable: true, kind: categorical}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: customers, columns: [id]}
distributions:
  customers:
    rows: 800
    columns:
      code: {format: {style: counter, prefix: "C-"}}
      segment: {values: {retail: 0.6, business: 0.3, public: 0.1}}
      age: {distribution: normal, mean: 41, sd: 12, min: 18, max: 95, null_share: 0.05}
      income: {quantiles: [12000, 25000, 40000, 61000, 150000], null_share: 0.1}
      signup: {min: 2020-01-01, max: 2024-12-31}
      email: {null_share: 0.2}
  orders:
    children:
      customer_id: {counts: {0: 0.2, 1: 0.3, 2: 0.3, 5: 0.2}}
    columns:
      amount: {distribution: lognormal, mu: 3.5, sigma: 0.8, max: 5000}
      status: {values: {paid: 0.9, refunded: 0.1}, null_share: 0.05}
"""


def _config(tmp_path: Path, target: Path, **extra: object) -> object:
    return load_config(
        None,
        overrides={"target.url": f"sqlite:///{target}", "runs_dir": str(tmp_path / "runs"), **extra},
        environ={},
    )


def test_a_hand_written_spec_gives_a_database_that_follows_it(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    target = tmp_path / "out.sqlite"
    result = run_spec(spec, _config(tmp_path, target, **{"generation.seed": 5}))
    assert result.validation_success is True
    con = sqlite3.connect(target)
    q = lambda sql: con.execute(sql).fetchall()
    assert q("SELECT COUNT(*) FROM customers") == [(800,)]
    # every key valid: unique primary and unique keys, no orphan
    assert q("SELECT COUNT(DISTINCT id), COUNT(DISTINCT code) FROM customers") == [(800, 800)]
    assert all(c.startswith("C-") for (c,) in q("SELECT code FROM customers"))
    assert q("SELECT COUNT(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id WHERE c.id IS NULL") == [(0,)]
    # category shares, NULL shares and ranges
    shares = dict(q("SELECT segment, COUNT(*) / 800.0 FROM customers GROUP BY segment"))
    assert set(shares) == {"retail", "business", "public"}
    assert abs(shares["retail"] - 0.6) < 0.05 and abs(shares["public"] - 0.1) < 0.03
    (age_null, income_null, email_null), = q(
        "SELECT AVG(age IS NULL), AVG(income IS NULL), AVG(email IS NULL) FROM customers"
    )
    assert abs(age_null - 0.05) < 0.03 and abs(income_null - 0.1) < 0.03 and abs(email_null - 0.2) < 0.04
    (lo, hi, mean), = q("SELECT MIN(age), MAX(age), AVG(age) FROM customers")
    assert lo >= 18 and hi <= 95 and abs(mean - 41) < 2.5
    incomes = np.array([r[0] for r in q("SELECT income FROM customers WHERE income IS NOT NULL")])
    assert incomes.min() >= 12000 and incomes.max() <= 150000 and abs(np.median(incomes) - 40000) < 3000
    (first, last), = q("SELECT MIN(signup), MAX(signup) FROM customers")
    assert first >= "2020-01-01" and last <= "2024-12-31"
    assert q("SELECT COUNT(*) FROM customers WHERE email IS NOT NULL AND email NOT LIKE '%@%'") == [(0,)]
    # children per parent, zeros included
    per_parent = dict(q(
        "SELECT n, COUNT(*) FROM (SELECT c.id, COUNT(o.id) AS n FROM customers c "
        "LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id) GROUP BY n"
    ))
    assert set(per_parent) == {0, 1, 2, 5}
    for k, share in {0: 0.2, 1: 0.3, 2: 0.3, 5: 0.2}.items():
        assert abs(per_parent[k] / 800 - share) < 0.03, per_parent
    (paid,), = q("SELECT AVG(status = 'paid') FROM orders WHERE status IS NOT NULL")
    assert abs(paid - 0.9) < 0.03
    # the same seed gives the same database
    again = tmp_path / "again.sqlite"
    run_spec(spec, _config(tmp_path, again, **{"generation.seed": 5}))
    other = sqlite3.connect(again)
    for table in ("customers", "orders"):
        sql = f"SELECT * FROM {table} ORDER BY id"
        assert con.execute(sql).fetchall() == other.execute(sql).fetchall()


def test_a_bad_spec_exits_2_naming_table_and_column(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    bad = SPEC.replace("public: 0.1}", "public: 0.3}").replace("min: 18, max: 95", "min: 95, max: 18")
    bad = bad.replace("      email: {null_share: 0.2}", "      emial: {null_share: 0.2}")
    spec.write_text(bad, encoding="utf-8")
    target = tmp_path / "out.sqlite"
    res = runner.invoke(app, ["generate", "--spec", str(spec), "--target", f"sqlite:///{target}",
                              "--runs-dir", str(tmp_path / "runs")])
    out = " ".join(res.output.split())
    assert res.exit_code == 2, out
    assert "Traceback" not in out
    assert "table 'customers', column 'segment': the shares sum to 1.2, not 1" in out
    assert "table 'customers', column 'age': min 95 is greater than max 18" in out
    assert "table 'customers', column 'emial'" in out and "did you mean 'email'" in out
    assert re.search(r"spec\.yaml:\d+: table 'customers', column 'segment'", out)
    assert not target.exists() and not (tmp_path / "runs").exists()  # refused before anything started


#: the spec's dialect per target: the same family, so that the CHECK `age >= 18` is written and enforced there
_SERVER_DIALECTS = {"postgresql": "postgresql", "mariadb": "mysql"}
#: orders declared by the children per customer: 800 x (0.3 x 1 + 0.3 x 2 + 0.2 x 5)
_ORDERS = 1520


@pytest.mark.server
@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_a_spec_generated_into_a_server_has_every_key_valid(
    dialect: str, second_db: Callable[[str], str], tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("dialect: sqlite", f"dialect: {_SERVER_DIALECTS[dialect]}"), encoding="utf-8")
    url = second_db(dialect)  # a fresh, empty database: `if_exists: fail` lets the run write it
    config = load_config(
        None,
        overrides={"target.url": url, "target.if_exists": "fail", "runs_dir": str(tmp_path / "runs"),
                   "generation.seed": 5},
        environ={},
    )
    result = run_spec(spec, config)
    assert result.validation_success is True, result.validation_failures
    engine = sa.create_engine(url)
    try:
        with engine.connect() as con:
            q = lambda sql: con.execute(sa.text(sql)).one()
            assert q("SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT code) FROM customers") == (800, 800, 800)
            orders, distinct = q("SELECT COUNT(*), COUNT(DISTINCT id) FROM orders")
            assert orders == distinct
            assert abs(orders - _ORDERS) <= 0.02 * _ORDERS, orders
            assert q("SELECT COUNT(*) FROM customers WHERE id IS NULL OR code IS NULL") == (0,)
            assert q(
                "SELECT COUNT(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id WHERE c.id IS NULL"
            ) == (0,)
            assert q("SELECT COUNT(*) FROM orders WHERE customer_id IS NULL") == (0,)
            assert q("SELECT COUNT(*) FROM customers WHERE age < 18") == (0,)
            # the check came with the spec's dialect: the database itself enforces it on the written table
            (checks,) = q(
                "SELECT COUNT(*) FROM information_schema.check_constraints WHERE "
                + ("constraint_schema = 'public'" if dialect == "postgresql"
                   else "constraint_schema = DATABASE()")
                + " AND check_clause LIKE '%age%18%'"
            )
            assert checks == 1
    finally:
        engine.dispose()


@pytest.mark.server
def test_if_exists_fail_refuses_a_spec_run_into_a_non_empty_postgresql_target(
    second_db: Callable[[str], str], tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    config = tmp_path / "synthdb.yaml"
    config.write_text("target: {if_exists: fail}\n", encoding="utf-8")
    url = second_db("postgresql")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as con:
            con.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, note TEXT)"))
            con.execute(sa.text("INSERT INTO customers VALUES (1, 'keep me')"))
        res = runner.invoke(app, ["generate", "--spec", str(spec), "--target", url, "--config", str(config),
                                  "--runs-dir", str(tmp_path / "runs")])
        out = " ".join(res.output.split())
        assert res.exit_code == 2, out
        assert "Traceback" not in out
        assert "target.if_exists is 'fail'" in out and "customers" in out, out
        with engine.connect() as con:  # the target is as it was
            assert con.execute(sa.text("SELECT id, note FROM customers")).all() == [(1, "keep me")]
            assert not sa.inspect(con).has_table("orders")
    finally:
        engine.dispose()


def test_a_declared_range_that_a_check_refuses_exits_2_before_anything_starts(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    bad = SPEC.replace("min: 18, max: 95", "min: 16, max: 95")
    bad = bad.replace("      - {sqltext: age >= 18}", "      - {sqltext: age >= 18}\n      - {sqltext: income < 100000}")
    spec.write_text(bad, encoding="utf-8")
    target = tmp_path / "out.sqlite"
    res = runner.invoke(app, ["generate", "--spec", str(spec), "--target", f"sqlite:///{target}",
                              "--runs-dir", str(tmp_path / "runs")])
    out = " ".join(res.output.split())
    assert res.exit_code == 2, out
    assert "Traceback" not in out
    assert re.search(r"spec\.yaml:\d+: table 'customers', column 'age': min 16 breaks the table's check "
                     r"`age >= 18`", out), out
    assert "set min to at least 18" in out
    assert re.search(r"spec\.yaml:\d+: table 'customers', column 'income': the last quantile 150000 breaks the "
                     r"table's check `income < 100000`", out), out
    assert not target.exists() and not (tmp_path / "runs").exists()


def _real(path: Path) -> str:
    rng = np.random.default_rng(0)
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE shop (id INTEGER PRIMARY KEY, region VARCHAR(10) NOT NULL, score REAL NOT NULL);
        CREATE TABLE sale (id INTEGER PRIMARY KEY, shop_id INTEGER NOT NULL REFERENCES shop(id),
                           price REAL NOT NULL, channel VARCHAR(10));
        """
    )
    regions = ["north"] * 120 + ["south"] * 70 + ["east"] * 6 + ["west"] * 4  # east/west: rare, suppressed
    con.executemany(
        "INSERT INTO shop VALUES (?, ?, ?)",
        [(i + 1, regions[i], float(rng.normal(50, 10))) for i in range(200)],
    )
    sales, sid = [], 1
    for shop in range(1, 201):
        for _ in range(int(rng.poisson(3))):
            sales.append((sid, shop, float(rng.lognormal(3, 0.5)), "web" if rng.random() < 0.7 else None))
            sid += 1
    con.executemany("INSERT INTO sale VALUES (?, ?, ?, ?)", sales)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def test_profile_only_spec_round_trip_has_aggregates_only(tmp_path: Path) -> None:
    source = _real(tmp_path / "real.sqlite")
    spec = tmp_path / "spec.yaml"
    res = runner.invoke(app, ["inspect", source, "--profile-only", "-o", str(spec)])
    assert res.exit_code == 0, res.output
    text = spec.read_text(encoding="utf-8")
    assert "Differential privacy: off" in text
    assert "2 categories with fewer than 10 rows suppressed" in text
    block = text[text.index("\ndistributions:"):]
    assert not re.search(r"\b(east|west)\b", block)
    real = sqlite3.connect(tmp_path / "real.sqlite")
    # no row-level value of a high-cardinality column reaches the spec
    for (score,) in real.execute("SELECT score FROM shop"):
        assert repr(score) not in text and f"{score:.6g}" not in text
    target = tmp_path / "synth.sqlite"
    res = runner.invoke(app, ["generate", "--spec", str(spec), "--target", f"sqlite:///{target}",
                              "--runs-dir", str(tmp_path / "runs"), "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert "report: skipped" in res.output
    synth = sqlite3.connect(target)

    def one(con: sqlite3.Connection, sql: str) -> tuple[float, ...]:
        return tuple(con.execute(sql).fetchone())

    assert one(synth, "SELECT COUNT(*) FROM shop") == (200,)
    sales_real, = one(real, "SELECT COUNT(*) FROM sale")
    sales_synth, = one(synth, "SELECT COUNT(*) FROM sale")
    assert abs(sales_synth - sales_real) / sales_real < 0.05
    assert one(synth, "SELECT COUNT(*) FROM sale s LEFT JOIN shop p ON s.shop_id = p.id WHERE p.id IS NULL") == (0,)
    north_real, = one(real, "SELECT AVG(region = 'north') FROM shop WHERE region IN ('north', 'south')")
    north_synth, = one(synth, "SELECT AVG(region = 'north') FROM shop")
    assert abs(north_synth - north_real) < 0.05
    assert one(synth, "SELECT COUNT(*) FROM shop WHERE region NOT IN ('north', 'south')") == (0,)
    for sql, tol in (("SELECT AVG(score) FROM shop", 1.5), ("SELECT AVG(price) FROM sale", 2.5),
                     ("SELECT AVG(channel IS NULL) FROM sale", 0.05)):
        assert abs(one(synth, sql)[0] - one(real, sql)[0]) < tol, sql
    real_scores = {r[0] for r in real.execute("SELECT score FROM shop")}
    assert not real_scores & {r[0] for r in synth.execute("SELECT score FROM shop")}


def test_profile_only_spec_under_differential_privacy_states_its_epsilon(tmp_path: Path) -> None:
    source = _real(tmp_path / "real.sqlite")
    config = tmp_path / "synthdb.yaml"
    config.write_text("privacy: {epsilon: 2.0}\n", encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    res = runner.invoke(app, ["inspect", source, "--profile-only", "-o", str(spec), "--config", str(config)])
    assert res.exit_code == 0, res.output
    header = "".join(line for line in spec.read_text(encoding="utf-8").splitlines(keepends=True)[:20])
    found = re.search(r"Differential privacy: epsilon ([0-9.]+) spent of privacy\.epsilon 2", header)
    assert found, header
    assert 1.8 <= float(found.group(1)) <= 2.0 + 1e-6
    from pipelines.spec import load_spec

    load_spec(spec)  # a DP spec is a valid spec


def test_the_demo_round_trips_through_a_profile_only_spec(tmp_path: Path) -> None:
    """Schema-only generation on the demo: its profile (aggregates only) makes a database with every key valid."""
    from connectors.demo import build_demo

    real = tmp_path / "demo.sqlite"
    build_demo(real, fraction=0.01, seed=3)
    spec = tmp_path / "spec.yaml"
    res = runner.invoke(app, ["inspect", f"sqlite:///{real}", "--profile-only", "-o", str(spec)])
    assert res.exit_code == 0, res.output
    target = tmp_path / "synth.sqlite"
    res = runner.invoke(app, ["generate", "--spec", str(spec), "--target", f"sqlite:///{target}",
                              "--runs-dir", str(tmp_path / "runs"), "--seed", "1"])
    assert res.exit_code == 0, res.output
    synth = sqlite3.connect(target)
    for child, col, parent, ref in [
        ("flights", "carrier", "airlines", "carrier"),
        ("flights", "tailnum", "planes", "tailnum"),
        ("flights", "origin", "airports", "faa"),
        ("flights", "dest", "airports", "faa"),
        ("weather", "origin", "airports", "faa"),
    ]:
        orphans = synth.execute(
            f'SELECT COUNT(*) FROM "{child}" c LEFT JOIN "{parent}" p ON c."{col}" = p."{ref}" '
            f'WHERE c."{col}" IS NOT NULL AND p."{ref}" IS NULL'
        ).fetchone()[0]
        assert orphans == 0, f"{child}.{col} -> {parent}"
    dup = synth.execute(
        "SELECT COUNT(*) FROM (SELECT origin, year, month, day, hour FROM weather "
        "GROUP BY 1, 2, 3, 4, 5 HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    assert dup == 0, "weather's composite key stays unique"
    src = sqlite3.connect(real)
    for table in ("airlines", "airports", "planes", "weather", "flights"):
        n_real = src.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        n_synth = synth.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        assert n_synth > 0 and abs(n_synth - n_real) <= 0.1 * n_real + 2, (table, n_real, n_synth)
