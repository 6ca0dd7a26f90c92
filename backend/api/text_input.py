"""No text the API takes may contain NUL (U+0000).

PostgreSQL's text types cannot store it, and no field has a use for it, yet it is valid in JSON
strings, query strings and form fields. One check, before any view reads the request, refuses it
wherever it appears, so no field needs to remember to, and no database answers with an error.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Flask, request

from backend.config import API_URL_PREFIX
from backend.services.errors import InvalidInput

NUL = "\x00"


def install(app: Flask) -> None:
    app.before_request(refuse_nul_characters)


def refuse_nul_characters() -> None:
    if not request.path.startswith(API_URL_PREFIX + "/"):
        return
    fields = [name for name, value in request.args.items(multi=True) if NUL in name or NUL in value]
    if request.mimetype == "multipart/form-data" or request.mimetype == "application/x-www-form-urlencoded":
        fields += [name for name, value in request.form.items(multi=True) if NUL in name or NUL in value]
    if request.is_json:
        fields += list(_fields_with_nul(request.get_json(silent=True), ""))
    if fields:
        raise InvalidInput(
            "text may not contain the NUL character (U+0000)",
            errors={field or "body": ["contains the NUL character (U+0000)"] for field in fields},
        )


def _fields_with_nul(value: Any, path: str) -> Iterator[str]:
    """The dotted paths of the JSON strings (keys included) that contain NUL."""
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                yield child
            else:
                yield from _fields_with_nul(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _fields_with_nul(item, f"{path}.{index}" if path else str(index))
