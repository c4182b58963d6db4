"""A zoo of real schema shapes: small databases modelled on well-known public samples, built by the tests.

Each module gives one :class:`ZooDatabase` (SQLAlchemy Core metadata, a seeded generator, the declared keys and the
shapes it stands for); :mod:`zoo.checks` counts, by SQL, what a synthetic copy must not have (duplicate primary
or unique keys, orphaned foreign keys) and how its size compares with the source.

| shape | database: table |
| --- | --- |
| many-to-many link table, PK = two FKs | chinook: ``playlist_track(playlist_id, track_id)`` |
| link table with payload columns | northwind: ``order_details``; adventureworks: ``product_vendor``; employees: ``dept_emp`` |
| PK = composite FK + single FK | lahman: ``salaries(year, team_id, player_id)`` |
| PK spanning three parents | lahman: ``awards_share(award_id, year, player_id)`` |
| child keyed by (parent, hourly timestamp) | adventureworks: ``store_traffic(store_id, time_hour)`` |
| child keyed by (parent, date), one row per day | employees: ``attendance(emp_no, work_date)`` |
| unique non-key column | chinook: ``customer.email``; northwind: ``products.sku`` |
| composite unique with a nullable member | northwind: ``products(supplier_id, supplier_sku)`` |
| diamond (two paths to one grandparent) | northwind: ``orders -> employees -> region``, ``orders -> territories -> region`` |
| chain six levels deep | adventureworks: ``country_region -> ... -> sales_order_detail`` |
| self-reference plus a link table on it | employees: ``employees.manager_id``, ``employee_manager`` |
| 1:1 extension table, PK = its FK | employees: ``employee_detail(emp_no)`` |
| parent with 90% childless rows | chinook: ``artist -> album`` |
| child of four parents | northwind: ``orders`` |
"""

from __future__ import annotations

from zoo._base import ForeignKey, ZooDatabase
from zoo.adventureworks import ADVENTUREWORKS
from zoo.chinook import CHINOOK
from zoo.employees import EMPLOYEES
from zoo.lahman import LAHMAN
from zoo.northwind import NORTHWIND

__all__ = ["ZOO", "ForeignKey", "ZooDatabase"]

ZOO: dict[str, ZooDatabase] = {db.name: db for db in (CHINOOK, NORTHWIND, LAHMAN, EMPLOYEES, ADVENTUREWORKS)}
