"""Employees-like: staff, departments and time (the MySQL Employees sample database), seeded.

- ``employees.manager_id``: a nullable self-reference (the heads have none), plus ``employee_manager
  (employee_id, manager_id)``, a link table whose two foreign keys both point at ``employees`` (past and dotted-line
  managers).
- ``employee_detail(emp_no)``: a 1:1 extension table whose primary key is its foreign key (70% of employees).
- ``dept_emp(emp_no, dept_no, from_date, to_date)``: a link table with payload.
- ``attendance(emp_no, work_date)``: a child keyed by (parent, date): one row per employee and working day, in
  runs of consecutive days.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from zoo._base import FIRST_NAMES, LAST_NAMES, Rows, ZooDatabase, money, rng_for

_DEPARTMENTS = ["Marketing", "Finance", "Human Resources", "Production", "Development", "Quality Management",
                "Sales", "Research", "Customer Service"]  # fmt: skip


def metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "departments",
        md,
        sa.Column("dept_no", sa.String(4), primary_key=True),
        sa.Column("dept_name", sa.String(40), nullable=False),
        sa.UniqueConstraint("dept_name", name="uq_departments_name"),
    )
    sa.Table(
        "employees",
        md,
        sa.Column("emp_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("first_name", sa.String(14), nullable=False),
        sa.Column("last_name", sa.String(16), nullable=False),
        sa.Column("gender", sa.String(1), nullable=False),
        sa.Column("hire_date", sa.Date, nullable=False),
        sa.Column("manager_id", sa.Integer, sa.ForeignKey("employees.emp_no", name="fk_employees_manager")),
    )
    sa.Table(
        "employee_manager",
        md,
        sa.Column("employee_id", sa.Integer, sa.ForeignKey("employees.emp_no"), primary_key=True),
        sa.Column("manager_id", sa.Integer, sa.ForeignKey("employees.emp_no"), primary_key=True),
        sa.Column("relation", sa.String(10), nullable=False),
    )
    sa.Table(
        "employee_detail",
        md,
        sa.Column(
            "emp_no", sa.Integer, sa.ForeignKey("employees.emp_no"), primary_key=True, autoincrement=False
        ),
        sa.Column("marital_status", sa.String(1), nullable=False),
        sa.Column("children", sa.SmallInteger, nullable=False),
        sa.Column("commute_km", sa.Float),
    )
    sa.Table(
        "dept_emp",
        md,
        sa.Column(
            "emp_no", sa.Integer, sa.ForeignKey("employees.emp_no"), primary_key=True, autoincrement=False
        ),
        sa.Column("dept_no", sa.String(4), sa.ForeignKey("departments.dept_no"), primary_key=True),
        sa.Column("from_date", sa.Date, nullable=False),
        sa.Column("to_date", sa.Date, nullable=False),
    )
    sa.Table(
        "attendance",
        md,
        sa.Column(
            "emp_no", sa.Integer, sa.ForeignKey("employees.emp_no"), primary_key=True, autoincrement=False
        ),
        sa.Column("work_date", sa.Date, primary_key=True),
        sa.Column("hours", sa.Numeric(4, 2), nullable=False),
        sa.Column("remote", sa.Boolean, nullable=False),
    )
    return md


def data(seed: int = 0) -> Rows:
    rng = rng_for(seed, "employees")
    rows: Rows = {}
    rows["departments"] = [{"dept_no": f"d{i:03d}", "dept_name": n} for i, n in enumerate(_DEPARTMENTS, 1)]
    rows["employees"] = []
    n = 600
    for i in range(n):
        emp_no = 10001 + i
        hire = dt.date(2005, 1, 1) + dt.timedelta(days=int(rng.integers(0, 6000)))
        # the first 12 are heads (no manager); everyone else reports to someone hired into the table before them
        manager = None if i < 12 else 10001 + int(rng.integers(0, min(i, 12 + i // 4)))
        rows["employees"].append(
            {
                "emp_no": emp_no,
                "birth_date": hire - dt.timedelta(days=int(rng.integers(20 * 365, 45 * 365))),
                "first_name": str(rng.choice(FIRST_NAMES)),
                "last_name": str(rng.choice(LAST_NAMES)),
                "gender": str(rng.choice(["M", "F"])),
                "hire_date": hire,
                "manager_id": manager,
            }
        )
    rows["employee_manager"] = []
    for e in rows["employees"]:
        managers: set[int] = set()
        if e["manager_id"] is not None:
            managers.add(e["manager_id"])
            rows["employee_manager"].append(
                {"employee_id": e["emp_no"], "manager_id": e["manager_id"], "relation": "current"}
            )
        for _ in range(int(rng.poisson(0.8))):
            m = 10001 + int(rng.integers(0, n))
            if m != e["emp_no"] and m not in managers:
                managers.add(m)
                rel = str(rng.choice(["former", "dotted"], p=[0.7, 0.3]))
                rows["employee_manager"].append(
                    {"employee_id": e["emp_no"], "manager_id": m, "relation": rel}
                )
    rows["employee_detail"] = [
        {
            "emp_no": e["emp_no"],
            "marital_status": str(rng.choice(["S", "M", "D"], p=[0.4, 0.5, 0.1])),
            "children": int(rng.poisson(1.1)),
            "commute_km": None if rng.random() < 0.2 else round(float(rng.gamma(2.0, 8.0)), 1),
        }
        for e in rows["employees"]
        if rng.random() < 0.7
    ]
    rows["dept_emp"] = []
    for e in rows["employees"]:
        depts = rng.choice(
            len(_DEPARTMENTS), size=int(rng.choice([1, 2, 3], p=[0.7, 0.25, 0.05])), replace=False
        )
        start = e["hire_date"]
        for d in depts:
            end = start + dt.timedelta(days=int(rng.integers(200, 2500)))
            rows["dept_emp"].append(
                {"emp_no": e["emp_no"], "dept_no": f"d{int(d) + 1:03d}", "from_date": start, "to_date": end}
            )
            start = end
    rows["attendance"] = []
    for e in rows["employees"]:
        day = dt.date(2024, 3, 1) + dt.timedelta(days=int(rng.integers(0, 30)))
        remote_share = float(rng.beta(2, 3))
        for _ in range(int(rng.choice([0, 2, 5, 10], p=[0.3, 0.2, 0.3, 0.2]))):
            rows["attendance"].append(
                {
                    "emp_no": e["emp_no"],
                    "work_date": day,
                    "hours": money(float(min(12.0, max(2.0, rng.normal(8.0, 1.0))))),
                    "remote": bool(rng.random() < remote_share),
                }
            )
            day += dt.timedelta(days=1 if day.weekday() < 4 else 3)  # next working day
    return rows


EMPLOYEES = ZooDatabase(
    name="employees",
    metadata=metadata,
    data=data,
    shapes={
        "self-reference plus a link table on the same table": "employees.manager_id; employee_manager(employee_id, "
        "manager_id)",
        "1:1 extension table, PK = its FK": "employee_detail(emp_no)",
        "link table with payload columns": "dept_emp(emp_no, dept_no, from_date, to_date)",
        "child keyed by (parent, date), one row per parent and day": "attendance(emp_no, work_date)",
    },
)
