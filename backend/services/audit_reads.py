"""Reading the audit log: the auditor and the operator see every entry, filtered by what was
done, to what, by whom and when."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select

from backend.models import AuditLog
from backend.services.actors import Actor
from backend.services.errors import InvalidInput
from backend.services.permissions import Action, authorize


def audit_entries(
    actor: Actor,
    *,
    action: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    actor_organisation_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[tuple[AuditLog]]:
    """Audit entries matching every filter given; `since` is inclusive, `until` exclusive."""
    authorize(actor, Action.READ_AUDIT_LOG)
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"{name} has no time zone", errors={name: ["give the time zone (Z for UTC)"]})
    if since is not None and until is not None and until <= since:
        raise InvalidInput("the time range is empty", errors={"until": ["must be later than since"]})
    statement = select(AuditLog)
    if action is not None:
        statement = statement.where(AuditLog.action == action)
    if subject_type is not None:
        statement = statement.where(AuditLog.subject_type == subject_type)
    if subject_id is not None:
        statement = statement.where(AuditLog.subject_id == subject_id)
    if actor_organisation_id is not None:
        statement = statement.where(AuditLog.actor_organisation_id == actor_organisation_id)
    if since is not None:
        statement = statement.where(AuditLog.occurred_at >= since)
    if until is not None:
        statement = statement.where(AuditLog.occurred_at < until)
    return statement
