"""Small HTTP helpers every API module shares: which requests are the API's, and the 202 answer
to a write that the ledger has still to carry out."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from backend.config import API_URL_PREFIX


def is_api_request() -> bool:
    """Whether the current request is addressed to the API (its path is under /api/v1)."""
    return request.path == API_URL_PREFIX or request.path.startswith(API_URL_PREFIX + "/")


def accepted(body: dict[str, Any], location: str) -> Response:
    """202 Accepted: the change is recorded and queued for the ledger; `location` is where to
    poll for its state (the indexer moves it on once the transaction is mined)."""
    response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = location
    return response
