"""The audit log: who did what to which object, and what it looked like before and after.

It is append-only, enforced twice: the ORM refuses to flush a change or deletion of an entry
(or to run a bulk UPDATE or DELETE on the table), and database triggers, created by the
migration, refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) from any client, raw SQL included.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, event
from sqlalchemy.orm import Mapped, Mapper, ORMExecuteState, Session, mapped_column

from backend.extensions import db
from backend.models.types import JSONDocument, UTCDateTime, utcnow

# The message of the database triggers, so callers can recognise the refusal.
APPEND_ONLY_MESSAGE = "audit_log is append-only"


class AppendOnlyError(Exception):
    """An audit log entry was about to be changed or deleted."""


class AuditLog(db.Model):
    """One audited action. The actor is a user, an API key (of an organisation), or neither
    when the platform itself acted (the indexer applying an event, for example)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    action: Mapped[str] = mapped_column(String(100), index=True)  # e.g. "invoice.confirm"
    subject_type: Mapped[str] = mapped_column(String(50))  # e.g. "invoice"
    # A row id, a document's SHA-256 or a receivable id: text, so any of them fits.
    subject_id: Mapped[str] = mapped_column(String(66))
    before: Mapped[Any | None] = mapped_column(JSONDocument)
    after: Mapped[Any | None] = mapped_column(JSONDocument)
    request_id: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<AuditLog {self.id} {self.action} {self.subject_type}:{self.subject_id}>"


@event.listens_for(AuditLog, "before_update")
@event.listens_for(AuditLog, "before_delete")
def _refuse_change(_mapper: Mapper[AuditLog], _connection: Any, entry: AuditLog) -> None:
    raise AppendOnlyError(f"{APPEND_ONLY_MESSAGE}: entry {entry.id} cannot be changed or deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_change(state: ORMExecuteState) -> None:
    """`update(AuditLog)` and `delete(AuditLog)` statements bypass the mapper events above."""
    if (state.is_update or state.is_delete) and state.bind_mapper is not None and state.bind_mapper.class_ is AuditLog:
        raise AppendOnlyError(f"{APPEND_ONLY_MESSAGE}: bulk UPDATE and DELETE are refused")
