"""Keys: one mechanism for primary keys, unique keys and foreign-key wiring (see :mod:`.mechanism`).

- :mod:`.formats`: unique, format-preserving generated keys;
- :mod:`.wiring`: foreign keys drawn to generated parents, with or without replacement, and child counts;
- :mod:`.matching`: non-context foreign keys matched by content (the child's columns against the parent's);
- :mod:`.members`: learned key members made unique on their real grid;
- :mod:`.mechanism`: the whole of a block's keys, and the table-wide repair pass.
"""

from synth_engine.keys.formats import KeyFormat
from synth_engine.keys.matching import ForeignKeyMatcher, MatchCandidates, Matching, pick_matched
from synth_engine.keys.mechanism import (
    BlockKeys,
    KeyStats,
    assign_keys,
    group_capacity,
    repair_table_keys,
    set_columns,
)
from synth_engine.keys.members import MemberGrid, duplicated, place_members, unique_members
from synth_engine.keys.wiring import (
    ParentPool,
    pick_distinct,
    pick_matching,
    pick_parents,
    strata_total,
    stratified_counts,
    stratified_quantiles,
)

__all__ = [
    "BlockKeys",
    "ForeignKeyMatcher",
    "KeyFormat",
    "KeyStats",
    "MatchCandidates",
    "Matching",
    "MemberGrid",
    "ParentPool",
    "assign_keys",
    "duplicated",
    "group_capacity",
    "pick_distinct",
    "pick_matched",
    "pick_matching",
    "pick_parents",
    "place_members",
    "repair_table_keys",
    "set_columns",
    "strata_total",
    "stratified_counts",
    "stratified_quantiles",
    "unique_members",
]
