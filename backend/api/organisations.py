"""The participant directory, and the operator's onboarding: creating organisations, deciding
their KYC review, suspending and reinstating them.

Every active participant reads the directory; the operator and the auditor also see when an
organisation was created and last changed, and why it is suspended. A signing key or keystore
is never part of an answer. Approving a KYC review and suspending or reinstating queue a ledger
transaction, so they answer 202 with the organisation's state and where to poll it.
"""
from __future__ import annotations

import functools
import operator
from pathlib import Path
from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.api.responses import accepted
from backend.models import KycDocument, KycStatus, Organisation, Role
from backend.security.keystore import load_master_secret
from backend.services import organisations
from backend.services.actors import Actor
from backend.services.organisations import LEDGER_ROLES, MAX_NAME_LENGTH, MAX_NOTE_LENGTH, role_names
from backend.services.permissions import reads_everything

blp = Blueprint(
    "organisations",
    __name__,
    url_prefix="/api/v1/organisations",
    description="The participant directory; the operator's onboarding, KYC decisions and suspensions.",
)

ROLE_NAMES = role_names(LEDGER_ROLES | Role.OPERATOR)
# What every participant sees of an organisation; the operator and the auditor see the rest too.
DIRECTORY_FIELDS = ("id", "name", "legal_identifier", "roles", "kyc_status", "suspended", "chain_address",
                    "participant_id")
READERS_ONLY = "Shown to the operator and the auditor only."


class RolesField(fields.List):
    """A combination of `Role`s, as the list of their names (["supplier", "buyer"])."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.String(validate=validate.OneOf(ROLE_NAMES)), **kwargs)

    def _serialize(self, value: Role | None, attr: str | None, obj: Any, **kwargs: Any) -> list[str] | None:
        return None if value is None else role_names(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Role:
        names = super()._deserialize(value, attr, data, **kwargs)
        return functools.reduce(operator.or_, (Role[name.upper()] for name in names), Role(0))


class OrganisationSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    legal_identifier = fields.String(
        required=True, metadata={"description": "A scheme:value identifier (0088:7300010000001) or an LEI"})
    roles = RolesField(required=True)
    kyc_status = fields.Enum(KycStatus, by_value=True, required=True)
    suspended = fields.Boolean(required=True)
    chain_address = fields.String(required=True, allow_none=True,
                                  metadata={"description": "Its ledger address (checksummed)"})
    participant_id = fields.Integer(required=True, allow_none=True,
                                    metadata={"description": "The ledger's id, once its onboarding is recorded"})
    suspension_reason = fields.String(allow_none=True, metadata={"description": READERS_ONLY})
    created_at = fields.DateTime(metadata={"description": READERS_ONLY})
    updated_at = fields.DateTime(metadata={"description": READERS_ONLY})


class NewOrganisationSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(max=MAX_NAME_LENGTH))
    legal_identifier = fields.String(required=True)
    roles = RolesField(required=True, metadata={"description": "Any of supplier, buyer, financier, auditor"})


class DirectoryArgs(CursorArgs):
    role = fields.String(validate=validate.OneOf(ROLE_NAMES), metadata={"description": "Only holders of this role"})
    name = fields.String(validate=validate.Length(max=MAX_NAME_LENGTH),
                         metadata={"description": "Only names containing this (ignoring case)"})


class KycDecisionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    documents_checked = fields.List(fields.Enum(KycDocument, by_value=True), load_default=list, metadata={
        "description": "The documents the review checked; kept with the decision and who made it"})
    note = fields.String(validate=validate.Length(max=MAX_NOTE_LENGTH),
                         metadata={"description": "Kept in the audit log"})


class SuspensionSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_NOTE_LENGTH),
                           metadata={"description": "Kept here; the ledger gets its SHA-256"})


@blp.route("", methods=["GET"])
@blp.arguments(DirectoryArgs, location="query")
@blp.response(200, page_schema(OrganisationSchema))
@blp.doc(security=SECURITY)
def list_organisations(args: dict[str, Any]) -> Page[Any]:
    """The participant directory, by name"""
    actor = current_actor()
    role = Role[args["role"].upper()] if "role" in args else None
    statement = organisations.organisation_directory(actor, role=role, name=args.get("name"))
    page = paginate(statement, args, sort=(Organisation.name,))
    return Page([_as_seen_by(actor, organisation) for organisation in page.items], page.next_cursor)


@blp.route("", methods=["POST"])
@blp.arguments(NewOrganisationSchema)
@blp.response(201, OrganisationSchema)
@blp.doc(security=SECURITY)
def create_organisation(details: dict[str, Any]) -> tuple[Organisation, int, dict[str, str]]:
    """Create an organisation (operator): its KYC review starts pending"""
    organisation = organisations.create_organisation(
        current_actor(), **details, master_secret=load_master_secret(Path(current_app.instance_path)))
    return organisation, 201, {"Location": _location(organisation)}


@blp.route(f"/<{ROW_ID}:organisation_id>", methods=["GET"])
@blp.response(200, OrganisationSchema)
@blp.doc(security=SECURITY)
def get_organisation(organisation_id: int) -> Organisation | dict[str, Any]:
    """One organisation"""
    actor = current_actor()
    return _as_seen_by(actor, organisations.get_organisation(actor, organisation_id))


@blp.route(f"/<{ROW_ID}:organisation_id>/kyc", methods=["POST"])
@blp.arguments(KycDecisionSchema)
@blp.response(202, OrganisationSchema, description="Approved: the onboarding is queued for the ledger")
@blp.alt_response(200, schema=OrganisationSchema, description="Rejected")
@blp.doc(security=SECURITY)
def decide_kyc(decision: dict[str, Any], organisation_id: int) -> Response | tuple[Organisation, int]:
    """Decide an organisation's KYC review (operator), once"""
    actor = current_actor()
    organisation = organisations.decide_kyc(actor, organisations.get_organisation(actor, organisation_id),
                                            approve=decision["decision"] == "approve",
                                            documents_checked=decision["documents_checked"], note=decision.get("note"))
    if organisation.kyc_status == KycStatus.APPROVED:
        return _accepted(organisation)
    return organisation, 200


@blp.route(f"/<{ROW_ID}:organisation_id>/suspension", methods=["POST"])
@blp.arguments(SuspensionSchema)
@blp.response(202, OrganisationSchema, description="Suspended at once; the ledger's suspension is queued")
@blp.doc(security=SECURITY)
def suspend_organisation(suspension: dict[str, Any], organisation_id: int) -> Response:
    """Suspend an approved participant (operator)"""
    actor = current_actor()
    return _accepted(organisations.suspend(actor, organisations.get_organisation(actor, organisation_id),
                                           reason=suspension["reason"]))


@blp.route(f"/<{ROW_ID}:organisation_id>/suspension", methods=["DELETE"])
@blp.response(202, OrganisationSchema, description="Reinstated at once; the ledger's reinstatement is queued")
@blp.doc(security=SECURITY)
def reinstate_organisation(organisation_id: int) -> Response:
    """Lift a suspension (operator)"""
    actor = current_actor()
    return _accepted(organisations.reinstate(actor, organisations.get_organisation(actor, organisation_id)))


def _as_seen_by(actor: Actor, organisation: Organisation) -> Organisation | dict[str, Any]:
    """The organisation as `actor` may see it: whole for the operator and the auditor, its
    directory entry for everyone else (the fields it lacks are left out of the answer)."""
    if reads_everything(actor):
        return organisation
    return {field: getattr(organisation, field) for field in DIRECTORY_FIELDS}


def _location(organisation: Organisation) -> str:
    return f"{blp.url_prefix}/{organisation.id}"


def _accepted(organisation: Organisation) -> Response:
    # Only the operator changes organisations, and it sees them whole.
    return accepted(OrganisationSchema().dump(organisation), _location(organisation))
