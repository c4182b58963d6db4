"""The editable schema file: round trips, user edits, proposals to uncomment, and one report of every problem."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pytest

from connectors.profile import profile_table
from schemas.errors import SchemaError
from schemas.inference import apply_inference
from schemas.kinds import Kind
from schemas.model import (
    CheckConstraint,
    Column,
    DatabaseSchema,
    ForeignKey,
    PrimaryKey,
    Table,
    UniqueConstraint,
)
from schemas.schema_file import dump_schema_yaml, load_schema, merge_overrides, parse_schema_yaml, save_schema

PROPOSAL = (
    "orders",
    ForeignKey(columns=["customer_id"], ref_table="customers", ref_columns=["id"], virtual=True),
    "orders.customer_id is named after table 'customers' and all 3 distinct sampled values are keys",
)


def shop() -> DatabaseSchema:
    schema = DatabaseSchema(
        dialect="postgresql",
        db_schema="public",
        tables=[
            Table(
                name="customers",
                db_schema="public",
                row_count=3,
                columns=[
                    Column(name="id", type="INTEGER", nullable=False, autoincrement=True),
                    Column(name="email", type="VARCHAR(80)", native_type="character varying(80)"),
                    Column(name="tier", type="VARCHAR(8)", default="'basic'"),
                    Column(name="notes", type="TEXT", excluded=True),
                ],
                primary_key=PrimaryKey(columns=["id"], name="customers_pkey"),
                unique=[UniqueConstraint(columns=["email"], name="uq_email")],
            ),
            Table(
                name="orders",
                columns=[
                    Column(name="id", type="INTEGER", nullable=False),
                    Column(name="customer_id", type="INTEGER"),
                    Column(name="ref_order", type="INTEGER"),
                    Column(name="amount", type="NUMERIC(10, 2)"),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[
                    ForeignKey(columns=["ref_order"], ref_table="orders", ref_columns=["id"], name="fk_ref")
                ],
                checks=[CheckConstraint(sqltext="amount >= 0", name="ck_amount")],
            ),
        ],
    )
    return apply_inference(schema, {})


def _strip_reasons(schema: DatabaseSchema) -> dict[str, object]:
    data = schema.model_dump()
    for t in data["tables"]:
        for c in t["columns"]:
            c.pop("kind_reason")
    return data


def test_round_trip_keeps_everything_and_marks_kinds_as_the_users(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    original = shop()
    save_schema(original, path, proposals=[PROPOSAL])
    loaded = load_schema(path)
    assert _strip_reasons(loaded) == _strip_reasons(original)
    email = loaded.table("customers").column("email")
    assert email.kind_reason is not None and email.kind_reason.startswith("user:")
    # The reason written as a comment comes back, once, after the "user:" mark.
    assert email.kind_reason == f"user: {original.table('customers').column('email').kind_reason}"
    save_schema(loaded, path)
    assert load_schema(path).table("customers").column("email").kind_reason == email.kind_reason


def test_text_explains_itself() -> None:
    text = dump_schema_yaml(shop(), proposals=[PROPOSAL])
    assert "How to edit" in text and "excluded: true" in text and "virtual: true" in text
    body = text[text.index("\ntables:") :]
    assert "kind: email  # VARCHAR(80) named 'email'" in text
    assert (
        "# - columns: [customer_id]  # proposed: orders.customer_id is named after table 'customers'" in text
    )
    assert "#   references: {table: customers, columns: [id]}" in text
    assert "virtual: true" not in body.replace("#   virtual: true", "")  # the proposal stays commented out
    assert len(parse_schema_yaml(text).table("orders").foreign_keys) == 1


def _accept_proposals(text: str) -> str:
    return text.replace("      # - columns", "      - columns").replace("      #   ", "        ")


def test_user_edit_of_a_kind_survives_reload_and_inference(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    save_schema(shop(), path)
    text = path.read_text()
    assert "name: tier\n        type: VARCHAR(8)\n        nullable: true\n        kind: categorical" in text
    path.write_text(text.replace("kind: categorical", "kind: username", 1))
    loaded = load_schema(path)
    assert loaded.table("customers").column("tier").kind is Kind.USERNAME
    reinferred = apply_inference(loaded, {})
    assert reinferred.table("customers").column("tier").kind is Kind.USERNAME


def test_uncommenting_a_proposal_declares_a_virtual_fk_next_to_declared_ones(tmp_path: Path) -> None:
    accepted = parse_schema_yaml(_accept_proposals(dump_schema_yaml(shop(), proposals=[PROPOSAL])))
    fks = {tuple(fk.columns): fk for fk in accepted.table("orders").foreign_keys}
    assert set(fks) == {("ref_order",), ("customer_id",)}
    assert fks[("customer_id",)].virtual and fks[("customer_id",)].ref_table == "customers"
    assert not fks[("ref_order",)].virtual


def test_uncommenting_a_proposal_in_a_table_without_foreign_keys() -> None:
    schema = shop().model_copy(deep=True)
    schema.table("orders").foreign_keys = []
    text = dump_schema_yaml(schema, proposals=[PROPOSAL])
    assert parse_schema_yaml(text).table("orders").foreign_keys == []
    fks = parse_schema_yaml(_accept_proposals(text)).table("orders").foreign_keys
    assert [(fk.columns, fk.virtual) for fk in fks] == [(["customer_id"], True)]


def test_profile_notes_are_written_and_not_kept_in_the_reason() -> None:
    sample = pa.table(
        {"id": [1, 2, 3], "email": ["a@b.co", None, "c@d.co"], "tier": ["x", "x", "y"], "notes": ["", "", ""]}
    )
    profiles = {"customers": profile_table(sample, name="customers", row_count=3)}
    text = dump_schema_yaml(shop(), profiles=profiles)
    assert "[33% null, 2 distinct in sample]" in text
    reason = parse_schema_yaml(text).table("customers").column("email").kind_reason
    assert reason is not None and "sample]" not in reason


# -- one report of every problem, each naming its culprit -----------------------------------------------------


def _problems(text: str) -> list[str]:
    with pytest.raises(SchemaError) as info:
        parse_schema_yaml(text, source="shop.yaml")
    return info.value.problems


def _edit(old: str, new: str, text: str | None = None) -> str:
    text = text if text is not None else dump_schema_yaml(shop())
    assert old in text, old
    return text.replace(old, new, 1)


def test_malformed_yaml_names_the_line() -> None:
    text = _edit("    primary_key: [id]", "    primary_key: [id")
    problems = _problems(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "primary_key: [id" in ln)
    assert len(problems) == 1
    assert problems[0].startswith("shop.yaml:") and "not valid YAML" in problems[0]
    assert f"shop.yaml:{line}" in problems[0] or f"shop.yaml:{line + 1}" in problems[0]


def test_unknown_key_typo_is_named_with_a_suggestion() -> None:
    text = _edit("        nullable: true\n        kind: email", "        nulable: true\n        kind: email")
    (problem,) = _problems(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "nulable" in ln)
    assert problem.startswith(f"shop.yaml:{line}: table 'customers', column 'email': unknown key 'nulable'")
    assert "did you mean 'nullable'" in problem


def test_unknown_kind_lists_valid_kinds() -> None:
    (problem,) = _problems(_edit("kind: email", "kind: emial"))
    assert "table 'customers', column 'email'" in problem and "unknown kind 'emial'" in problem
    assert "did you mean 'email'" in problem and "person_name" in problem


def test_unknown_table_and_column_in_a_foreign_key() -> None:
    text = _edit("references: {table: orders, columns: [id]}", "references: {table: order, columns: [oid]}")
    (problem,) = _problems(text)
    assert (
        problem.startswith("shop.yaml:")
        and "table 'orders'" in problem
        and "unknown table 'order'" in problem
    )
    (problem,) = _problems(
        _edit("references: {table: orders, columns: [id]}", "references: {table: orders, columns: [oid]}")
    )
    assert "table 'orders'" in problem and "unknown column orders.'oid'" in problem


def test_foreign_key_type_mismatch() -> None:
    text = _edit(
        "      - name: ref_order\n        type: INTEGER", "      - name: ref_order\n        type: VARCHAR(10)"
    )
    (problem,) = _problems(text)
    assert "table 'orders', column 'ref_order' (VARCHAR(10)) references orders.id (INTEGER)" in problem


def test_excluded_primary_key_column() -> None:
    text = _edit(
        "        nullable: false\n        kind: id",
        "        nullable: false\n        excluded: true\n        kind: id",
    )
    problems = _problems(text)
    assert any(
        "table 'customers', column 'id'" in p and "primary key" in p and "excluded" in p for p in problems
    )


def test_duplicate_columns_tables_and_foreign_keys() -> None:
    text = dump_schema_yaml(shop())
    text = _edit("      - name: tier", "      - name: email", text)
    fk = "      - columns: [ref_order]\n        references: {table: orders, columns: [id]}\n        virtual: false\n"
    text = _edit(fk, fk + fk.replace("virtual: false", "virtual: true"), text)
    text = _edit("  - name: orders", "  - name: customers", text)
    problems = _problems(text)
    joined = "\n".join(problems)
    assert "table 'customers' is declared 2 times" in joined
    assert "column 'email' is declared 2 times" in joined
    assert "(ref_order) -> orders(id) is declared twice" in joined


def test_every_problem_is_reported_at_once_with_its_file() -> None:
    text = dump_schema_yaml(shop())
    text = _edit("kind: email", "kind: emial", text)
    text = _edit("    row_count: 3", "    row_count: lots\n    colour: blue", text)
    text = _edit(
        "        type: NUMERIC(10, 2)\n        nullable: true",
        "        type: NUMERIC(10, 2)\n        nullable: maybe",
        text,
    )
    # orders has a foreign key; a context on customers (which has none) is a file-level problem.
    customers_head = "  - name: customers\n    db_schema: public\n    row_count: lots\n    colour: blue\n"
    text = _edit(
        customers_head + "    excluded: false\n    context:\n",
        customers_head + "    excluded: false\n    context: orders\n",
        text,
    )
    with pytest.raises(SchemaError) as info:
        parse_schema_yaml(text, source="shop.yaml")
    problems = info.value.problems
    assert len(problems) == 5, problems
    assert all(p.startswith("shop.yaml:") for p in problems)
    message = str(info.value)
    assert "The schema file shop.yaml has problems (5)" in message
    for needle in (
        "unknown kind 'emial'",
        "row_count must be a whole number",
        "unknown key 'colour'",
        "column 'amount': nullable must be true or false",
        "context 'orders' is set but the table has no foreign keys",
    ):
        assert needle in message


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="does not exist"):
        load_schema(tmp_path / "nope.yaml")
    (problem,) = _problems("- just\n- a list\n")
    assert "must hold a mapping" in problem
    (problem,) = _problems("version: 1\ntables:\n  - name: t\n    columns: []\n")
    assert "table 't'" in problem and "columns must be a non-empty list" in problem


# -- re-applying a user's file to a fresh reflection -----------------------------------------------------------


def test_merge_overrides_applies_the_users_choices(caplog: pytest.LogCaptureFixture) -> None:
    edited = parse_schema_yaml(
        _accept_proposals(
            _edit("kind: categorical", "kind: username", dump_schema_yaml(shop(), proposals=[PROPOSAL]))
        ).replace(
            "  - name: orders\n    db_schema:\n    row_count:\n    excluded: false",
            "  - name: orders\n    db_schema:\n    row_count:\n    excluded: true",
        )
    )
    reflected = shop().model_copy(deep=True)
    reflected.table("customers").columns.append(Column(name="phone", type="VARCHAR(20)"))
    reflected.table("customers").row_count = 10
    with caplog.at_level(logging.WARNING, logger="schemas.schema_file"):
        merged = merge_overrides(reflected, edited)
    customers = merged.table("customers")
    assert customers.column("tier").kind is Kind.USERNAME
    assert (customers.column("tier").kind_reason or "").startswith("user:")
    assert customers.column("notes").excluded
    assert customers.row_count == 10  # the database's figure wins
    assert customers.has_column("phone") and "customers.phone is new" in caplog.text
    orders = merged.table("orders")
    assert orders.excluded
    assert [(fk.columns, fk.virtual) for fk in orders.foreign_keys] == [
        (["ref_order"], False),
        (["customer_id"], True),
    ]
    assert orders.foreign_key(["customer_id"]).nullable  # follows the column
    merged.validate_all()


def test_merge_overrides_drops_what_the_database_no_longer_has(caplog: pytest.LogCaptureFixture) -> None:
    edited = parse_schema_yaml(_accept_proposals(dump_schema_yaml(shop(), proposals=[PROPOSAL])))
    reflected = shop().model_copy(deep=True)
    orders = reflected.table("orders")
    orders.columns = [c for c in orders.columns if c.name != "customer_id"]
    with caplog.at_level(logging.WARNING, logger="schemas.schema_file"):
        merged = merge_overrides(reflected, edited)
    assert [fk.columns for fk in merged.table("orders").foreign_keys] == [["ref_order"]]
    assert "orders.customer_id, which the database no longer has" in caplog.text
    assert "no longer fits the database" in caplog.text


def test_mode_keep_round_trips_and_a_wrong_mode_is_named() -> None:
    kept = parse_schema_yaml(_edit("    mode: synthesize\n", "    mode: keep\n"), source="shop.yaml")
    assert kept.table("customers").mode == "keep" and kept.table("orders").mode == "synthesize"
    assert "mode: keep" in dump_schema_yaml(kept)
    (problem,) = _problems(_edit("    mode: synthesize\n", "    mode: kept\n"))
    assert "shop.yaml:" in problem and "table 'customers'" in problem
    assert "mode must be synthesize, keep or subset" in problem


def test_a_column_mode_keep_round_trips_and_a_wrong_one_is_named() -> None:
    schema = parse_schema_yaml(dump_schema_yaml(shop()))
    schema.table("orders").columns[-1].mode = "keep"
    kept = parse_schema_yaml(dump_schema_yaml(schema), source="shop.yaml")
    assert kept.table("orders").columns[-1].mode == "keep"
    assert [c.mode for c in kept.table("orders").columns[:-1]] == ["synthesize"] * (len(kept.table("orders").columns) - 1)
    name = kept.table("orders").columns[-1].name
    bad = dump_schema_yaml(kept).replace("    mode: keep\n", "    mode: real\n", 1)
    assert "mode: real" in bad
    (problem,) = _problems(bad)
    assert f"column {name!r}" in problem and "a column's mode must be synthesize or keep, got 'real'" in problem
