"""Northwind-like: a food trading company (Microsoft's Northwind sample database), seeded.

- ``order_details(order_id, product_id)``: a link table with payload (``quantity``, ``unit_price``,
  ``discount``); an order holds each product at most once.
- ``orders``: a child of four parents (customers, employees, shippers, territories) and the bottom of a diamond:
  ``orders -> employees -> region`` and ``orders -> territories -> region``.
- ``products.sku``: a unique non-key column; ``products(supplier_id, supplier_sku)``: a composite unique
  constraint whose second member is NULL for about a third of the products.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from zoo._base import COUNTRIES, FIRST_NAMES, LAST_NAMES, Rows, ZooDatabase, money, rng_for

_REGIONS = ["Eastern", "Western", "Northern", "Southern"]
_CATEGORIES = ["Beverages", "Condiments", "Confections", "Dairy", "Grains", "Meat", "Produce", "Seafood"]
_SHIPPERS = ["Speedy Express", "United Package", "Federal Shipping"]
_FOOD = [
    "Chai",
    "Syrup",
    "Cajun",
    "Gumbo",
    "Tofu",
    "Pavlova",
    "Gnocchi",
    "Ravioli",
    "Scones",
    "Kaviar",
    "Tea",
]


def metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "region",
        md,
        sa.Column("region_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("region_description", sa.String(50), nullable=False),
    )
    sa.Table(
        "territories",
        md,
        sa.Column("territory_id", sa.String(20), primary_key=True),
        sa.Column("territory_description", sa.String(50), nullable=False),
        sa.Column("region_id", sa.Integer, sa.ForeignKey("region.region_id"), nullable=False),
    )
    sa.Table(
        "employees",
        md,
        sa.Column("employee_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_name", sa.String(20), nullable=False),
        sa.Column("first_name", sa.String(10), nullable=False),
        sa.Column("title", sa.String(30), nullable=False),
        sa.Column("hire_date", sa.Date, nullable=False),
        sa.Column("region_id", sa.Integer, sa.ForeignKey("region.region_id"), nullable=False),
    )
    sa.Table(
        "customers",
        md,
        sa.Column("customer_id", sa.String(5), primary_key=True),
        sa.Column("company_name", sa.String(40), nullable=False),
        sa.Column("city", sa.String(15), nullable=False),
        sa.Column("country", sa.String(15), nullable=False),
    )
    sa.Table(
        "shippers",
        md,
        sa.Column("shipper_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("company_name", sa.String(40), nullable=False),
    )
    sa.Table(
        "categories",
        md,
        sa.Column("category_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("category_name", sa.String(15), nullable=False),
    )
    sa.Table(
        "suppliers",
        md,
        sa.Column("supplier_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("company_name", sa.String(40), nullable=False),
        sa.Column("country", sa.String(15), nullable=False),
    )
    sa.Table(
        "products",
        md,
        sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("product_name", sa.String(40), nullable=False),
        sa.Column("sku", sa.String(12), nullable=False),
        sa.Column("supplier_id", sa.Integer, sa.ForeignKey("suppliers.supplier_id"), nullable=False),
        sa.Column("supplier_sku", sa.String(12)),  # the supplier's own reference, when it gave one
        sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.category_id"), nullable=False),
        sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
        sa.Column("discontinued", sa.Boolean, nullable=False),
        sa.UniqueConstraint("sku", name="uq_products_sku"),
        sa.UniqueConstraint("supplier_id", "supplier_sku", name="uq_products_supplier_sku"),
    )
    sa.Table(
        "orders",
        md,
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.String(5), sa.ForeignKey("customers.customer_id"), nullable=False),
        sa.Column("employee_id", sa.Integer, sa.ForeignKey("employees.employee_id"), nullable=False),
        sa.Column("ship_via", sa.Integer, sa.ForeignKey("shippers.shipper_id"), nullable=False),
        sa.Column("territory_id", sa.String(20), sa.ForeignKey("territories.territory_id"), nullable=False),
        sa.Column("order_date", sa.Date, nullable=False),
        sa.Column("freight", sa.Numeric(10, 2), nullable=False),
    )
    sa.Table(
        "order_details",
        md,
        sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("product_id", sa.Integer, sa.ForeignKey("products.product_id"), primary_key=True),
        sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
        sa.Column("quantity", sa.SmallInteger, nullable=False),
        sa.Column("discount", sa.Float, nullable=False),
    )
    return md


def data(seed: int = 0) -> Rows:
    rng = rng_for(seed, "northwind")
    rows: Rows = {}
    rows["region"] = [{"region_id": i, "region_description": r} for i, r in enumerate(_REGIONS, 1)]
    rows["territories"] = [
        {
            "territory_id": f"{10000 + 173 * i:05d}",
            "territory_description": f"Territory {i}",
            "region_id": int(rng.integers(1, len(_REGIONS) + 1)),
        }
        for i in range(1, 54)
    ]
    by_region = {r["region_id"]: [t["territory_id"] for t in rows["territories"] if t["region_id"] == r["region_id"]]
                 for r in rows["region"]}  # fmt: skip
    rows["employees"] = [
        {
            "employee_id": i,
            "last_name": str(rng.choice(LAST_NAMES))[:20],
            "first_name": str(rng.choice(FIRST_NAMES))[:10],
            "title": str(rng.choice(["Sales Representative", "Sales Manager", "Inside Sales Coordinator"],
                                    p=[0.8, 0.1, 0.1])),
            "hire_date": dt.date(2012, 1, 1) + dt.timedelta(days=int(rng.integers(0, 3000))),
            "region_id": int(rng.choice([r for r, ts in by_region.items() if ts])),
        }
        for i in range(1, 41)
    ]  # fmt: skip
    rows["customers"] = []
    for i in range(400):
        code = "".join(chr(65 + int(x)) for x in rng.integers(0, 26, 4)) + chr(65 + i % 26)
        while any(c["customer_id"] == code for c in rows["customers"]):
            code = "".join(chr(65 + int(x)) for x in rng.integers(0, 26, 5))
        rows["customers"].append(
            {
                "customer_id": code,
                "company_name": f"{rng.choice(LAST_NAMES)} {rng.choice(['GmbH', 'Ltd', 'S.A.', 'Inc', 'AB'])}",
                "city": str(rng.choice(["Berlin", "London", "Madrid", "Lyon", "Graz", "Seattle", "Bern"])),
                "country": str(rng.choice(COUNTRIES)),
            }
        )
    rows["shippers"] = [{"shipper_id": i, "company_name": s} for i, s in enumerate(_SHIPPERS, 1)]
    rows["categories"] = [{"category_id": i, "category_name": c} for i, c in enumerate(_CATEGORIES, 1)]
    rows["suppliers"] = [
        {
            "supplier_id": i,
            "company_name": f"{rng.choice(LAST_NAMES)} Foods {i}",
            "country": str(rng.choice(COUNTRIES)),
        }
        for i in range(1, 31)
    ]
    rows["products"] = []
    for pid in range(1, 241):
        supplier = int(rng.integers(1, 31))
        rows["products"].append(
            {
                "product_id": pid,
                "product_name": f"{rng.choice(_FOOD)} {rng.choice(_FOOD)} {pid}",
                "sku": f"NW-{pid * 37 % 10007:05d}",
                "supplier_id": supplier,
                # unique within the supplier when present; a third of the products have none
                "supplier_sku": None if rng.random() < 0.33 else f"S{supplier:02d}-{pid:04d}",
                "category_id": int(rng.integers(1, len(_CATEGORIES) + 1)),
                "unit_price": money(float(rng.lognormal(3.0, 0.7))),
                "discontinued": bool(rng.random() < 0.1),
            }
        )
    rows["orders"], rows["order_details"] = [], []
    n_products = len(rows["products"])
    for oid in range(10248, 10248 + 1800):
        employee = rows["employees"][int(rng.integers(0, len(rows["employees"])))]
        territory = str(
            rng.choice(by_region[employee["region_id"]])
        )  # the employee's own region: the diamond
        rows["orders"].append(
            {
                "order_id": oid,
                "customer_id": rows["customers"][int(rng.integers(0, len(rows["customers"])))]["customer_id"],
                "employee_id": employee["employee_id"],
                "ship_via": int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3])),
                "territory_id": territory,
                "order_date": dt.date(2022, 1, 1) + dt.timedelta(days=int(rng.integers(0, 730))),
                "freight": money(float(rng.gamma(2.0, 40.0))),
            }
        )
        lines = int(min(8, max(1, rng.poisson(2.2))))
        for p in sorted(rng.choice(n_products, size=lines, replace=False) + 1):
            product = rows["products"][int(p) - 1]
            rows["order_details"].append(
                {
                    "order_id": oid,
                    "product_id": int(p),
                    "unit_price": product["unit_price"],
                    "quantity": int(max(1, rng.gamma(2.0, 12.0))),
                    "discount": float(
                        rng.choice([0.0, 0.05, 0.1, 0.15, 0.2, 0.25], p=[0.6, 0.1, 0.1, 0.1, 0.05, 0.05])
                    ),
                }
            )
    return rows


NORTHWIND = ZooDatabase(
    name="northwind",
    metadata=metadata,
    data=data,
    shapes={
        "link table with payload columns": "order_details(order_id, product_id, unit_price, quantity, discount)",
        "unique non-key column": "products(sku)",
        "composite unique with a nullable member": "products(supplier_id, supplier_sku NULL)",
        "diamond (two paths to one grandparent)": "orders -> employees -> region, orders -> territories -> region",
        "child of four parents": "orders(customer_id, employee_id, ship_via, territory_id)",
    },
)
