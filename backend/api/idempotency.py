"""Idempotency-Key on every POST under /api/v1: a retried write gets the first answer again.

Keys belong to a principal (an API key or a user), so two clients may use the same key. A
request is known by its fingerprint, the SHA-256 of its method, path, query string and body: a
key used again for a different request is a 409 `idempotency-key-reused`, and one whose first
request is still running a 409 `idempotency-request-in-progress`. The claim is committed before
the view runs; the answer is kept if it is not a server error, else the claim is given back so
a retry runs afresh. A replayed answer carries `Idempotent-Replayed: true`.

Views that take no key (signing in: it has no principal yet) are marked with `exempt`.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flask import Flask, Response, current_app, request

from backend.api.auth import current_actor
from backend.api.responses import is_api_request
from backend.extensions import db
from backend.models import utcnow
from backend.services.errors import InvalidInput
from backend.services.idempotency import StoredResponse, claim_key, release_key, remember_response

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")  # printable ASCII
# Headers describing this one exchange rather than the answer: a replay gets its own. (The
# request id, the rate-limit headers and the session cookie are added after this hook runs.)
_NOT_REPLAYED = frozenset({"content-length", "set-cookie"})
_EXEMPT = "idempotency_exempt"
_CLAIM = "anchorline.idempotency_claim"  # kept with the request (see backend.api.auth on why not g)

View = TypeVar("View", bound=Callable[..., object])


@dataclass(frozen=True)
class _Claim:
    principal: str
    key: str


def exempt(view: View) -> View:
    """Marks a POST view as taking no Idempotency-Key (put it right under the route decorator)."""
    setattr(view, _EXEMPT, True)
    return view


def install(app: Flask) -> None:
    app.before_request(_claim_or_replay)
    app.after_request(_keep_answer)
    app.teardown_request(_release_unanswered)


def request_fingerprint() -> str:
    """The SHA-256 (hex) of the request's method, path, query string and body, each length-prefixed
    so that no two different requests run together into the same bytes."""
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.query_string, request.get_data(cache=True)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _applies() -> bool:
    if request.method != "POST" or not is_api_request() or request.routing_exception is not None:
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return not getattr(view, _EXEMPT, False)


def _claim_or_replay() -> Response | None:
    if not _applies():
        return None
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return None
    principal = current_actor().principal
    if not _KEY.fullmatch(key):
        raise InvalidInput(
            "the Idempotency-Key is not valid",
            errors={IDEMPOTENCY_KEY_HEADER: [f"1 to {MAX_KEY_LENGTH} printable ASCII characters"]},
        )
    stored = claim_key(principal, key, request_fingerprint(), now=utcnow())
    if stored is None:
        request.environ[_CLAIM] = _Claim(principal, key)
        return None
    replay = Response(stored.body, status=stored.status, headers=[
        (name, value) for name, values in stored.headers.items() for value in values
    ])
    replay.headers[REPLAYED_HEADER] = "true"
    return replay


def _keep_answer(response: Response) -> Response:
    claim: _Claim | None = request.environ.pop(_CLAIM, None)
    if claim is None:
        return response
    if response.status_code >= 500:
        release_key(claim.principal, claim.key)
    else:
        headers: dict[str, list[str]] = {}
        for name, value in response.headers.items():
            if name.lower() not in _NOT_REPLAYED:
                headers.setdefault(name, []).append(value)
        remember_response(
            claim.principal, claim.key, StoredResponse(response.status_code, response.get_data(as_text=True), headers)
        )
    return response


def _release_unanswered(_error: BaseException | None) -> None:
    """A claim still held here had no answer (an exception escaped every handler): give it back."""
    claim: _Claim | None = request.environ.pop(_CLAIM, None)
    if claim is not None:
        db.session.rollback()  # the failed request's transaction, if it left one open
        release_key(claim.principal, claim.key)
