"""Idempotency keys: the first request a principal makes with a key, and the answer it got.

The API claims a key before it handles a write (`claim_key`), then keeps the answer
(`remember_response`) or, when the write failed on the server's side, gives the key back
(`release_key`) so a retry runs afresh. The claim is committed before the write runs: the
unique (principal, key) row is the lock that keeps a concurrent retry from running it twice.
Records hold plain data (status, body, headers) and no HTTP objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import IDEMPOTENCY_RETENTION, IdempotencyRecord
from backend.services.errors import InvalidState
from backend.services.transaction import atomic

# A claim without an answer this old was left by a request whose process died (an answer takes
# seconds); the key is then handed to the next retry instead of staying blocked for a day.
ABANDONED_CLAIM_AGE = timedelta(minutes=5)


class IdempotencyKeyReused(InvalidState):
    """The key was used before by the same principal for a different request."""

    code = "idempotency-key-reused"


class IdempotentRequestInProgress(InvalidState):
    """The first request made with the key has not been answered yet."""

    code = "idempotency-request-in-progress"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, list[str]]


def claim_key(principal: str, key: str, fingerprint: str, *, now: datetime) -> StoredResponse | None:
    """Claims `key` for the request whose fingerprint is `fingerprint`.

    Returns None when the request is the key's first (the claim is committed: go ahead), or the
    stored answer to the same request made earlier. Raises IdempotencyKeyReused when the key
    was used for another request, IdempotentRequestInProgress while the first is unanswered.
    """
    _forget_expired(principal, key, now)
    try:
        _insert_claim(principal, key, fingerprint, now)
        return None
    except IntegrityError:
        pass  # the key is taken: by an earlier request, or by a concurrent one that just won
    record = _find(principal, key)
    if record is None:
        # Released between our insert and this read: the first request failed a moment ago.
        raise IdempotentRequestInProgress("the first request with this key has just failed: retry it")
    if record.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was already used for a different request")
    if record.response_status is None:
        if _take_over_abandoned(record, now):
            return None
        raise IdempotentRequestInProgress("the first request with this Idempotency-Key is still being handled")
    return StoredResponse(record.response_status, record.response_body or "", record.response_headers or {})


@atomic
def remember_response(principal: str, key: str, response: StoredResponse) -> None:
    """Stores the answer to the request that claimed `key`."""
    db.session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
        .values(response_status=response.status, response_body=response.body, response_headers=response.headers)
    )


@atomic
def release_key(principal: str, key: str) -> None:
    """Gives back an unanswered claim, so a retry with the key runs the request afresh."""
    db.session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.key == key,
            IdempotencyRecord.response_status.is_(None),
        )
    )


@atomic
def purge_expired_idempotency_records(now: datetime) -> int:
    """Deletes the records past their retention (for the workers' schedule); returns how many."""
    result = db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now))
    return result.rowcount


def _find(principal: str, key: str) -> IdempotencyRecord | None:
    return db.session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
    )


@atomic
def _forget_expired(principal: str, key: str, now: datetime) -> None:
    db.session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at <= now,
        )
    )


@atomic
def _insert_claim(principal: str, key: str, fingerprint: str, now: datetime) -> None:
    db.session.add(
        IdempotencyRecord(
            principal=principal,
            key=key,
            request_fingerprint=fingerprint,
            created_at=now,
            expires_at=now + IDEMPOTENCY_RETENTION,
        )
    )


@atomic
def _take_over_abandoned(record: IdempotencyRecord, now: datetime) -> bool:
    """Whether this request took over `record`'s abandoned claim (only one retry can: the update
    matches only while the claim is still the abandoned one)."""
    result = db.session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == record.id,
            IdempotencyRecord.response_status.is_(None),
            IdempotencyRecord.created_at == record.created_at,
            IdempotencyRecord.created_at <= now - ABANDONED_CLAIM_AGE,
        )
        .values(created_at=now)
    )
    return result.rowcount == 1
