"""Idempotency keys: a client retrying a write with the same key gets the first answer again
instead of a second write."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.types import JSONDocument, UTCDateTime, utcnow

# How long a key is remembered: at least a day, so a client's retries over a long outage
# still find the first answer.
IDEMPOTENCY_RETENTION = timedelta(hours=24)


def _default_expiry() -> datetime:
    return utcnow() + IDEMPOTENCY_RETENTION


class IdempotencyRecord(db.Model):
    """The first request made with one key by one principal, and the response it got.

    The response columns are empty while that first request is still being handled; the
    unique (principal, key) is what stops a concurrent retry from being handled twice.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal: Mapped[str] = mapped_column(String(100))  # "apikey:<id>" or "user:<id>"
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 (hex) of method, path and body: the same key with another request is an error.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_default_expiry, index=True)

    def __repr__(self) -> str:
        return f"<IdempotencyRecord {self.id} {self.principal} {self.key!r} status={self.response_status}>"
