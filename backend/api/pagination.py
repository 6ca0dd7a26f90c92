"""Cursor pagination for every list the API returns.

A list view takes `CursorArgs` (`limit`, `cursor`) from the query string, passes its select
(already filtered to what the caller may see) to `paginate`, and answers `page_schema(Item)`:
`{"items": [...], "next_cursor": "..." | null}`, with a `Link: <...>; rel="next"` header while
there is a next page.

Pages are keyset pages: rows are ordered by the sort columns, ascending, then by id, and the
next page starts after the last row's values. So a page is as fast deep in a list as at its
start, and rows added meanwhile neither repeat nor shift the pages. The cursor is opaque to
clients: URL-safe base64 of the last row's values as JSON, with an HMAC (under a key derived
from SECRET_KEY) over them and the list they came from, so a cursor cannot be forged, altered
or used on another list.
"""
from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from flask import Response, after_this_request, current_app, request
from marshmallow import Schema, fields, validate
from sqlalchemy import ColumnElement, Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from backend.extensions import db
from backend.services.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Tells the cursor key apart from every other key derived from SECRET_KEY.
_CURSOR_KEY_PURPOSE = b"anchorline pagination cursor"
_MAC_BYTES = 16
INVALID_CURSOR = "not a cursor this list gave out"

T = TypeVar("T")


class CursorArgs(Schema):
    """The query parameters of a page of a list."""

    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"How many items a page holds (1 to {MAX_LIMIT})"},
    )
    cursor = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$", error=INVALID_CURSOR),
        metadata={"description": "Where the page starts: the next_cursor of the page before; none for the first"},
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def paginate(statement: Select[Any], args: Mapping[str, Any], *, sort: Sequence[InstrumentedAttribute[Any]] = ()) -> Page[Any]:
    """The page of `statement`'s rows that `args` (loaded CursorArgs) asks for.

    `statement` selects one mapped entity with an `id`; `sort` names mapped, non-null columns of
    it to order by (ascending, id last). Any order_by of `statement` is replaced. A cursor that
    is not this list's is InvalidInput on the field `cursor`.
    """
    entity = statement.column_descriptions[0]["entity"]
    columns = (*sort, entity.id)
    limit = args.get("limit", DEFAULT_LIMIT)
    if args.get("cursor"):
        after = _decode_cursor(args["cursor"], columns)
        statement = statement.where(_after(columns, after))
    rows = db.session.scalars(statement.order_by(None).order_by(*columns).limit(limit + 1)).all()
    items = list(rows[:limit])
    if len(rows) <= limit:
        return Page(items, None)
    next_cursor = _encode_cursor([getattr(items[-1], column.key) for column in columns])
    link = f'<{_page_url(next_cursor)}>; rel="next"'

    @after_this_request
    def add_link(response: Response) -> Response:
        response.headers.add("Link", link)
        return response

    return Page(items, next_cursor)


@functools.cache
def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """The schema of a page of `item_schema`s: {"items": [...], "next_cursor": str | null}.
    One class per item schema, so the OpenAPI document names it once."""
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(
                required=True,
                allow_none=True,
                metadata={"description": "The cursor of the next page; null on the last page"},
            ),
        },
        name=name,
    )


def _after(columns: Sequence[InstrumentedAttribute[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    # Each value bound with its column's type, so it is stored-form-compatible (UTC timestamps
    # on SQLite, enum values) exactly as the column's own values are.
    return tuple_(*columns) > tuple_(*(literal(value, column.type) for column, value in zip(columns, values)))


def _page_url(cursor: str) -> str:
    query = request.args.to_dict(flat=False)
    query["cursor"] = [cursor]
    return f"{request.base_url}?{urlencode(query, doseq=True)}"


# ---------------------------------------------------------------- the cursor


def _encode_cursor(values: Sequence[Any]) -> str:
    payload = json.dumps([_to_json(value) for value in values], separators=(",", ":")).encode()
    return f"{_b64encode(payload)}.{_b64encode(_mac(payload))}"


def _decode_cursor(cursor: str, columns: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    try:
        encoded_payload, encoded_mac = cursor.split(".")
        payload, mac = _b64decode(encoded_payload), _b64decode(encoded_mac)
    except (ValueError, binascii.Error):
        raise _invalid_cursor() from None
    if not hmac.compare_digest(mac, _mac(payload)):
        raise _invalid_cursor()
    values = json.loads(payload)
    if len(values) != len(columns):  # signed by this server, but for another sort of this list
        raise _invalid_cursor()
    return [_from_json(value) for value in values]


def _mac(payload: bytes) -> bytes:
    """The HMAC of `payload` and the list it belongs to (the endpoint), truncated to 128 bits."""
    key = hmac.new(current_app.config["SECRET_KEY"].encode(), _CURSOR_KEY_PURPOSE, hashlib.sha256).digest()
    message = (request.endpoint or "").encode() + b"\0" + payload
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def _invalid_cursor() -> InvalidInput:
    return InvalidInput("the cursor is not valid for this list", errors={"cursor": [INVALID_CURSOR]})


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _to_json(value: Any) -> Any:
    """A sort value as JSON; the types JSON lacks are tagged so they come back as themselves."""
    if value is None:
        raise ValueError("a sort column of a paginated list must not be NULL")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        ((kind, text),) = value.items()
        return {"datetime": datetime.fromisoformat, "date": date.fromisoformat, "decimal": Decimal}[kind](text)
    return value
