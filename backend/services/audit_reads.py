"""Reading the audit log: the auditor and the operator see every entry, filtered by what was
done, to what, by whom (organisation, user) and when, and by any text it holds."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, String, cast, func, or_, select

from backend.extensions import db
from backend.models import AuditLog, User
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
    actor_user_id: int | None = None,
    actor_email: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
) -> Select[tuple[AuditLog]]:
    """Audit entries matching every filter given; `since` is inclusive, `until` exclusive;
    `actor_email` is the acting user's e-mail address (ignoring case); `text` is found (ignoring
    case) in the action, the subject, the request id or the object before or after."""
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
    if actor_user_id is not None:
        statement = statement.where(AuditLog.actor_user_id == actor_user_id)
    if actor_email is not None:
        statement = statement.where(AuditLog.actor_user_id.in_(
            select(User.id).where(func.lower(User.email) == actor_email.strip().lower())))
    if text:
        statement = statement.where(or_(*(column.icontains(text, autoescape=True) for column in (
            AuditLog.action, AuditLog.subject_type, AuditLog.subject_id, AuditLog.request_id,
            cast(AuditLog.before, String), cast(AuditLog.after, String)))))
    if since is not None:
        statement = statement.where(AuditLog.occurred_at >= since)
    if until is not None:
        statement = statement.where(AuditLog.occurred_at < until)
    return statement


def recorded_actions(actor: Actor) -> list[str]:
    """The actions the audit log holds entries of, in alphabetical order (a search's choices)."""
    authorize(actor, Action.READ_AUDIT_LOG)
    return list(db.session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)))


def recorded_subject_types(actor: Actor) -> list[str]:
    """The kinds of object the audit log holds entries about, in alphabetical order."""
    authorize(actor, Action.READ_AUDIT_LOG)
    return list(db.session.scalars(select(AuditLog.subject_type).distinct().order_by(AuditLog.subject_type)))
