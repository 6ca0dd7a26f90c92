"""How the portal's lists page: PAGE_SIZE rows a page, the page asked for by `?page=`."""
from __future__ import annotations

from flask import request

from backend.models.types import MAX_ROW_ID

PAGE_SIZE = 25


def page_number() -> int:
    """The page asked for (`?page=`), the first for anything but a number of a page that can be
    (a number beyond the database's integers would make its OFFSET overflow)."""
    number = request.args.get("page", 1, type=int)
    return number if 1 <= number <= MAX_ROW_ID else 1
