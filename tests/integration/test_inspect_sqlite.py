"""inspect_source on a real SQLite database: kinds from values and names, and an undeclared key proposed."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from connectors.inspect import inspect_source
from connectors.source import open_source
from schemas.kinds import Kind
from schemas.schema_file import load_schema, save_schema

FIRST = ["John", "Mary", "Ahmed", "Li", "Olga", "Pedro", "Aisha", "Tom"]
LAST = ["Smith", "Jones", "Khan", "Wang", "Ivanova", "Garcia", "Bello", "Brown"]


def _build(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name VARCHAR(80) NOT NULL, "
                "contact VARCHAR(120), phone VARCHAR(20), segment VARCHAR(10), is_vip INTEGER, "
                "bio TEXT, created_at TIMESTAMP)"
            )
        )
        # No FOREIGN KEY clause: the link to customers exists only in the data and the column's name.
        conn.execute(
            sa.text(
                "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER, "
                "amount NUMERIC(10, 2), status VARCHAR(10))"
            )
        )
        customers = [
            {
                "id": i,
                "full_name": f"{FIRST[i % 8]} {LAST[(i * 3) % 8]}",
                "contact": f"{FIRST[i % 8].lower()}.{i}@example.com",
                "phone": f"({200 + i % 700:03d}) 555-{i:04d}",
                "segment": ["retail", "pro", "partner"][i % 3],
                "is_vip": int(i % 7 == 0),
                "bio": f"Customer {i} joined through the spring campaign and prefers e-mail contact {i * 7}",
                "created_at": f"2023-01-{1 + i % 28:02d} 10:00:00",
            }
            for i in range(1, 121)
        ]
        conn.execute(
            sa.text(
                "INSERT INTO customers VALUES (:id, :full_name, :contact, :phone, :segment, :is_vip, :bio, "
                ":created_at)"
            ),
            customers,
        )
        orders = [
            {
                "order_id": j,
                "customer_id": 1 + (j * 7) % 120,
                "amount": f"{(j % 50) + 0.99:.2f}",
                "status": ["new", "paid", "shipped"][j % 3],
            }
            for j in range(1, 401)
        ]
        conn.execute(sa.text("INSERT INTO orders VALUES (:order_id, :customer_id, :amount, :status)"), orders)
    engine.dispose()


def test_inspect_infers_kinds_and_proposes_the_undeclared_key(sqlite_url: str, tmp_path: Path) -> None:
    _build(sqlite_url)
    source = open_source(sqlite_url)
    try:
        result = inspect_source(source, sample_rows=300, seed=1)
    finally:
        source.close()

    customers = result.schema.table("customers")
    kinds = {c.name: c.kind for c in customers.columns}
    assert kinds == {
        "id": Kind.ID,
        "full_name": Kind.PERSON_NAME,
        "contact": Kind.EMAIL,  # from the values alone: the name says nothing
        "phone": Kind.PHONE,
        "segment": Kind.CATEGORICAL,
        "is_vip": Kind.BOOLEAN,
        "bio": Kind.TEXT,
        "created_at": Kind.DATETIME,
    }
    assert "100% of values like an e-mail address" in (customers.column("contact").kind_reason or "")
    assert customers.row_count == 120

    orders = result.schema.table("orders")
    assert orders.row_count == 400  # more rows than sampled: counted, not guessed from the sample
    assert orders.column("amount").kind is Kind.NUMERIC
    assert orders.column("status").kind is Kind.CATEGORICAL
    assert orders.foreign_keys == []  # proposals are not applied: the user accepts them

    assert result.profiles["orders"].sample_rows == 300
    assert result.profiles["customers"].columns["segment"].distinct_count == 3

    assert len(result.proposals) == 1
    child, fk, reason = result.proposals[0]
    assert (child, fk.columns, fk.ref_table, fk.ref_columns, fk.virtual) == (
        "orders",
        ["customer_id"],
        "customers",
        ["id"],
        True,
    )
    assert "all" in reason and "keys of customers" in reason

    # The file shows the proposal commented out; accepting it gives a valid schema with a virtual key.
    path = tmp_path / "schema.yaml"
    save_schema(result.schema, path, proposals=result.proposals, profiles=result.profiles)
    text = path.read_text()
    assert "# - columns: [customer_id]  # proposed:" in text
    path.write_text(text.replace("      # - columns", "      - columns").replace("      #   ", "        "))
    accepted = load_schema(path)
    assert [(f.columns, f.ref_table, f.virtual) for f in accepted.table("orders").foreign_keys] == [
        (["customer_id"], "customers", True)
    ]
    assert accepted.table("customers").column("contact").kind is Kind.EMAIL


def test_small_samples_check_proposals_against_every_parent_key(db_url: str) -> None:
    # 50 sampled customers of 120: the proposal is only sound because customers' whole key column is read.
    _build(db_url)
    source = open_source(db_url)
    try:
        result = inspect_source(source, sample_rows=50, seed=3)
    finally:
        source.close()
    assert result.profiles["customers"].sample_rows == 50
    assert result.schema.table("customers").row_count == 120
    assert result.schema.table("customers").column("contact").kind is Kind.EMAIL
    assert result.schema.table("customers").column("is_vip").kind is Kind.BOOLEAN
    [(child, fk, reason)] = result.proposals
    assert (child, fk.columns, fk.ref_table) == ("orders", ["customer_id"], "customers")
    assert "among the 120 keys of customers" in reason


def test_no_proposal_when_a_value_has_no_parent(sqlite_url: str) -> None:
    _build(sqlite_url)
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO orders VALUES (9999, 5000, 1.00, 'new')")
        )  # customer 5000 does not exist
    engine.dispose()
    source = open_source(sqlite_url)
    try:
        result = inspect_source(source, sample_rows=1_000)
    finally:
        source.close()
    assert result.proposals == []
