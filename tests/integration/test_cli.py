"""The CLI as a script sees it: JSON shapes, exit codes, help texts, and no password in any output."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fixtures.tricky import EXPECTED_PRIMARY_KEYS, create_tricky_schema
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tricky(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli')}/tricky.sqlite"
    create_tricky_schema(url, rows=80)
    return url


def test_inspect_json_has_the_stable_shape(tricky: str) -> None:
    res = runner.invoke(app, ["inspect", tricky, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    tables = {t["name"]: t for t in data["tables"]}
    assert set(tables) == set(EXPECTED_PRIMARY_KEYS)
    for name, pk in EXPECTED_PRIMARY_KEYS.items():
        assert tables[name]["primary_key"] == pk
    col = tables["customer"]["columns"][0]
    assert {"name", "type", "nullable", "kind"} <= set(col)
    fk = next(f for f in tables["shipment"]["foreign_keys"])
    assert fk["columns"] == ["order_id", "line_no"]
    assert fk["references"] == {"table": "order_line", "columns": ["order_id", "line_no"]}
    assert any(u == ["email"] for u in tables["customer"]["unique"])


def test_inspect_writes_an_editable_schema_file_that_plan_reads(tricky: str, tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"
    assert runner.invoke(app, ["inspect", tricky, "-o", str(out)]).exit_code == 0
    text = out.read_text()
    assert "kind:" in text and "#" in text
    res = runner.invoke(app, ["plan", tricky, "--schema", str(out), "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert set(plan) >= {"generations", "deferred_foreign_keys", "context"}
    order = [t for g in plan["generations"] for t in g]
    assert (
        order.index("customer") < order.index("order") < order.index("order_line") < order.index("shipment")
    )
    deferred = {(d["table"], tuple(d["columns"])) for d in plan["deferred_foreign_keys"]}
    assert ("customer", ("referred_by",)) in deferred  # the self-reference
    assert ("department", ("manager_id",)) in deferred  # the cycle, broken at its nullable key
    assert plan["context"]["shipment"] == "order_line"


def test_plan_prints_a_readable_tree(tricky: str) -> None:
    res = runner.invoke(app, ["plan", tricky])
    assert res.exit_code == 0
    assert "order_line" in res.stdout and "customer" in res.stdout


def test_a_database_without_tables_is_bad_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    res = runner.invoke(app, ["inspect", f"sqlite:///{empty}"])
    assert res.exit_code == 2
    assert "no tables" in res.output.lower()


def test_a_malformed_schema_file_is_bad_input_and_names_the_culprit(tricky: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables:\n  - name: customer\n    colums: []\n")
    res = runner.invoke(app, ["plan", tricky, "--schema", str(bad)])
    assert res.exit_code == 2
    assert "colums" in res.output


def test_wrong_credentials_never_print_the_password() -> None:
    res = runner.invoke(app, ["inspect", "mysql+pymysql://nosuchuser:s3cr3t-pw@127.0.0.1:3306/x"])
    assert res.exit_code in (1, 2)
    assert "s3cr3t-pw" not in res.output
    assert "nosuchuser" in res.output


def test_an_unreachable_server_is_named() -> None:
    res = runner.invoke(app, ["inspect", "postgresql://u:hunter2@127.0.0.1:1/db"])
    assert res.exit_code in (1, 2)
    assert "127.0.0.1" in res.output and "hunter2" not in res.output


@pytest.mark.parametrize("command", ["inspect", "plan", "demo", "run", "clean"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    res = runner.invoke(app, [command, "--help"])
    assert res.exit_code == 0
    assert "Example" in res.stdout


def test_demo_builds_and_counts_orphans(tmp_path: Path) -> None:
    res = runner.invoke(app, ["demo", str(tmp_path / "d.sqlite"), "--fraction", "0.01"])
    assert res.exit_code == 0, res.output
    assert "orphaned references set to NULL" in res.stdout
    conn = sqlite3.connect(tmp_path / "d.sqlite")
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
