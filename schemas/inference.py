"""Kind inference and virtual foreign-key proposals, from SQL types, column names and a sample's profile.

Pure functions, no I/O: ``connectors.inspect`` reads the samples and calls these. Every decision comes with a reason
in plain words (``"VARCHAR(120) with 98% of values like an e-mail address"``), which the schema file shows next to
the kind so a user can see why, and override it.

A kind whose ``kind_reason`` starts with ``"user:"`` was set by the user in the schema file and is never changed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, Table
from schemas.policy import KEY_MEMBER_REASON, USER_PREFIX, default_kind
from schemas.profile import ColumnProfile, TableProfile
from schemas.types import NATIVE_TEXT_FAMILIES, Family, SqlType, UnknownTypeError

logger = logging.getLogger(__name__)

STRONG_SHARE = 0.9
"""Share of non-null values that must match a pattern for the values alone to decide a PII kind."""
HINT_SHARE = 0.5
"""Share that suffices when the column's name points the same way (``email``, ``phone``...)."""
MAX_CATEGORIES = 50
"""A text column with at most this many distinct sampled values is categorical."""
MAX_INT_CATEGORIES = 20
"""An integer column with at most this many distinct values, each seen 5 times on average, is categorical."""
NEAR_UNIQUE = 0.95
"""A short text column with at least this share of distinct sampled values is a code, never learned as categories."""
LONG_TEXT = 40
"""A text column whose longest value reaches this many characters, and is mostly distinct, is free text."""
LOOKUP_MAX_ROWS = 5_000
"""A lookup table: referenced by foreign keys, none of its own, at most this many rows, no personal data."""

_PATTERN_WORDS: dict[str, str] = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "ipv4": "an IP address",
    "ipv6": "an IP address",
    "url": "a URL",
    "uuid": "a UUID",
    "iban": "an IBAN",
    "credit_card": "a credit card number (Luhn-valid)",
    "ssn": "a US social security number",
    "person_name": "a person's name",
}

# Column-name hints, matched against the snake_case name. Order matters: e-mail and IP come before address so
# that ``email_address`` and ``ip_address`` are not taken for postal addresses.
_NUM = r"(_?(no|num|number|nr))?"
_HINTS: list[tuple[Kind, re.Pattern[str]]] = [
    (Kind.EMAIL, re.compile(r"(^|_)e_?mail(_?addr(ess)?)?$")),
    (Kind.IP, re.compile(r"(^|_)(ip|ip_?addr(ess)?|ipv4|ipv6|remote_?addr|ip_?v[46])$")),
    (Kind.URL, re.compile(r"(^|_)(url|uri|website|web_?site|homepage|home_?page|web_?address)$")),
    (Kind.PHONE, re.compile(rf"(^|_)(phone|telephone|tel|mobile|cell|cell_?phone|fax){_NUM}$")),
    (
        Kind.CREDIT_CARD,
        re.compile(r"(^|_)(credit_?card(_?(no|num|number|nr))?|(card|cc)_?(no|num|number|nr)|ccnum|pan)$"),
    ),
    (Kind.IBAN, re.compile(r"(^|_)iban$")),
    (
        Kind.NATIONAL_ID,
        re.compile(
            rf"(^|_)(ssn|social_?security{_NUM}|national_?id{_NUM}|nin|tax_?id{_NUM}|passport{_NUM}|sin|nino)$"
        ),
    ),
    (Kind.FIRST_NAME, re.compile(r"(^|_)(first_?name|given_?name|fore_?name|fname|middle_?name)$")),
    (Kind.LAST_NAME, re.compile(r"(^|_)(last_?name|sur_?name|family_?name|lname|maiden_?name)$")),
    (
        Kind.PERSON_NAME,
        re.compile(
            r"(^|_)(full_?name|person_?name|contact_?name|customer_?name|employee_?name|client_?name|patient_?name"
            r"|author_?name|owner_?name|manager_?name|member_?name|student_?name|passenger_?name)$"
        ),
    ),
    (Kind.USERNAME, re.compile(r"(^|_)(user_?name|login|login_?name|screen_?name|nick_?name|handle)$")),
    (
        Kind.ADDRESS,
        re.compile(
            r"(^|_)(street(_?addr(ess)?)?|address(_?line)?(_?[0-9])?|addr(_?[0-9])?|street_?line(_?[0-9])?)$"
        ),
    ),
    (Kind.CITY, re.compile(r"(^|_)(city|town|municipality)(_?name)?$")),
    (Kind.POSTCODE, re.compile(r"(^|_)(zip|zip_?code|post_?code|postal_?code|zip_?postal)$")),
]
# Hints that only hold when the values agree (a column called ``email`` holding "gmail.com" is not an address).
_HINT_PATTERNS: dict[Kind, tuple[str, ...]] = {
    Kind.EMAIL: ("email",),
    Kind.IP: ("ipv4", "ipv6"),
    Kind.URL: ("url",),
    Kind.PHONE: ("phone",),
    Kind.CREDIT_CARD: ("credit_card",),
    Kind.IBAN: ("iban",),
}
_NOT_ADDRESS = re.compile(r"(^|_)(mac|email|e_mail|ip|web|url|memory|mem|bit|wallet)_")
_PERSON_TABLES = re.compile(
    r"^(customer|user|person|people|employee|staff|member|contact|patient|student|author|client|passenger|"
    r"account_holder|subscriber|teacher|driver|traveller|traveler|guest|applicant|candidate|volunteer|owner)s?$"
)
_BOOL_NAME = re.compile(
    r"^(is|has|can|should|was|did|does|allow|allows|enable|enabled|use|uses)_|_(flag|yn|bool)$"
)
_ID_NAME = re.compile(r"(^|_)(id|key|pk|uuid|guid)$")


def normalize_name(name: str) -> str:
    """``CustomerID`` -> ``customer_id``; ``e-mail Address`` -> ``e_mail_address``: one spelling for name rules."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")


def infer_kind(
    column: Column,
    profile: ColumnProfile | None,
    *,
    is_key: bool,
    table: str | None = None,
    lookup: bool = False,
) -> tuple[Kind, str]:
    """Infer a column's kind from its SQL type, its name and (when there is one) its sample's profile.

    Args:
        column: the column, with its portable SQL type.
        profile: the column's profile on a sample, or None when no sample was read.
        is_key: whether the column belongs to a primary or foreign key (keys are generated, never learned).
        table: the table's name; a column called ``name`` in a table of people (``customers``, ``users``...) is a
            person's name.
        lookup: the table is a lookup table (see :func:`lookup_tables`): its short, mostly distinct labels (an
            airline's name) are categories, not free text.

    Returns:
        The kind and a one-line reason that names the evidence.
    """
    sql = column.type
    if is_key:
        return Kind.ID, "part of a key: generated, never learned"
    try:
        sql_type = column.sql_type
        family = sql_type.family
    except UnknownTypeError:
        return (
            Kind.CATEGORICAL,
            f"unknown SQL type {sql}: treated as categorical; set kind or exclude the column",
        )
    by_family = _by_family(sql_type, sql)
    if by_family is not None:
        return by_family
    name = normalize_name(column.name)
    usable = profile if profile is not None and profile.non_null > 0 else None
    if family is Family.STRING:
        return _infer_text(sql, name, table, usable, lookup)
    if family is Family.INTEGER:
        return _infer_integer(sql, name, usable)
    return Kind.NUMERIC, f"{sql}: a number"


_FAMILY_WORDS: dict[Family, str] = {
    Family.BOOLEAN: "true/false",
    Family.JSON: "JSON documents",
    Family.BINARY: "binary data",
    Family.DATE: "a calendar date",
    Family.TIME: "a time of day",
    Family.TIMESTAMP: "a point in time",
    Family.TIMESTAMP_TZ: "a point in time",
    Family.INTERVAL: "a duration, modelled as a number",
    Family.UUID: "UUID identifiers: generated unique, never learned",
    Family.NETWORK: "IP addresses: faked as valid addresses, never copied",
    Family.RANGE: "ranges: observed range literals drawn as categories",
    Family.ARRAY: "arrays: observed array literals drawn as categories",
    Family.GEOMETRIC: "geometric values: observed literals drawn as categories",
    Family.BIT: "bit strings: observed values drawn as categories",
    Family.XML: "XML documents: faked as text content, never copied",
    Family.TEXT_SEARCH: "text-search vectors: faked as words, never copied",
}
"""Families whose kind the type alone decides (the kind itself comes from :func:`schemas.policy.default_kind`)."""
_NETWORK_WORDS = "networks: observed values drawn as categories (no fake makes them)"


def _by_family(sql_type: SqlType, sql: str) -> tuple[Kind, str] | None:
    words = _FAMILY_WORDS.get(sql_type.family)
    if words is None:
        return None
    kind = default_kind(sql_type)
    if sql_type.family is Family.NETWORK and kind is Kind.MAC_ADDRESS:
        words = "MAC addresses: faked as locally administered addresses, never copied"
    elif sql_type.family is Family.NETWORK and kind is not Kind.IP:
        words = _NETWORK_WORDS
    return kind, f"{sql}: {words}"


def _share(profile: ColumnProfile | None, *patterns: str) -> float:
    if profile is None:
        return 0.0
    return sum(profile.pattern_shares.get(p, 0.0) for p in patterns)


def _pct(share: float) -> str:
    return f"{min(share, 1.0) * 100:.0f}%"


def _infer_text(
    sql: str, name: str, table: str | None, profile: ColumnProfile | None, lookup: bool = False
) -> tuple[Kind, str]:
    # 1. Values that are unmistakably one thing, whatever the column is called.
    strong: list[tuple[Kind, tuple[str, ...], str]] = [
        (Kind.EMAIL, ("email",), "email"),
        (Kind.URL, ("url",), "url"),
        (Kind.IP, ("ipv4", "ipv6"), "ipv4"),
        (Kind.IBAN, ("iban",), "iban"),
        (Kind.CREDIT_CARD, ("credit_card",), "credit_card"),
        (Kind.NATIONAL_ID, ("ssn",), "ssn"),
        (Kind.ID, ("uuid",), "uuid"),
    ]
    for kind, patterns, word in strong:
        share = _share(profile, *patterns)
        if share >= STRONG_SHARE:
            tail = ": generated unique, never learned" if kind is Kind.ID else ""
            return kind, f"{sql} with {_pct(share)} of values like {_PATTERN_WORDS[word]}{tail}"
    # 2. The column's name, backed by the values where a pattern exists to check them.
    hinted = _hint(name, table)
    if hinted is not None:
        kind, why = hinted
        checks = _HINT_PATTERNS.get(kind)
        if checks is None or profile is None:
            return kind, f"{sql} named {why}"
        share = _share(profile, *checks)
        if share >= HINT_SHARE:
            return kind, f"{sql} named {why}, {_pct(share)} of values like {_PATTERN_WORDS[checks[0]]}"
    # Formatted phone numbers are distinctive; bare digit strings are not (they are codes as often as phones).
    if _share(profile, "phone") >= STRONG_SHARE and _share(profile, "digits") < HINT_SHARE:
        return Kind.PHONE, f"{sql} with {_pct(_share(profile, 'phone'))} of values like a phone number"
    # 3. What is left is either a set of categories or free text.
    if profile is None:
        unbounded = "(" not in sql or sql.upper().startswith("TEXT")
        if unbounded:
            return Kind.TEXT, f"{sql} with no sampled values: unbounded text is taken as free text"
        return Kind.CATEGORICAL, f"{sql} with no sampled values: taken as categorical"
    dates = _share(profile, "iso_date")
    date_note = (
        f"; {_pct(dates)} of values are ISO dates in text (set kind: datetime to model them as time)"
        if dates >= STRONG_SHARE
        else ""
    )
    d, n = profile.distinct_count, profile.non_null
    spread = f"{d} distinct of {n} sampled values"
    long_values = (profile.max_length or 0) >= LONG_TEXT or _share(profile, "multi_word") >= 0.3
    if lookup and (profile.max_length or 0) < LONG_TEXT and not dates >= STRONG_SHARE:
        return (
            Kind.CATEGORICAL,
            (
                f"{sql}: short labels of a lookup table ({spread}, up to {profile.max_length} chars), learned "
                "as categories (set kind: text to fake them instead)"
            ),
        )
    if profile.unique_share >= 0.5 and long_values and not dates >= STRONG_SHARE:
        return (
            Kind.TEXT,
            f"{sql} with long, mostly distinct values ({spread}, up to {profile.max_length} chars)",
        )
    code_like = _share(profile, "multi_word") < 0.1 and dates < STRONG_SHARE
    if n >= 20 and profile.unique_share >= NEAR_UNIQUE and code_like:
        # A key-like code (a licence plate, an SKU, an address): learned as categories, every synthetic value
        # would be a real one. Generated in the same format instead.
        return (
            Kind.ID,
            (
                f"{sql} with {_pct(profile.unique_share)} of {n} sampled values distinct, like a code: "
                "generated unique in the same format, never learned"
            ),
        )
    if d <= MAX_CATEGORIES or d <= 0.1 * n:
        return Kind.CATEGORICAL, f"{sql} with few distinct values ({spread}){date_note}"
    return (
        Kind.CATEGORICAL,
        f"{sql} with many short distinct values ({spread}), kept as categories{date_note}",
    )


def _hint(name: str, table: str | None) -> tuple[Kind, str] | None:
    for kind, pattern in _HINTS:
        if pattern.search(name):
            if kind is Kind.ADDRESS and _NOT_ADDRESS.search(name):
                continue
            return kind, repr(name)
    if name == "name" and table is not None and _PERSON_TABLES.match(normalize_name(table)):
        return Kind.PERSON_NAME, f"'name' in a table of people ({table})"
    return None


def _infer_integer(sql: str, name: str, profile: ColumnProfile | None) -> tuple[Kind, str]:
    zero_one = profile is None or (profile.min in (0, 1) and profile.max in (0, 1))
    if _BOOL_NAME.search(name) and zero_one:
        seen = "" if profile is None else ", values only 0/1"
        return Kind.BOOLEAN, f"{sql} named {name!r}{seen}: a flag"
    few = (
        profile is not None
        and profile.distinct_count <= MAX_INT_CATEGORIES
        and (profile.non_null >= 5 * profile.distinct_count)
    )
    if _ID_NAME.search(name):
        if few and profile is not None:
            return Kind.CATEGORICAL, (
                f"{sql} named like an identifier but with only {profile.distinct_count} distinct values: a code"
            )
        return Kind.ID, f"{sql} named like an identifier ({name!r}): generated, never learned"
    if few and profile is not None:
        return (
            Kind.CATEGORICAL,
            f"{sql} with few distinct values ({profile.distinct_count} in {profile.non_null})",
        )
    return Kind.NUMERIC, f"{sql}: a number"


def apply_inference(schema: DatabaseSchema, profiles: dict[str, TableProfile]) -> DatabaseSchema:
    """Set every column's kind and kind_reason from its type, name and profile; return a new schema.

    Kinds the user set (``kind_reason`` starting with ``"user:"``) are kept as they are. Primary and foreign key
    columns become ``id``; so does a column that alone forms a unique constraint, unless it is PII.

    Args:
        schema: the reflected (or loaded) schema; it is not modified.
        profiles: table profiles keyed by table name; tables without one are inferred from types and names alone.
    """
    inferred = _apply_inference(schema, profiles, lookups=set())
    lookups = set(lookup_tables(inferred, text_ok=True))
    return _apply_inference(schema, profiles, lookups=lookups) if lookups else inferred


def lookup_tables(schema: DatabaseSchema, *, text_ok: bool = False) -> dict[str, str]:
    """Lookup tables (airlines, countries, product categories) and why: referenced by foreign keys, with none of
    their own, at most :data:`LOOKUP_MAX_ROWS` rows, not a table of people, no PII column (and no free text,
    unless ``text_ok``). ``synthdb inspect`` proposes ``mode: keep`` for them."""
    referenced = {fk.ref_table for t in schema.active_tables for fk in t.foreign_keys if fk.ref_table != t.name}
    found: dict[str, str] = {}
    for t in schema.active_tables:
        if t.name not in referenced or t.foreign_keys or t.row_count is None or t.row_count > LOOKUP_MAX_ROWS:
            continue
        if _PERSON_TABLES.match(normalize_name(t.name)):
            continue
        kinds = {c.kind for c in t.active_columns}
        if any(k.is_pii for k in kinds if k is not Kind.TEXT) or (Kind.TEXT in kinds and not text_ok):
            continue
        found[t.name] = f"a lookup table of {t.row_count:,} rows, referenced by foreign keys, with no personal data"
    return found


def _apply_inference(
    schema: DatabaseSchema, profiles: dict[str, TableProfile], *, lookups: set[str]
) -> DatabaseSchema:
    tables: list[Table] = []
    for t in schema.tables:
        tprof = profiles.get(t.name)
        pk = set(t.primary_key.columns) if t.primary_key else set()
        fk_parent = {c: fk.ref_table for fk in t.foreign_keys for c in fk.columns}
        unique_alone = {u.columns[0] for u in t.unique if len(u.columns) == 1}
        columns: list[Column] = []
        for col in t.columns:
            if col.kind_reason is not None and col.kind_reason.startswith(USER_PREFIX):
                columns.append(col)
                continue
            cprof = tprof.columns.get(col.name) if tprof is not None else None
            text_member = _text_key_member(t, col)
            is_key = col.name in t.key_columns and not text_member
            kind, reason = infer_kind(col, cprof, is_key=is_key, table=t.name, lookup=t.name in lookups)
            if text_member:
                # a text member of a composite primary key carries data: a code is generated in its format, PII is
                # faked, a few-valued label is learned as categories (see schemas.policy.table_roles)
                reason = f"{KEY_MEMBER_REASON}; {reason}"
            elif col.name in pk:
                reason = "primary key: generated unique, never learned"
            elif col.name in fk_parent:
                reason = (
                    f"foreign key to {fk_parent[col.name]}: points at generated parent rows, never learned"
                )
            elif (
                col.name in unique_alone
                and kind in (Kind.CATEGORICAL, Kind.NUMERIC, Kind.TEXT)
                and not _native_text(col)  # generated keys would not be valid ranges, arrays, bit strings...
            ):
                kind, reason = (
                    Kind.ID,
                    f"{col.type} under a unique constraint: generated unique, never learned",
                )
            columns.append(col.model_copy(update={"kind": kind, "kind_reason": reason}))
        tables.append(t.model_copy(update={"columns": columns}))
    return schema.model_copy(update={"tables": tables})


def _text_key_member(table: Table, col: Column) -> bool:
    """A text column of a composite primary key that is no foreign-key column (``tag(sensor_code, label)``)."""
    pk = table.primary_key.columns if table.primary_key else []
    if len(pk) < 2 or col.name not in pk or any(col.name in fk.columns for fk in table.foreign_keys):
        return False
    try:
        return col.family is Family.STRING
    except UnknownTypeError:
        return False


# ---------------------------------------------------------------------------------------------------------------
# Virtual foreign keys


_GENERIC_KEYS = {"id", "key", "code", "pk", "uuid", "guid", "name", "no", "number", "nr", "ref"}
_KEY_FAMILIES = {Family.INTEGER, Family.DECIMAL, Family.STRING, Family.UUID}


@dataclass(frozen=True)
class VirtualFkCandidate:
    """A column whose name and type say it may reference another table's single-column primary key.

    Attributes:
        child: the child table.
        column: the child column.
        parent: the parent table.
        parent_column: the parent's primary-key column.
        why: how the names match, in words.
        rank: 0 when the column is named after the parent table, 1 when it only shares the key's name.
    """

    child: str
    column: str
    parent: str
    parent_column: str
    why: str
    rank: int


def virtual_fk_candidates(schema: DatabaseSchema) -> list[VirtualFkCandidate]:
    """Name- and type-based candidates for undeclared foreign keys, before any value is looked at.

    ``connectors.inspect`` uses this to decide which parents' keys are worth reading in full.
    """
    parents = [
        (p, p.primary_key.columns[0])
        for p in schema.active_tables
        if p.primary_key is not None and len(p.primary_key.columns) == 1
    ]
    found: list[VirtualFkCandidate] = []
    for t in schema.active_tables:
        declared = {c for fk in t.foreign_keys for c in fk.columns}
        own_pk = t.primary_key.columns if t.primary_key else []
        for col in t.columns:
            if col.excluded or col.name in declared or not _key_family(col):
                continue
            cname = normalize_name(col.name)
            is_own_pk = own_pk == [col.name]
            options: list[VirtualFkCandidate] = []
            for parent, pk in parents:
                if parent.name == t.name or not _compatible(col, parent.column(pk)):
                    continue
                npk = normalize_name(pk)
                named_after = {f"{s}_{npk}" for s in _forms(parent.name)} | {
                    f"{s}{suffix}" for s in _forms(parent.name) for suffix in ("_id", "id", npk)
                }
                if cname in named_after or (cname == npk and npk in named_after):
                    why = f"named after table {parent.name!r}"
                    options.append(VirtualFkCandidate(t.name, col.name, parent.name, pk, why, 0))
                elif cname == npk and npk not in _GENERIC_KEYS and not is_own_pk:
                    why = f"same name as {parent.name}'s primary key"
                    options.append(VirtualFkCandidate(t.name, col.name, parent.name, pk, why, 1))
            if options:
                best = min(o.rank for o in options)
                found.extend(o for o in options if o.rank == best)
    return found


def propose_virtual_foreign_keys(
    schema: DatabaseSchema,
    samples: dict[str, pa.Table],
    *,
    parent_keys: dict[str, pa.Array | pa.ChunkedArray] | None = None,
) -> list[tuple[str, ForeignKey, str]]:
    """Propose foreign keys the database does not declare, for the user to accept in the schema file.

    A column is proposed when its name points at another table's single-column primary key (``customer_id`` ->
    ``customers.id``, or the same non-generic key name), the types are compatible, and its sampled values are
    found among that parent's key values.

    Args:
        schema: the schema with its declared keys.
        samples: sampled rows per table name.
        parent_keys: every key value of a parent table (its primary-key column), where they were read in full. A
            parent without them is checked against its sample, which is complete only when it holds every row.

    Returns:
        ``(child table, ForeignKey(virtual=True), reason)`` for each proposal, at most one per child column.
    """
    parent_keys = parent_keys or {}
    proposals: list[tuple[str, ForeignKey, str]] = []
    by_column: dict[tuple[str, str], list[VirtualFkCandidate]] = {}
    for cand in virtual_fk_candidates(schema):
        by_column.setdefault((cand.child, cand.column), []).append(cand)
    for (child, column), cands in by_column.items():
        sample = samples.get(child)
        if sample is None or column not in sample.column_names:
            continue
        values = pc.unique(pc.drop_null(sample.column(column)))
        if len(values) == 0:
            continue  # no evidence either way
        accepted: list[tuple[VirtualFkCandidate, str]] = []
        for cand in cands:
            verdict = _check_values(schema, cand, values, samples, parent_keys)
            if verdict is not None:
                accepted.append((cand, verdict))
        if not accepted:
            continue
        cand, verdict = accepted[0]
        reason = f"{child}.{column} is {cand.why} and {verdict}"
        if len(accepted) > 1:
            others = ", ".join(f"{c.parent}.{c.parent_column}" for c, _ in accepted[1:])
            reason += f" (it would also fit {others}; pick one)"
        nullable = schema.table(child).column(column).nullable
        fk = ForeignKey(
            columns=[column],
            ref_table=cand.parent,
            ref_columns=[cand.parent_column],
            virtual=True,
            nullable=nullable,
        )
        logger.info("proposing virtual foreign key %s%s: %s", child, fk.label, reason)
        proposals.append((child, fk, reason))
    return proposals


def _check_values(
    schema: DatabaseSchema,
    cand: VirtualFkCandidate,
    values: pa.Array,
    samples: dict[str, pa.Table],
    parent_keys: dict[str, pa.Array | pa.ChunkedArray],
) -> str | None:
    """A phrase saying how the child's values match the parent's keys, or None when they do not."""
    parent = schema.table(cand.parent)
    complete = cand.parent in parent_keys
    keys: pa.Array | pa.ChunkedArray | None = parent_keys.get(cand.parent)
    if keys is None:
        psample = samples.get(cand.parent)
        if psample is None or cand.parent_column not in psample.column_names:
            return None
        keys = psample.column(cand.parent_column)
        complete = parent.row_count is not None and psample.num_rows >= parent.row_count
    keys = pc.drop_null(keys)
    if len(keys) == 0:
        return None
    try:
        probe = values.cast(keys.type) if values.type != keys.type else values
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    hits = int(pc.sum(pc.is_in(probe, value_set=_plain_keys(keys))).as_py() or 0)
    n = len(values)
    if complete:
        if hits < n:
            return None
        return f"all {n} distinct sampled values are among the {len(keys)} keys of {cand.parent}"
    # The parent's keys were only sampled: every child value cannot be checked, but none may fall outside the
    # range of keys seen, and some must be found.
    if hits == 0 or not _within_range(probe, keys):
        return None
    return (
        f"{hits} of {n} distinct sampled values were found among a sample of the keys of {cand.parent} "
        "(its keys were not all read; check before accepting)"
    )


def _plain_keys(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys


def _within_range(values: pa.Array, keys: pa.Array | pa.ChunkedArray) -> bool:
    if not (pa.types.is_integer(keys.type) or pa.types.is_decimal(keys.type)):
        return True
    lo_hi = pc.min_max(keys)
    mm = pc.min_max(values)
    return bool(mm["min"].as_py() >= lo_hi["min"].as_py() and mm["max"].as_py() <= lo_hi["max"].as_py())


def _native_text(col: Column) -> bool:
    try:
        return col.family in NATIVE_TEXT_FAMILIES
    except UnknownTypeError:
        return False


def _key_family(col: Column) -> bool:
    try:
        return col.family in _KEY_FAMILIES
    except UnknownTypeError:
        return False


def _compatible(child: Column, parent: Column) -> bool:
    groups: list[set[Family]] = [{Family.INTEGER, Family.DECIMAL}, {Family.STRING, Family.UUID}]
    try:
        a, b = child.family, parent.family
    except UnknownTypeError:
        return False
    return a == b or any(a in g and b in g for g in groups)


def _singular(word: str) -> str:
    rules: list[tuple[str, Callable[[str], str]]] = [
        ("ies", lambda w: w[:-3] + "y"),
        ("sses", lambda w: w[:-2]),
        ("xes", lambda w: w[:-2]),
        ("ches", lambda w: w[:-2]),
        ("shes", lambda w: w[:-2]),
        ("ss", lambda w: w),
        ("s", lambda w: w[:-1]),
    ]
    for suffix, fix in rules:
        if word.endswith(suffix) and len(word) > len(suffix):
            return fix(word)
    return word


def _forms(table: str) -> set[str]:
    """The spellings a column may use for a table: ``order_items`` -> {order_items, order_item, orderitem...}."""
    name = normalize_name(table)
    forms = {name, _singular(name)}
    for prefix in ("tbl_", "tb_", "t_"):
        if name.startswith(prefix):
            forms |= {name[len(prefix) :], _singular(name[len(prefix) :])}
    forms |= {f.replace("_", "") for f in forms}
    return {f for f in forms if f}
