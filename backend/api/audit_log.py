"""The audit log, for the auditor and the operator: every change, who made it, and the object
before and after, oldest first."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import row_id
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.models import AuditLog
from backend.services.audit_reads import audit_entries

blp = Blueprint(
    "audit_log",
    __name__,
    url_prefix="/api/v1/audit-log",
    description="The append-only audit log (auditor and operator).",
)


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True)
    occurred_at = fields.DateTime(required=True)
    action = fields.String(required=True, metadata={"description": "What was done, such as invoice.confirm"})
    subject_type = fields.String(required=True)
    subject_id = fields.String(required=True)
    actor_organisation_id = fields.Integer(required=True, allow_none=True,
                                           metadata={"description": "None when the platform itself acted"})
    actor_user_id = fields.Integer(required=True, allow_none=True)
    api_key_id = fields.Integer(required=True, allow_none=True)
    before = fields.Raw(required=True, allow_none=True)
    after = fields.Raw(required=True, allow_none=True)
    request_id = fields.String(required=True, allow_none=True)


class AuditLogArgs(CursorArgs):
    action = fields.String(validate=validate.Length(max=100))
    subject_type = fields.String(validate=validate.Length(max=50))
    subject_id = fields.String(validate=validate.Length(max=66))
    actor_organisation_id = row_id()
    since = fields.AwareDateTime(metadata={"description": "Entries at or after this moment"})
    until = fields.AwareDateTime(metadata={"description": "Entries before this moment"})


@blp.route("", methods=["GET"])
@blp.arguments(AuditLogArgs, location="query")
@blp.response(200, page_schema(AuditEntrySchema))
@blp.doc(security=SECURITY)
def list_audit_entries(args: dict[str, Any]) -> Page[AuditLog]:
    """Audit entries matching every filter given, oldest first"""
    filters = {name: args[name] for name in ("action", "subject_type", "subject_id", "actor_organisation_id",
                                             "since", "until") if name in args}
    return paginate(audit_entries(current_actor(), **filters), args, sort=(AuditLog.occurred_at,))
