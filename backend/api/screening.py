"""Sanctions and watch-list screening (backend/services/screening.py): the operator loads lists
as CSV and resolves the hits; the operator and the auditor read them."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, row_id
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.models import ScreeningHit, ScreeningHitStatus
from backend.services import screening
from backend.services.screening import WatchListLoad

blp = Blueprint(
    "screening",
    __name__,
    url_prefix="/api/v1/",
    description="Sanctions and watch lists, and the screening hits they raise against organisations.",
)


class WatchListUploadSchema(Schema):
    file = Upload(required=True, metadata={"description": "UTF-8 CSV: reference, name and/or address"})


class WatchListLoadSchema(Schema):
    list_name = fields.String(required=True)
    entries = fields.Integer(required=True)
    replaced = fields.Integer(required=True, metadata={"description": "Entries of the list's earlier version"})
    new_hits = fields.Integer(required=True)


class WatchListSchema(Schema):
    list_name = fields.String(required=True)
    entries = fields.Integer(required=True)


class ScreeningHitSchema(Schema):
    id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    list_name = fields.String(required=True)
    entry_reference = fields.String(required=True)
    matched_on = fields.String(required=True, metadata={"description": "name or address"})
    entry_value = fields.String(required=True, metadata={"description": "The entry's name or address as listed"})
    status = fields.Enum(ScreeningHitStatus, by_value=True, required=True)
    found_at = fields.DateTime(required=True)
    resolved_by_id = fields.Integer(required=True, allow_none=True)
    resolved_at = fields.DateTime(required=True, allow_none=True)
    resolution_note = fields.String(required=True, allow_none=True)


class HitArgs(CursorArgs):
    status = fields.Enum(ScreeningHitStatus, by_value=True)
    organisation_id = row_id()


class ResolutionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["clear", "confirm"]), metadata={
        "description": "clear: a false positive; confirm: a true match"})
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000), metadata={
        "description": "What was checked"})


@blp.route("/watch-lists/<string:list_name>", methods=["PUT"])
@blp.arguments(WatchListUploadSchema, location="files")
@blp.response(200, WatchListLoadSchema)
@blp.doc(security=SECURITY)
def load_watch_list(upload: dict[str, Any], list_name: str) -> WatchListLoad:
    """Load a watch list, replacing every entry of the same name, and screen every organisation
    against it (operator)"""
    return screening.load_watch_list(current_actor(), list_name, upload["file"].read())


@blp.route("/watch-lists", methods=["GET"])
@blp.response(200, WatchListSchema(many=True))
@blp.doc(security=SECURITY)
def list_watch_lists() -> list[dict[str, Any]]:
    """The loaded lists and their sizes (operator, auditor)"""
    return [{"list_name": name, "entries": count} for name, count in screening.watch_list_summary(current_actor())]


@blp.route("/screening-hits", methods=["GET"])
@blp.arguments(HitArgs, location="query")
@blp.response(200, page_schema(ScreeningHitSchema))
@blp.doc(security=SECURITY)
def list_hits(args: dict[str, Any]) -> Page[ScreeningHit]:
    """Screening hits, oldest first (operator, auditor)"""
    statement = screening.screening_hits(current_actor(), status=args.get("status"),
                                         organisation_id=args.get("organisation_id"))
    return paginate(statement, args)


@blp.route(f"/screening-hits/<{ROW_ID}:hit_id>/resolution", methods=["POST"])
@blp.arguments(ResolutionSchema)
@blp.response(200, ScreeningHitSchema)
@blp.doc(security=SECURITY)
def resolve_hit(resolution: dict[str, Any], hit_id: int) -> ScreeningHit:
    """Clear an open hit as a false positive, or confirm it (operator)"""
    return screening.resolve_hit(current_actor(), hit_id, confirmed=resolution["decision"] == "confirm",
                                 note=resolution["note"])
