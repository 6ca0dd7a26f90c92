"""The audit trail: one append-only entry per change, written in the change's own transaction."""
from __future__ import annotations

from typing import Any

from backend.extensions import db
from backend.models import AuditLog
from backend.services.actors import Actor


def record(
    actor: Actor | None,
    action: str,
    subject_type: str,
    subject_id: int | str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    """Adds an entry to the session; `actor` is None when the platform itself acted (the
    indexer applying a ledger event). `before` and `after` hold JSON values only, never a key."""
    entry = AuditLog(
        actor_user_id=actor.user.id if actor and actor.user else None,
        actor_organisation_id=actor.organisation.id if actor else None,
        api_key_id=actor.api_key.id if actor and actor.api_key else None,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        before=before,
        after=after,
        request_id=actor.request_id if actor else None,
    )
    db.session.add(entry)
    return entry
