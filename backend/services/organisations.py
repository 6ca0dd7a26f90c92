"""Participants: the operator creates organisations, decides their KYC review, suspends and
reinstates them; every active participant reads the directory.

An organisation gets its ledger signing key when it is created, and becomes a ledger participant
when its KYC is approved (`Financing.onboard`, sent by the outbox workers with the operator's
key). A suspension takes effect locally at once (`authorize` refuses everything a suspended
organisation tries) and on the ledger when `Financing.suspend` is mined. What reaches the ledger
about an organisation is never personal data: its address, role bits and SHA-256 digests.

Every service that names a counterparty finds it here (`find_organisation`) and asks here
whether it can take part in a ledger write now (`require_participant`, `participant_problem`).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import (
    ContractName,
    KycDocument,
    KycReview,
    KycStatus,
    Organisation,
    Role,
    SigningKey,
    User,
)
from backend.models.types import MAX_ROW_ID
from backend.security.keystore import MasterSecret, new_signing_key
from backend.services import audit, outbox
from backend.services.accounts import create_user
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, InvalidState, PermissionDenied
from backend.services.permissions import Action, authorize, get_authorized
from backend.services.screening import require_clear_screening, screen_organisation
from backend.services.transaction import atomic

# The roles a participant can hold on the ledger (its role bits); OPERATOR is off-chain only.
LEDGER_ROLES = Role.SUPPLIER | Role.BUYER | Role.FINANCIER | Role.AUDITOR
MAX_NAME_LENGTH = 200
MAX_LEGAL_IDENTIFIER_LENGTH = 100
MAX_NOTE_LENGTH = 2000
# A PEPPOL-style participant identifier: an identifier scheme, a colon, the value (0088:7300010000001).
_SCHEME_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*:[^\s:][^\s]*")
# ISO 17442: 18 alphanumeric characters, then two check digits.
_LEI = re.compile(r"[A-Z0-9]{18}[0-9]{2}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

SUBJECT = "organisation"


def ledger_digest(text: str) -> str:
    """The 0x-hex SHA-256 of `text` (stripped): the bytes32 the ledger stores in place of an
    off-chain reference, so the text itself never reaches the chain."""
    return "0x" + hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


def role_names(roles: Role) -> list[str]:
    """`roles` as lowercase names, in bit order: SUPPLIER | BUYER -> ["supplier", "buyer"]."""
    return [role.name.lower() for role in Role if role & roles]


def snapshot(organisation: Organisation) -> dict[str, Any]:
    """What the audit log records of an organisation (never its keys)."""
    return {
        "name": organisation.name,
        "legal_identifier": organisation.legal_identifier,
        "roles": role_names(organisation.roles),
        "kyc_status": str(organisation.kyc_status),
        "suspended": organisation.suspended,
        "chain_address": organisation.chain_address,
    }


# ---------------------------------------------------------------- participants


def require_participant(organisation: Organisation, roles: Role | None = None) -> None:
    """InvalidState unless `organisation` is an active participant whose onboarding the ledger has
    recorded (the indexer has given it its participant id), holding one of `roles` if given: the
    ledger refuses any other party to a call."""
    if organisation.suspended or organisation.kyc_status != KycStatus.APPROVED:
        raise InvalidState(f"{organisation.name} is not an active participant")
    if organisation.chain_address is None or organisation.participant_id is None:
        raise InvalidState(f"{organisation.name} is not onboarded on the ledger yet")
    if roles is not None and not organisation.roles & roles:
        raise InvalidState(f"{organisation.name} is not a {' or '.join(role_names(roles))}")


def participant_problem(organisation: Organisation | None, roles: Role, reference: object) -> str | None:
    """Why `organisation` (found for `reference`) cannot take part in a ledger write as one of
    `roles` now, or None if it can."""
    if organisation is None:
        return f"no organisation {reference!s} on the platform"
    try:
        require_participant(organisation, roles)
    except InvalidState as exc:
        return exc.detail
    return None


# ---------------------------------------------------------------- reads


def get_organisation(actor: Actor, organisation_id: int) -> Organisation:
    return get_authorized(actor, Action.VIEW_ORGANISATION, Organisation, organisation_id)


def find_organisation(reference: int | str) -> Organisation | None:
    """The organisation a request names: by row id (an integer, or digits that are nobody's
    legal identifier), ledger address (0x and 40 hex digits) or legal identifier."""
    if isinstance(reference, int):
        return _organisation_by_id(reference)
    text = reference.strip()
    if _ADDRESS.fullmatch(text):
        return organisation_by_address(text)
    found = organisation_by_legal_identifier(text)
    if found is None and text.isascii() and text.isdigit():
        return _organisation_by_id(int(text))
    return found


def organisation_by_address(address: str) -> Organisation | None:
    return db.session.scalar(select(Organisation).where(Organisation.chain_address == to_checksum_address(address)))


def organisation_by_legal_identifier(identifier: str) -> Organisation | None:
    return db.session.scalar(select(Organisation).where(Organisation.legal_identifier == identifier))


def operator_organisation() -> Organisation | None:
    """The platform operator's organisation (there is one, once `create_operator` has run)."""
    return db.session.scalar(select(Organisation).where(Organisation.roles.bitwise_and(int(Role.OPERATOR)) != 0))


def organisation_directory(
    actor: Actor,
    *,
    role: Role | None = None,
    name: str | None = None,
    kyc_status: KycStatus | None = None,
    suspended: bool | None = None,
) -> Select[tuple[Organisation]]:
    """The participant directory, open to every active participant: organisations holding any of
    `role`, whose name contains `name` (ignoring case), in `kyc_status`, suspended or not."""
    authorize(actor, Action.VIEW_ORGANISATION)
    statement = select(Organisation)
    if role:
        statement = statement.where(Organisation.roles.bitwise_and(int(role)) != 0)
    if kyc_status is not None:
        statement = statement.where(Organisation.kyc_status == kyc_status)
    if suspended is not None:
        statement = statement.where(Organisation.suspended == suspended)
    if name:
        pattern = name.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(Organisation.name.ilike(f"%{pattern}%", escape="\\"))
    return statement


# ---------------------------------------------------------------- the operator's writes


@atomic
def create_organisation(
    actor: Actor, *, name: str, legal_identifier: str, roles: Role, master_secret: MasterSecret
) -> Organisation:
    """A new participant, its KYC review pending, with a signing key sealed under `master_secret`."""
    authorize(actor, Action.CREATE_ORGANISATION)
    name, legal_identifier = _validated_identity(name, legal_identifier, roles=roles)
    sealed = new_signing_key(master_secret)
    organisation = Organisation(
        name=name,
        legal_identifier=legal_identifier,
        roles=roles,
        kyc_status=KycStatus.PENDING,
        chain_address=sealed.address,
    )
    try:
        # The unique legal identifier decides between two registrations of it at once: the
        # second is refused as a later one is, not failed.
        with db.session.begin_nested():
            db.session.add(organisation)
            db.session.add(SigningKey(organisation=organisation, address=sealed.address,
                                      keystore_json=sealed.keystore_json))
    except IntegrityError:
        raise _identifier_taken(legal_identifier) from None
    audit.record(actor, Action.CREATE_ORGANISATION, SUBJECT, organisation.id, after=snapshot(organisation))
    # Hits show in the onboarding queue at once; approval screens again.
    screen_organisation(organisation)
    return organisation


@atomic
def create_operator(
    *, name: str, legal_identifier: str, email: str, display_name: str, password: str
) -> tuple[Organisation, User]:
    """The bootstrap (`anchorline admin create-operator`): the platform operator's organisation,
    KYC approved, and its first user. There is one operator organisation; the operator's ledger
    key is the deployer's, so it gets no signing key of its own. Nobody acts yet, so the
    organisation's audit entry has no actor; its first user's entry names the organisation."""
    name, legal_identifier = _validated_identity(name, legal_identifier)
    if (existing := operator_organisation()) is not None:
        raise Duplicate(f"the operator organisation exists already: {existing.name} ({existing.legal_identifier})")
    operator = Organisation(name=name, legal_identifier=legal_identifier, roles=Role.OPERATOR,
                            kyc_status=KycStatus.APPROVED)
    db.session.add(operator)
    db.session.flush()
    audit.record(None, Action.CREATE_ORGANISATION, SUBJECT, operator.id, after=snapshot(operator))
    user = create_user(Actor(organisation=operator), operator, email=email, display_name=display_name,
                       password=password)
    return operator, user


@atomic
def decide_kyc(actor: Actor, organisation: Organisation, *, approve: bool,
               documents_checked: Sequence[str] = (), note: str | None = None) -> Organisation:
    """Approves (and queues the organisation's onboarding on the ledger) or rejects a pending
    KYC review, recording a KycReview: the documents checked (KycDocument values), the note, and
    who decided. An organisation matching a watch list is not approved while a hit stands
    (screening.require_clear_screening)."""
    authorize(actor, Action.DECIDE_KYC, organisation)
    _lock(organisation)
    note = _validated_text(note, "note", required=False)
    documents = _checked_documents(documents_checked, approve=approve)
    if organisation.kyc_status != KycStatus.PENDING:
        raise InvalidState(f"the KYC review of {organisation.name} was decided already ({organisation.kyc_status})")
    before = snapshot(organisation)
    if approve:
        if organisation.chain_address is None:
            raise InvalidState(f"{organisation.name} has no ledger address to onboard")
        require_clear_screening(organisation)
        organisation.kyc_status = KycStatus.APPROVED
        outbox.enqueue(
            intent_key=f"{SUBJECT}:{organisation.id}:onboard",
            signer=None,
            contract=ContractName.FINANCING,
            function="onboard",
            args=[
                organisation.chain_address,
                int(organisation.roles & LEDGER_ROLES),
                ledger_digest(organisation.legal_identifier),
            ],
            subject_type=SUBJECT,
            subject_id=organisation.id,
        )
    else:
        organisation.kyc_status = KycStatus.REJECTED
    db.session.add(KycReview(organisation=organisation, decision=organisation.kyc_status, documents_checked=documents,
                             note=note, decided_by=actor.person))
    audit.record(actor, Action.DECIDE_KYC, SUBJECT, organisation.id, before=before,
                 after={**snapshot(organisation), "note": note, "documents_checked": documents})
    return organisation


def _checked_documents(documents: Sequence[str], *, approve: bool) -> list[str]:
    """The KYC documents named, each once, in KycDocument order; InvalidInput naming any unknown,
    or none named for an approval (nobody is approved on nothing)."""
    unknown = sorted({str(document) for document in documents} - set(KycDocument))
    if unknown:
        raise InvalidInput("unknown KYC documents", errors={
            "documents_checked": [f"unknown: {', '.join(unknown)} (known: {', '.join(KycDocument)})"]})
    if approve and not documents:
        raise InvalidInput("an approval names the documents checked",
                           errors={"documents_checked": ["name at least one document checked"]})
    return [str(document) for document in KycDocument if document in set(documents)]


@atomic
def suspend(actor: Actor, organisation: Organisation, *, reason: str) -> Organisation:
    """Suspends an approved participant: at once here, and on the ledger once
    `Financing.suspend` (with the SHA-256 of the reason as its reason code) is mined."""
    authorize(actor, Action.SUSPEND_ORGANISATION, organisation)
    _lock(organisation)
    reason = _validated_text(reason, "reason", required=True)
    if organisation.id == actor.organisation.id:
        raise PermissionDenied("an organisation cannot suspend itself")
    if organisation.suspended:
        raise InvalidState(f"{organisation.name} is suspended already")
    if organisation.kyc_status != KycStatus.APPROVED:
        # Only an approved organisation is (or is about to be) a ledger participant; one that is
        # not can do nothing anyway, and a suspension the ledger never hears of would split the two.
        raise InvalidState(f"{organisation.name} is not an approved participant (KYC {organisation.kyc_status})")
    before = snapshot(organisation)
    organisation.suspended = True
    organisation.suspension_reason = reason
    _queue_participant_change(organisation, "suspend", [ledger_digest(reason)])
    audit.record(actor, Action.SUSPEND_ORGANISATION, SUBJECT, organisation.id, before=before,
                 after={**snapshot(organisation), "reason": reason})
    return organisation


@atomic
def reinstate(actor: Actor, organisation: Organisation) -> Organisation:
    """Lifts a suspension, here at once and on the ledger once `Financing.reinstate` is mined."""
    authorize(actor, Action.REINSTATE_ORGANISATION, organisation)
    _lock(organisation)
    if not organisation.suspended:
        raise InvalidState(f"{organisation.name} is not suspended")
    before = snapshot(organisation)
    organisation.suspended = False
    organisation.suspension_reason = None
    _queue_participant_change(organisation, "reinstate", [])
    audit.record(actor, Action.REINSTATE_ORGANISATION, SUBJECT, organisation.id, before=before,
                 after=snapshot(organisation))
    return organisation


# ---------------------------------------------------------------- helpers


def _lock(organisation: Organisation) -> None:
    """Reads `organisation` afresh, its row locked (on PostgreSQL) until the transaction ends:
    two decisions about one organisation at once (two KYC decisions, a double suspension) are
    judged one after the other, the later on what the earlier left, not on a stale copy."""
    db.session.refresh(organisation, with_for_update=True)


def _organisation_by_id(row_id: int) -> Organisation | None:
    return db.session.get(Organisation, row_id) if 0 < row_id <= MAX_ROW_ID else None


def _queue_participant_change(organisation: Organisation, function: str, extra_args: list[Any]) -> None:
    """Queues `Financing.<function>(address, *extra_args)` for a ledger participant. An organisation
    can be suspended and reinstated many times, so each intent is numbered."""
    if organisation.chain_address is None:
        return  # an operator organisation: not a ledger participant, so only the local state changes
    outbox.enqueue(
        intent_key=outbox.next_attempt_key(f"{SUBJECT}:{organisation.id}:{function}"),
        signer=None,
        contract=ContractName.FINANCING,
        function=function,
        args=[organisation.chain_address, *extra_args],
        subject_type=SUBJECT,
        subject_id=organisation.id,
    )


def _validated_identity(name: str, legal_identifier: str, *, roles: Role | None = None) -> tuple[str, str]:
    """The cleaned name and legal identifier; InvalidInput naming every wrong field (`roles` too,
    when given: the roles a participant may be created with), Duplicate for a legal identifier
    that is taken."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["give the organisation's name"]
    elif len(name) > MAX_NAME_LENGTH:
        errors["name"] = [f"at most {MAX_NAME_LENGTH} characters"]
    legal_identifier, identifier_error = _normalised_legal_identifier(legal_identifier)
    if identifier_error:
        errors["legal_identifier"] = [identifier_error]
    if roles is not None and (role_error := _participant_roles_error(roles)):
        errors["roles"] = [role_error]
    if errors:
        raise InvalidInput("the organisation's details are invalid", errors=errors)
    if identifier_taken(legal_identifier):
        raise _identifier_taken(legal_identifier)
    return name, legal_identifier


def identifier_taken(legal_identifier: str) -> bool:
    return db.session.scalar(select(Organisation.id).where(Organisation.legal_identifier == legal_identifier)) is not None


def _identifier_taken(legal_identifier: str) -> Duplicate:
    return Duplicate(f"an organisation with the legal identifier {legal_identifier} exists already",
                     errors={"legal_identifier": ["taken by another organisation"]})


def _normalised_legal_identifier(identifier: str) -> tuple[str, str | None]:
    """(the identifier as stored, what is wrong with it or None). A `scheme:value` identifier is
    kept as given; an LEI is upper-cased and its ISO 7064 MOD 97-10 check digits verified."""
    identifier = (identifier or "").strip()
    if len(identifier) > MAX_LEGAL_IDENTIFIER_LENGTH:
        return identifier, f"at most {MAX_LEGAL_IDENTIFIER_LENGTH} characters"
    if ":" in identifier:
        if _SCHEME_IDENTIFIER.fullmatch(identifier):
            return identifier, None
        return identifier, "expected scheme:value, such as 0088:7300010000001"
    lei = identifier.upper()
    if not _LEI.fullmatch(lei):
        return identifier, "expected scheme:value (such as 0088:7300010000001) or a 20-character LEI"
    if int("".join(str(int(character, 36)) for character in lei)) % 97 != 1:
        return identifier, "not a valid LEI: its check digits do not match"
    return lei, None


def _participant_roles_error(roles: Role) -> str | None:
    if not roles:
        return "give at least one role"
    if int(roles) & ~int(LEDGER_ROLES | Role.OPERATOR):
        return f"unknown role bits in {int(roles)}"
    if roles & Role.OPERATOR:
        return "the operator role is given only by `anchorline admin create-operator`"
    return None


def _validated_text(text: str | None, field: str, *, required: bool) -> str | None:
    """`text` stripped (None when blank and not `required`); InvalidInput when missing or too long."""
    text = (text or "").strip() or None
    if text is None and required:
        raise InvalidInput(f"the {field} is missing", errors={field: ["this field is required"]})
    if text is not None and len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"the {field} is too long", errors={field: [f"at most {MAX_NOTE_LENGTH} characters"]})
    return text
