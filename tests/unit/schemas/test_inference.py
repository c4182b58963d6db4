"""Kind inference rules and virtual foreign-key proposals, on profiles computed from real Arrow data."""

from __future__ import annotations

import pyarrow as pa
import pytest

from connectors.profile import profile_column, profile_table
from schemas.inference import (
    apply_inference,
    infer_kind,
    normalize_name,
    propose_virtual_foreign_keys,
    virtual_fk_candidates,
)
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table, UniqueConstraint


def kind_of(
    name: str, sql: str, values: list[object] | None, *, table: str | None = None
) -> tuple[Kind, str]:
    profile = profile_column(pa.array(values), name=name) if values is not None else None
    return infer_kind(Column(name=name, type=sql), profile, is_key=False, table=table)


def test_normalize_name() -> None:
    assert normalize_name("CustomerID") == "customer_id"
    assert normalize_name("e-mail Address") == "e_mail_address"
    assert normalize_name("firstName") == "first_name"


def test_keys_are_ids_whatever_their_type() -> None:
    kind, reason = infer_kind(Column(name="code", type="VARCHAR(10)"), None, is_key=True)
    assert kind is Kind.ID and "key" in reason


def test_email_by_values_alone_with_share_in_reason() -> None:
    values = [f"user{i}@example.com" for i in range(49)] + ["n/a"]
    kind, reason = kind_of("contact", "VARCHAR(120)", values)
    assert kind is Kind.EMAIL
    assert "98%" in reason and "e-mail" in reason and "VARCHAR(120)" in reason


def test_email_name_hint_needs_agreeing_values() -> None:
    assert kind_of("email", "VARCHAR(50)", None)[0] is Kind.EMAIL  # no sample: the name decides
    domains = ["gmail.com", "example.org"] * 10
    assert kind_of("email", "VARCHAR(50)", domains)[0] is Kind.CATEGORICAL  # values disagree with the name


def test_phone_by_name_and_by_formatted_values() -> None:
    formatted = ["(555) 123-4567", "555-987-6543", "+1 555 222 3333"] * 5
    assert kind_of("contact_no", "VARCHAR(20)", formatted)[0] is Kind.PHONE
    bare_digits = [str(5550000000 + i) for i in range(20)]
    # Bare digit strings are codes as often as phone numbers: only the name makes them phones.
    assert kind_of("reference", "VARCHAR(20)", bare_digits)[0] is not Kind.PHONE
    assert kind_of("mobile_number", "VARCHAR(20)", bare_digits)[0] is Kind.PHONE


def test_names_by_column_name_and_person_table() -> None:
    people = ["John Smith", "Mary Jones", "Ann Lee"] * 4
    assert kind_of("first_name", "VARCHAR(40)", ["John", "Mary"])[0] is Kind.FIRST_NAME
    assert kind_of("LastName", "VARCHAR(40)", ["Smith", "Jones"])[0] is Kind.LAST_NAME
    assert kind_of("full_name", "VARCHAR(80)", people)[0] is Kind.PERSON_NAME
    kind, reason = kind_of("name", "VARCHAR(80)", people, table="customers")
    assert kind is Kind.PERSON_NAME and "customers" in reason
    # "name" of a product is not a person's name, even when capitalised like one.
    assert (
        kind_of("name", "VARCHAR(80)", ["Blue Widget", "Red Gadget"] * 5, table="products")[0]
        is Kind.CATEGORICAL
    )


@pytest.mark.parametrize(
    ("name", "sql", "values", "expected"),
    [
        ("ip_address", "VARCHAR(45)", ["10.0.0.1", "::1"], Kind.IP),
        ("host", "VARCHAR(45)", ["10.0.0.1", "192.168.1.20"], Kind.IP),
        ("website", "VARCHAR(200)", ["https://a.example.com", "http://b.org/x"], Kind.URL),
        ("ssn", "CHAR(11)", ["123-45-6789", "987-65-4321"], Kind.NATIONAL_ID),
        ("tax_ref", "CHAR(11)", ["123-45-6789", "987-65-4321"], Kind.NATIONAL_ID),
        ("card", "VARCHAR(19)", ["4111 1111 1111 1111", "5500-0000-0000-0004"], Kind.CREDIT_CARD),
        ("account", "VARCHAR(34)", ["GB82WEST12345698765432", "DE89370400440532013000"], Kind.IBAN),
        ("street_address", "VARCHAR(100)", ["1 Main St", "22 High Street"], Kind.ADDRESS),
        ("email_address", "VARCHAR(100)", ["a@b.com", "c@d.org"], Kind.EMAIL),
        ("mac_address", "VARCHAR(17)", ["00:1B:44:11:3A:B7", "00:1B:44:11:3A:B8"] * 10, Kind.CATEGORICAL),
        ("city", "VARCHAR(40)", ["Paris", "Lyon"], Kind.CITY),
        ("zip", "VARCHAR(10)", ["90210", "10001"], Kind.POSTCODE),
        ("username", "VARCHAR(30)", ["jsmith", "mjones"], Kind.USERNAME),
        ("external_ref", "VARCHAR(36)", ["123e4567-e89b-12d3-a456-426614174000"], Kind.ID),
    ],
)
def test_pii_and_identifier_rules(name: str, sql: str, values: list[object], expected: Kind) -> None:
    assert kind_of(name, sql, values)[0] is expected


def test_categorical_versus_text() -> None:
    statuses = ["new", "paid", "shipped"] * 100
    kind, reason = kind_of("status", "VARCHAR(10)", statuses)
    assert kind is Kind.CATEGORICAL and "3 distinct of 300" in reason
    reviews = [f"Review number {i}: the product arrived on time and works well" for i in range(100)]
    kind, reason = kind_of("review", "TEXT", reviews)
    assert kind is Kind.TEXT and "long" in reason
    assert kind_of("notes", "TEXT", None)[0] is Kind.TEXT  # unbounded and unseen: free text
    assert kind_of("code", "VARCHAR(3)", None)[0] is Kind.CATEGORICAL


def test_unique_digit_codes_are_ids_but_short_repeated_strings_are_not() -> None:
    codes = [f"{100000 + i}" for i in range(50)]
    assert kind_of("order_number", "VARCHAR(12)", codes)[0] is Kind.ID
    assert kind_of("colour", "VARCHAR(12)", ["red", "blue"] * 25)[0] is Kind.CATEGORICAL


def test_numbers_categories_and_booleans() -> None:
    assert kind_of("price", "DOUBLE PRECISION", [1.5, 2.25, 3.0])[0] is Kind.NUMERIC
    assert kind_of("amount", "NUMERIC(10, 2)", None)[0] is Kind.NUMERIC
    assert kind_of("quantity", "INTEGER", list(range(100)))[0] is Kind.NUMERIC
    assert kind_of("rating", "INTEGER", [1, 2, 3, 4, 5] * 20)[0] is Kind.CATEGORICAL
    kind, reason = kind_of("is_active", "INTEGER", [0, 1, 1, 0])
    assert kind is Kind.BOOLEAN and "0/1" in reason
    assert kind_of("is_active", "INTEGER", [0, 1, 2, 5])[0] is not Kind.BOOLEAN  # not a 0/1 flag
    assert kind_of("has_children", "SMALLINT", None)[0] is Kind.BOOLEAN
    assert kind_of("status_id", "INTEGER", [1, 2, 3] * 20)[0] is Kind.CATEGORICAL  # a lookup code
    assert kind_of("customer_id", "INTEGER", list(range(100)))[0] is Kind.ID


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("BOOLEAN", Kind.BOOLEAN),
        ("JSON", Kind.JSON),
        ("BLOB", Kind.BINARY),
        ("DATE", Kind.DATE),
        ("TIME", Kind.TIME),
        ("TIMESTAMP", Kind.DATETIME),
        ("TIMESTAMP WITH TIME ZONE", Kind.DATETIME),
        ("UUID", Kind.ID),
    ],
)
def test_kinds_from_sql_type(sql: str, expected: Kind) -> None:
    assert kind_of("c", sql, None)[0] is expected


def test_iso_dates_in_text_are_pointed_out() -> None:
    kind, reason = kind_of("created", "VARCHAR(20)", [f"2024-01-{d:02d}" for d in range(1, 29)])
    assert kind is Kind.CATEGORICAL and "ISO dates" in reason


def _shop() -> DatabaseSchema:
    return DatabaseSchema(
        tables=[
            Table(
                name="customers",
                columns=[
                    Column(name="id", type="INTEGER", nullable=False),
                    Column(name="email", type="VARCHAR(80)"),
                    Column(name="code", type="VARCHAR(8)"),
                    Column(name="tier", type="VARCHAR(8)", kind=Kind.EMAIL, kind_reason="user: I say so"),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                unique=[UniqueConstraint(columns=["code"])],
                row_count=20,  # the sample below holds every customer
            ),
            Table(
                name="orders",
                columns=[
                    Column(name="order_id", type="BIGINT", nullable=False),
                    Column(name="customer_id", type="BIGINT"),
                    Column(name="total", type="NUMERIC(8, 2)"),
                ],
                primary_key=PrimaryKey(columns=["order_id"]),
            ),
        ]
    )


def _shop_samples(customer_ids: list[int | None]) -> dict[str, pa.Table]:
    return {
        "customers": pa.table(
            {
                "id": pa.array(range(1, 21), pa.int32()),
                "email": [f"c{i}@shop.com" for i in range(20)],
                "code": [f"C{i:03d}" for i in range(20)],
                "tier": ["gold", "silver"] * 10,
            }
        ),
        "orders": pa.table(
            {
                "order_id": pa.array(range(len(customer_ids)), pa.int64()),
                "customer_id": pa.array(customer_ids, pa.int64()),
                "total": [1.0] * len(customer_ids),
            }
        ),
    }


def test_apply_inference_sets_kinds_and_keeps_user_kinds() -> None:
    schema = _shop()
    samples = _shop_samples([1, 2, 2, 5, None])
    profiles = {n: profile_table(t, name=n, row_count=t.num_rows) for n, t in samples.items()}
    out = apply_inference(schema, profiles)
    customers = out.table("customers")
    assert customers.column("id").kind is Kind.ID and "primary key" in (
        customers.column("id").kind_reason or ""
    )
    assert customers.column("email").kind is Kind.EMAIL
    assert customers.column("code").kind is Kind.ID  # alone under a unique constraint
    assert customers.column("tier").kind is Kind.EMAIL  # the user's choice survives
    assert customers.column("tier").kind_reason == "user: I say so"
    assert out.table("orders").column("total").kind is Kind.NUMERIC
    assert schema.table("customers").column("email").kind is Kind.CATEGORICAL  # the input is not modified


def test_virtual_fk_proposed_when_name_type_and_values_match() -> None:
    schema = _shop()
    proposals = propose_virtual_foreign_keys(schema, _shop_samples([1, 2, 2, 5, None, 20]))
    assert len(proposals) == 1
    child, fk, reason = proposals[0]
    assert child == "orders"
    assert (fk.columns, fk.ref_table, fk.ref_columns, fk.virtual) == (
        ["customer_id"],
        "customers",
        ["id"],
        True,
    )
    assert "named after table 'customers'" in reason and "all 4 distinct sampled values" in reason


def test_virtual_fk_not_proposed_when_a_value_is_missing_or_no_values() -> None:
    schema = _shop()
    assert propose_virtual_foreign_keys(schema, _shop_samples([1, 2, 99])) == []
    assert propose_virtual_foreign_keys(schema, _shop_samples([None, None])) == []


def test_virtual_fk_uses_full_parent_keys_when_given() -> None:
    schema = _shop().model_copy(deep=True)
    schema.table("customers").row_count = 200  # more customers than sampled
    samples = _shop_samples([1, 2, 150])  # 150 is not in the customers sample, but it is a customer
    full = {"customers": pa.chunked_array([pa.array(range(1, 201), pa.int32())])}
    proposals = propose_virtual_foreign_keys(schema, samples, parent_keys=full)
    assert [p[1].ref_table for p in proposals] == ["customers"]
    assert "200 keys" in proposals[0][2]


def test_virtual_fk_skips_declared_keys_incompatible_types_and_generic_names() -> None:
    schema = _shop().model_copy(deep=True)
    orders = schema.table("orders")
    orders.foreign_keys = [ForeignKey(columns=["customer_id"], ref_table="customers", ref_columns=["id"])]
    assert virtual_fk_candidates(schema) == []
    text_fk = _shop().model_copy(deep=True)
    text_fk.table("orders").columns[1] = Column(name="customer_id", type="DATE")
    assert virtual_fk_candidates(text_fk) == []
    # Two tables whose keys are both called "id" do not reference each other by name alone.
    generic = DatabaseSchema(
        tables=[
            Table(name=n, columns=[Column(name="id", type="INTEGER")], primary_key=PrimaryKey(columns=["id"]))
            for n in ("a", "b")
        ]
    )
    assert virtual_fk_candidates(generic) == []


def test_virtual_fk_by_same_key_name() -> None:
    schema = DatabaseSchema(
        tables=[
            Table(
                name="accounts",
                columns=[Column(name="acct_no", type="VARCHAR(10)")],
                primary_key=PrimaryKey(columns=["acct_no"]),
            ),
            Table(
                name="payments",
                columns=[Column(name="id", type="INTEGER"), Column(name="acct_no", type="VARCHAR(12)")],
            ),
        ]
    )
    samples = {
        "accounts": pa.table({"acct_no": ["A1", "A2", "A3"]}),
        "payments": pa.table({"id": [1, 2], "acct_no": ["A1", "A3"]}),
    }
    proposals = propose_virtual_foreign_keys(schema, samples)
    assert len(proposals) == 1 and "same name" in proposals[0][2]
    assert "not all read" in proposals[0][2]  # accounts' row count is unknown: the keys were only sampled


def test_a_unique_short_code_is_an_id_so_no_real_value_is_copied() -> None:
    # licence plates: unique short strings with no code-like name; as categories every synthetic plate was real
    plates = [f"{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}-{1000 + i}" for i in range(400)]
    kind, reason = kind_of("plate", "VARCHAR(8)", plates)
    assert kind is Kind.ID and "distinct" in reason
    import pyarrow as pa

    from synth_engine.keys import KeyFormat

    fmt = KeyFormat.learn(pa.array(plates))
    generated = set(fmt.generate(0, 400, seed=1).to_pylist())
    assert len(generated) == 400 and not generated & set(plates[:5])


def _airline_schema(contacts: bool = False) -> tuple[DatabaseSchema, dict[str, object]]:
    names = [f"{w} Airlines Inc." for w in ("American", "Delta", "United", "Alaska", "Frontier", "Hawaiian")] * 4
    names = [f"{n} {i}" for i, n in enumerate(names)]  # 24 distinct, multi-word, short: free text by default
    cols = [Column(name="carrier", type="VARCHAR(2)", nullable=False), Column(name="name", type="VARCHAR(60)")]
    data = {"carrier": [f"C{i}" for i in range(24)], "name": names}
    if contacts:
        cols.append(Column(name="contact_email", type="VARCHAR(60)"))
        data["contact_email"] = [f"ops{i}@example.com" for i in range(24)]
    airlines = Table(name="airlines", columns=cols, primary_key=PrimaryKey(columns=["carrier"]), row_count=24)
    flights = Table(
        name="flights",
        columns=[Column(name="id", type="INTEGER", nullable=False), Column(name="carrier", type="VARCHAR(2)")],
        primary_key=PrimaryKey(columns=["id"]),
        foreign_keys=[ForeignKey(columns=["carrier"], ref_table="airlines", ref_columns=["carrier"])],
        row_count=100,
    )
    profiles = {"airlines": profile_table(pa.table(data), name="airlines", row_count=24)}
    return DatabaseSchema(dialect="sqlite", tables=[airlines, flights]), profiles


def test_short_labels_of_a_lookup_table_are_categories_and_keep_is_proposed() -> None:
    from schemas.inference import lookup_tables
    from schemas.schema_file import dump_schema_yaml

    schema, profiles = _airline_schema()
    out = apply_inference(schema, profiles)  # type: ignore[arg-type]
    name = out.table("airlines").column("name")
    assert name.kind is Kind.CATEGORICAL and "lookup table" in (name.kind_reason or "")
    assert set(lookup_tables(out)) == {"airlines"}
    text = dump_schema_yaml(out)
    assert "mode: synthesize  # proposed: keep (a lookup table of 24 rows" in text
    # a table with personal data is no lookup: its labels stay free text and keep is not proposed
    personal, profiles = _airline_schema(contacts=True)
    out = apply_inference(personal, profiles)  # type: ignore[arg-type]
    assert out.table("airlines").column("name").kind is Kind.TEXT
    assert lookup_tables(out) == {}
