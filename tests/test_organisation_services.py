"""The operator's organisation services: creating participants, KYC decisions, suspensions, the
bootstrap of the operator itself, and the participant directory (backend/services/organisations.py)."""
from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import AuditLog, ChainTransaction, ContractName, KycStatus, Organisation, Role, SigningKey, User
from backend.security.keystore import MasterSecret, unseal
from backend.security.passwords import verify_password
from backend.services import organisations
from backend.services.actors import Actor
from backend.services.errors import (
    Duplicate,
    InvalidInput,
    InvalidState,
    NotFound,
    OrganisationInactive,
    PermissionDenied,
)
from backend.services.permissions import Action, authorize
from tests import domain_factories as factories
from tests.domain_factories import committed_organisation, last_audit_entry, only_outbox_row, count

MASTER = MasterSecret("m" * 40, source="test")
DOCUMENTS = ["business_licence", "representative_id"]
VALID_LEI = "5493001KJTIIGC8Y1R12"


@pytest.fixture(autouse=True)
def cheap_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    factories.cheap_signing_keys(monkeypatch)


@pytest.fixture
def operator(db_session) -> Actor:
    return factories.operator()


def writes() -> tuple[int, int, int]:
    """Rows a service call may write: organisations, ledger intents, audit entries."""
    return count(Organisation), count(ChainTransaction), count(AuditLog)


def digest(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def create(operator: Actor, **details) -> Organisation:
    details = {"name": "Acme Components", "legal_identifier": "0088:7300010000001",
               "roles": Role.SUPPLIER | Role.BUYER, "master_secret": MASTER} | details
    return organisations.create_organisation(operator, **details)


# ---------------------------------------------------------------- creating organisations


def test_a_new_organisation_waits_for_kyc_and_has_a_sealed_signing_key(operator):
    org = create(operator)

    assert (org.kyc_status, org.suspended, org.roles) == (KycStatus.PENDING, False, Role.SUPPLIER | Role.BUYER)
    key = db.session.scalar(select(SigningKey).where(SigningKey.organisation_id == org.id))
    assert key.address == org.chain_address
    assert unseal(MASTER, key.keystore_json).address == org.chain_address
    entry = last_audit_entry()
    assert (entry.action, entry.subject_type, entry.subject_id) == ("organisation.create", "organisation", str(org.id))
    assert entry.actor_user_id == operator.user.id
    assert entry.after["roles"] == ["supplier", "buyer"] and entry.after["kyc_status"] == "pending"
    assert "keystore" not in json.dumps(entry.after)
    assert count(ChainTransaction) == 0  # nothing reaches the ledger before the KYC decision


def test_an_lei_is_accepted_in_upper_case(operator):
    assert create(operator, legal_identifier=VALID_LEI.lower()).legal_identifier == VALID_LEI


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"legal_identifier": "7300010000001"}, "legal_identifier"),
        ({"legal_identifier": "0088:"}, "legal_identifier"),
        ({"legal_identifier": "0088 :123"}, "legal_identifier"),
        ({"legal_identifier": "5493001KJTIIGC8Y1R13"}, "legal_identifier"),  # wrong check digits
        ({"roles": Role(0)}, "roles"),
        ({"roles": Role.SUPPLIER | Role.OPERATOR}, "roles"),
        ({"roles": Role(64)}, "roles"),
    ],
)
def test_invalid_details_are_refused_and_nothing_is_written(operator, details, field):
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        create(operator, **details)
    assert list(refused.value.errors) == [field]
    assert writes() == before


def test_every_wrong_field_is_named_at_once(operator):
    with pytest.raises(InvalidInput) as refused:
        create(operator, name="", legal_identifier="nonsense", roles=Role(0))
    assert set(refused.value.errors) == {"name", "legal_identifier", "roles"}


def test_a_taken_legal_identifier_is_a_duplicate(operator):
    create(operator)
    before = writes()
    with pytest.raises(Duplicate):
        create(operator, name="Another Acme")
    assert writes() == before


def test_an_identifier_taken_at_the_same_moment_is_a_duplicate_too(operator, monkeypatch):
    create(operator)
    before = writes()
    # The other registration committed between this one's check and its insert.
    monkeypatch.setattr(organisations, "identifier_taken", lambda identifier: False)
    with pytest.raises(Duplicate) as refused:
        create(operator, name="Another Acme")
    assert refused.value.errors == {"legal_identifier": ["taken by another organisation"]}
    assert writes() == before


@pytest.mark.parametrize("role", [Role.SUPPLIER, Role.BUYER, Role.FINANCIER, Role.AUDITOR])
def test_only_the_operator_creates_organisations(db_session, role):
    participant = factories.actor(factories.organisation(role))
    db.session.commit()
    before = writes()
    with pytest.raises(PermissionDenied):
        create(participant)
    assert writes() == before


# ---------------------------------------------------------------- KYC


def test_approval_queues_the_onboarding_with_ledger_roles_and_a_digest_of_the_identifier(operator):
    org = create(operator, roles=Role.FINANCIER)

    organisations.decide_kyc(operator, org, approve=True, note="documents checked", documents_checked=DOCUMENTS)

    assert org.kyc_status == KycStatus.APPROVED
    intent = only_outbox_row()
    assert (intent.intent_key, intent.contract, intent.function) == (
        f"organisation:{org.id}:onboard", ContractName.FINANCING, "onboard")
    assert intent.args == [org.chain_address, 4, digest("0088:7300010000001")]
    assert intent.signer_id is None  # the operator's key signs
    assert (intent.subject_type, intent.subject_id) == ("organisation", org.id)
    entry = last_audit_entry()
    assert entry.action == "organisation.decide_kyc"
    assert (entry.before["kyc_status"], entry.after["kyc_status"], entry.after["note"]) == (
        "pending", "approved", "documents checked")


def test_rejection_queues_nothing(operator):
    org = create(operator)

    organisations.decide_kyc(operator, org, approve=False, note="register extract missing")

    assert org.kyc_status == KycStatus.REJECTED
    assert count(ChainTransaction) == 0
    assert last_audit_entry().after["kyc_status"] == "rejected"


@pytest.mark.parametrize("first", [True, False])
def test_a_review_is_decided_once(operator, first):
    org = create(operator)
    organisations.decide_kyc(operator, org, approve=first, documents_checked=DOCUMENTS)
    before = writes()
    for second in (True, False):
        with pytest.raises(InvalidState):
            organisations.decide_kyc(operator, org, approve=second, documents_checked=DOCUMENTS)
    assert writes() == before


def test_only_the_operator_decides_kyc(operator):
    org = create(operator)
    auditor = factories.actor(factories.organisation(Role.AUDITOR))
    db.session.commit()
    with pytest.raises(PermissionDenied):
        organisations.decide_kyc(auditor, org, approve=True, documents_checked=DOCUMENTS)
    assert db.session.get(Organisation, org.id).kyc_status == KycStatus.PENDING


# ---------------------------------------------------------------- suspension


def test_a_suspension_takes_effect_at_once_and_is_queued_for_the_ledger(operator):
    org = committed_organisation(Role.SUPPLIER)
    member = Actor(organisation=org, user=factories.user(org))
    db.session.commit()

    organisations.suspend(operator, org, reason="sanctions screening hit")

    assert org.suspended and org.suspension_reason == "sanctions screening hit"
    with pytest.raises(OrganisationInactive):
        authorize(member, Action.VIEW_ORGANISATION)
    intent = only_outbox_row()
    assert (intent.intent_key, intent.contract, intent.function) == (
        f"organisation:{org.id}:suspend:1", ContractName.FINANCING, "suspend")
    assert intent.args == [org.chain_address, digest("sanctions screening hit")]
    entry = last_audit_entry()
    assert (entry.action, entry.before["suspended"], entry.after["suspended"]) == ("organisation.suspend", False, True)


def test_reinstating_lifts_the_suspension_and_each_change_is_its_own_intent(operator):
    org = committed_organisation(Role.SUPPLIER)

    organisations.suspend(operator, org, reason="first")
    organisations.reinstate(operator, org)
    organisations.suspend(operator, org, reason="second")

    intents = db.session.scalars(select(ChainTransaction).order_by(ChainTransaction.id)).all()
    assert [(intent.function, intent.intent_key) for intent in intents] == [
        ("suspend", f"organisation:{org.id}:suspend:1"),
        ("reinstate", f"organisation:{org.id}:reinstate:1"),
        ("suspend", f"organisation:{org.id}:suspend:2"),
    ]
    assert intents[1].args == [org.chain_address]
    assert [entry.action for entry in db.session.scalars(select(AuditLog).order_by(AuditLog.id))] == [
        "organisation.suspend", "organisation.reinstate", "organisation.suspend"]


def test_suspending_twice_and_reinstating_an_active_organisation_are_refused(operator):
    org = committed_organisation(Role.SUPPLIER)
    with pytest.raises(InvalidState):
        organisations.reinstate(operator, org)
    organisations.suspend(operator, org, reason="overdue fees")
    before = writes()
    with pytest.raises(InvalidState):
        organisations.suspend(operator, org, reason="again")
    assert writes() == before


def test_the_operator_cannot_suspend_itself(operator):
    with pytest.raises(PermissionDenied):
        organisations.suspend(operator, operator.organisation, reason="oops")
    assert not db.session.get(Organisation, operator.organisation.id).suspended


def test_only_an_approved_participant_can_be_suspended(operator):
    org = create(operator)
    with pytest.raises(InvalidState):
        organisations.suspend(operator, org, reason="never approved")
    assert count(ChainTransaction) == 0


def test_a_suspension_needs_a_reason(operator):
    org = committed_organisation(Role.SUPPLIER)
    with pytest.raises(InvalidInput) as refused:
        organisations.suspend(operator, org, reason=" ")
    assert list(refused.value.errors) == ["reason"]


def test_only_the_operator_suspends(db_session):
    org = factories.organisation(Role.SUPPLIER)
    financier = factories.actor(factories.organisation(Role.FINANCIER))
    db.session.commit()
    with pytest.raises(PermissionDenied):
        organisations.suspend(financier, org, reason="competition")
    assert count(ChainTransaction) == 0


# ---------------------------------------------------------------- the directory


def test_every_active_participant_reads_the_directory_filtered_by_role_and_name(db_session):
    supplier = factories.organisation(Role.SUPPLIER, name="Shenzhen Widgets")
    buyer = factories.organisation(Role.BUYER, name="Big Buyer Co")
    both = factories.organisation(Role.SUPPLIER | Role.BUYER, name="Widgets & Buyers_Ltd")
    reader = factories.actor(factories.organisation(Role.FINANCIER, name="Bank"))

    def names(**filters) -> set[str]:
        return {org.name for org in db.session.scalars(organisations.organisation_directory(reader, **filters))}

    assert names() == {"Shenzhen Widgets", "Big Buyer Co", "Widgets & Buyers_Ltd", "Bank"}
    assert names(role=Role.BUYER) == {buyer.name, both.name}
    assert names(name="widgets") == {supplier.name, both.name}
    assert names(name="s_L") == {both.name}  # "_" is a character, not a wildcard
    assert names(name="%") == set()
    assert names(role=Role.SUPPLIER, name="shenzhen") == {supplier.name}


def test_a_suspended_participant_cannot_read_the_directory(db_session):
    suspended = factories.actor(factories.organisation(Role.SUPPLIER, suspended=True))
    with pytest.raises(OrganisationInactive):
        organisations.organisation_directory(suspended)


def test_an_unknown_organisation_is_not_found(operator):
    with pytest.raises(NotFound):
        organisations.get_organisation(operator, 10_000)
    assert organisations.get_organisation(operator, operator.organisation.id) is operator.organisation


# ---------------------------------------------------------------- the operator's bootstrap


def bootstrap(**details) -> tuple[Organisation, User]:
    details = {"name": "Anchorline Operations", "legal_identifier": VALID_LEI, "email": "Ops@Example.com",
               "display_name": "First Operator", "password": "a long enough passphrase"} | details
    return organisations.create_operator(**details)


def test_the_bootstrap_creates_the_approved_operator_and_its_first_user(db_session):
    operator, user = bootstrap()

    assert (operator.roles, operator.kyc_status, operator.chain_address) == (Role.OPERATOR, KycStatus.APPROVED, None)
    assert db.session.scalar(select(SigningKey)) is None  # the operator signs with the deployer's key
    assert (user.organisation_id, user.email) == (operator.id, "ops@example.com")
    assert verify_password(user.password_hash, "a long enough passphrase")
    entries = db.session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert [(entry.action, entry.actor_organisation_id) for entry in entries] == [
        ("organisation.create", None), ("user.create", operator.id)]
    assert count(ChainTransaction) == 0


def test_there_is_one_operator(db_session):
    bootstrap()
    with pytest.raises(Duplicate):
        bootstrap(legal_identifier="0088:1", email="second@example.com")
    assert count(Organisation) == 1


def test_a_refused_bootstrap_leaves_nothing_behind(db_session):
    with pytest.raises(InvalidInput) as refused:
        bootstrap(password="short")
    assert list(refused.value.errors) == ["password"]
    assert writes() == (0, 0, 0)
    assert count(User) == 0


def test_the_directory_narrows_to_a_kyc_status_and_to_suspended_or_active(db_session):
    pending = factories.organisation(Role.SUPPLIER, name="Pending", kyc=KycStatus.PENDING, onboarded=False)
    suspended = factories.organisation(Role.BUYER, name="Suspended", suspended=True)
    active = factories.organisation(Role.BUYER, name="Active")
    reader = factories.actor(factories.organisation(Role.AUDITOR, name="Auditor"))

    def names(**filters) -> set[str]:
        return {org.name for org in db.session.scalars(organisations.organisation_directory(reader, **filters))}

    assert names(kyc_status=KycStatus.PENDING) == {pending.name}
    assert names(suspended=True) == {suspended.name}
    assert names(suspended=False, kyc_status=KycStatus.APPROVED) == {active.name, "Auditor"}
    assert names(role=Role.BUYER, suspended=False) == {active.name}
