"""Logical kinds of columns: what a column *means*, which decides how it is modelled.

The SQL type says how a value is stored; the kind says how synthdb treats it. Keys (``id``) are generated, never
learned. PII kinds are never learned either: they are generated as realistic fakes of the same kind and format.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """The logical kind of a column."""

    ID = "id"
    CATEGORICAL = "categorical"
    NUMERIC = "numeric"
    DATETIME = "datetime"
    DATE = "date"
    TIME = "time"
    BOOLEAN = "boolean"
    TEXT = "text"
    JSON = "json"
    BINARY = "binary"
    # PII: generated as fakes, never learned
    EMAIL = "email"
    PERSON_NAME = "person_name"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    PHONE = "phone"
    ADDRESS = "address"
    CITY = "city"
    POSTCODE = "postcode"
    NATIONAL_ID = "national_id"
    IP = "ip"
    MAC_ADDRESS = "mac_address"
    URL = "url"
    CREDIT_CARD = "credit_card"
    IBAN = "iban"
    USERNAME = "username"

    @property
    def is_pii(self) -> bool:
        return self in PII_KINDS

    @property
    def is_learned(self) -> bool:
        """True when a model learns the column's values (not keys, not PII)."""
        return self not in PII_KINDS and self is not Kind.ID


PII_KINDS: frozenset[Kind] = frozenset(
    {
        Kind.EMAIL,
        Kind.PERSON_NAME,
        Kind.FIRST_NAME,
        Kind.LAST_NAME,
        Kind.PHONE,
        Kind.ADDRESS,
        Kind.CITY,
        Kind.POSTCODE,
        Kind.NATIONAL_ID,
        Kind.IP,
        Kind.MAC_ADDRESS,
        Kind.URL,
        Kind.CREDIT_CARD,
        Kind.IBAN,
        Kind.USERNAME,
    }
)
