"""Models on Arrow tables: a table model (conditioned on a parent's row), child counts, keys and PII fakes.

The engine knows Arrow, numpy and scipy; it knows nothing of databases, Ray or Spark.
"""

from synth_engine._internal.seeds import derive_seed
from synth_engine.cardinality import CopulaCardinalityModel
from synth_engine.copula import GaussianCopulaModel
from synth_engine.keys import KeyFormat, MemberGrid, ParentPool, assign_keys
from synth_engine.pii import fake_column
from synth_engine.protocol import CardinalityModel, TableModel
from synth_engine.store import ModelStore

__all__ = [
    "CardinalityModel",
    "CopulaCardinalityModel",
    "GaussianCopulaModel",
    "KeyFormat",
    "MemberGrid",
    "ModelStore",
    "ParentPool",
    "TableModel",
    "assign_keys",
    "derive_seed",
    "fake_column",
]
