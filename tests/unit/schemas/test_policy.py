"""The one policy: a composite key's text member is produced by what it holds (code, PII or label)."""

from __future__ import annotations

import pyarrow as pa

from connectors.profile import profile_table
from schemas.inference import apply_inference
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table
from schemas.plan import build_plan
from schemas.policy import Role, table_roles


def _schema() -> DatabaseSchema:
    return DatabaseSchema(
        tables=[
            Table(
                name="sensor",
                columns=[Column(name="code", type="VARCHAR(6)", nullable=False)],
                primary_key=PrimaryKey(columns=["code"]),
            ),
            Table(
                name="tag",
                columns=[
                    Column(name="sensor_code", type="VARCHAR(6)", nullable=False),
                    Column(name="label", type="VARCHAR(10)", nullable=False),
                    Column(name="channel", type="VARCHAR(12)", nullable=False),
                    Column(name="weight", type="INTEGER", nullable=False),
                ],
                primary_key=PrimaryKey(columns=["sensor_code", "label", "channel"]),
                foreign_keys=[ForeignKey(columns=["sensor_code"], ref_table="sensor", ref_columns=["code"])],
            ),
        ]
    )


def test_a_code_like_text_member_is_generated_and_a_label_member_is_learned() -> None:
    n = 300
    sample = pa.table(
        {
            "sensor_code": [f"S{i % 30:03d}" for i in range(n)],
            "label": [f"LBL-{i:06d}" for i in range(n)],  # every value distinct: a code
            "channel": [("temperature", "humidity", "pressure")[i % 3] for i in range(n)],
            "weight": list(range(n)),
        }
    )
    schema = apply_inference(_schema(), {"tag": profile_table(sample, name="tag", row_count=n)})
    roles = table_roles(schema.table("tag"), build_plan(schema))
    assert roles.roles["label"] is Role.KEY  # generated in its format: no real label reaches the model
    assert roles.roles["channel"] is Role.LEARNED and "channel" in roles.learned_kinds
    assert roles.roles["sensor_code"] is Role.FOREIGN_KEY
    assert not roles.key_rules  # a generated member makes the key unique by construction
