"""Column types and helpers every model module shares."""
from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ColumnElement, DateTime, Dialect, Enum, cast, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# Row ids are 32-bit integers in the database; a larger number names no row (and the database
# would refuse to compare it with one).
MAX_ROW_ID = 2**31 - 1
# Room for every enum's longest value and a few more without changing the column type.
ENUM_LENGTH = 32

# JSON documents: JSONB on PostgreSQL (comparable and indexable), JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC: the default of every timestamp column."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores the instant (timestamptz); SQLite has no time zones, so the value is
    converted to UTC before it is stored and read back with UTC attached. A naive datetime is
    refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give it a time zone (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_type(enum_class: type[enum.StrEnum], column: str) -> Enum:
    """A string column holding one of `enum_class`'s values, checked by the database.

    The CHECK constraint is named after the column (ck_<table>_<column>), and the values, not
    the member names, are stored, so raw SQL sees the same words as the code.
    """
    return Enum(
        enum_class,
        name=column,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        values_callable=_values,
        validate_strings=True,
    )


def _values(enum_class: type[enum.StrEnum]) -> list[Any]:
    return [member.value for member in enum_class]


def total_minor(amounts: ColumnElement[Any]) -> ColumnElement[int]:
    """The SUM of minor-unit amounts as an integer on every backend (PostgreSQL sums BIGINTs as
    NUMERIC, which arrives as a Decimal), and 0 over no rows."""
    return cast(func.coalesce(func.sum(amounts), 0), BigInteger)
