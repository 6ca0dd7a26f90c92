"""Users and API keys (backend/services/accounts.py)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from backend.extensions import db
from backend.models import ApiKey, AuditLog, Role, User
from backend.security.api_keys import parse_token, secret_matches
from backend.security.passwords import hash_password, verify_password
from backend.services import accounts
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, InvalidState, NotFound, PermissionDenied
from tests import domain_factories as factories
from tests.domain_factories import last_audit_entry, count

PASSWORD = "correct horse battery staple"


@pytest.fixture
def operator(db_session) -> Actor:
    return factories.operator()


@pytest.fixture
def supplier(db_session) -> Actor:
    actor = factories.actor(factories.organisation(Role.SUPPLIER))
    db.session.commit()
    return actor


# ---------------------------------------------------------------- users


def test_the_operator_creates_a_user_with_a_hashed_password(operator, supplier):
    user = accounts.create_user(operator, supplier.organisation, email=" Li.Wei@Example.COM ",
                                display_name="Li Wei", password=PASSWORD)

    assert (user.organisation_id, user.email, user.display_name, user.is_active) == (
        supplier.organisation.id, "li.wei@example.com", "Li Wei", True)
    assert PASSWORD not in user.password_hash and verify_password(user.password_hash, PASSWORD)
    entry = last_audit_entry()
    assert (entry.action, entry.subject_type, entry.subject_id) == ("user.create", "user", str(user.id))
    # Personal data stays out of the append-only log.
    assert entry.after == {"organisation_id": supplier.organisation.id}


def test_an_email_address_is_taken_once_whatever_its_case(operator, supplier):
    accounts.create_user(operator, supplier.organisation, email="a@example.com", display_name="A", password=PASSWORD)
    audit_entries = count(AuditLog)
    with pytest.raises(Duplicate):
        accounts.create_user(operator, operator.organisation, email="A@EXAMPLE.com", display_name="B",
                             password=PASSWORD)
    assert (count(User), count(AuditLog)) == (3, audit_entries)


def test_invalid_user_details_are_all_named(operator, supplier):
    users = count(User)
    with pytest.raises(InvalidInput) as refused:
        accounts.create_user(operator, supplier.organisation, email="not-an-address", display_name=" ",
                             password="short")
    assert set(refused.value.errors) == {"email", "display_name", "password"}
    assert "12 characters" in refused.value.errors["password"][0]
    assert (count(User), count(AuditLog)) == (users, 0)


@pytest.mark.parametrize("role", [Role.SUPPLIER, Role.BUYER, Role.FINANCIER, Role.AUDITOR])
def test_only_the_operator_creates_users(db_session, role):
    participant = factories.actor(factories.organisation(role))
    db.session.commit()
    with pytest.raises(PermissionDenied):
        accounts.create_user(participant, participant.organisation, email="x@example.com", display_name="X",
                             password=PASSWORD)
    assert count(AuditLog) == 0


# ---------------------------------------------------------------- passwords


def test_a_user_changes_their_own_password_once_they_give_the_current_one(operator, supplier):
    supplier.user.password_hash = hash_password(PASSWORD)
    db.session.commit()  # a refused change rolls back what is not committed
    new_password = "another long passphrase"

    with pytest.raises(InvalidInput) as refusal:
        accounts.change_password(supplier, current_password="wrong", new_password=new_password)
    assert set(refusal.value.errors) == {"current_password"}
    accounts.change_password(supplier, current_password=PASSWORD, new_password=new_password)

    assert verify_password(db.session.get(User, supplier.user.id).password_hash, new_password)
    entry = last_audit_entry()
    assert (entry.action, entry.subject_id, entry.before, entry.after) == (
        "user.change_password", str(supplier.user.id), None, None)


def test_an_api_key_has_no_password_to_change(db_session):
    machine = factories.actor(factories.organisation(Role.SUPPLIER), scopes=("read", "write"))
    with pytest.raises(PermissionDenied):
        accounts.change_password(machine, current_password=PASSWORD, new_password="another long passphrase")


def test_the_operator_resets_a_password_to_a_temporary_one_shown_once(operator, supplier):
    user, temporary = accounts.reset_password(operator, supplier.user.id)

    assert user.id == supplier.user.id and len(temporary) >= 20
    assert verify_password(db.session.get(User, user.id).password_hash, temporary)
    entry = last_audit_entry()
    assert (entry.action, entry.subject_id) == ("user.reset_password", str(user.id))
    assert temporary not in json.dumps(entry.after)


def test_only_the_operator_resets_passwords_and_only_of_users_that_exist(operator, supplier):
    other = factories.user(supplier.organisation)
    db.session.commit()
    with pytest.raises(PermissionDenied):
        accounts.reset_password(supplier, other.id)
    with pytest.raises(NotFound):
        accounts.reset_password(operator, other.id + 1000)
    with pytest.raises(PermissionDenied):
        accounts.users_for_password_reset(supplier)
    assert supplier.user in db.session.scalars(accounts.users_for_password_reset(operator)).all()


# ---------------------------------------------------------------- API keys


def test_a_key_is_issued_for_the_own_organisation_and_its_token_is_kept_nowhere(supplier):
    expiry = datetime.now(UTC) + timedelta(days=90)

    key, token = accounts.issue_api_key(supplier, name="ERP connector", scopes=["write", "read"], expires_at=expiry)

    assert parse_token(token)[0] == key.prefix
    assert secret_matches(key.secret_hash, token)
    assert (key.organisation_id, key.created_by_id, key.name, key.scopes, key.expires_at) == (
        supplier.organisation.id, supplier.user.id, "ERP connector", ["read", "write"], expiry)
    entry = last_audit_entry()
    assert (entry.action, entry.subject_id, entry.after["prefix"]) == ("api_key.issue", str(key.id), key.prefix)
    recorded = json.dumps([entry.before, entry.after])
    assert token not in recorded and key.secret_hash not in recorded


def test_an_auditor_gets_read_keys_only(db_session):
    auditor = factories.actor(factories.organisation(Role.AUDITOR))
    db.session.commit()
    with pytest.raises(PermissionDenied):
        accounts.issue_api_key(auditor, name="audit tool", scopes=["read", "write"])
    assert count(ApiKey) == 0
    key, _ = accounts.issue_api_key(auditor, name="audit tool", scopes=["read"])
    assert key.scopes == ["read"]


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "k" * 101}, "name"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["admin"]}, "scopes"),
        ({"expires_at": datetime.now(UTC) - timedelta(seconds=1)}, "expires_at"),
        ({"expires_at": datetime.now() + timedelta(days=1)}, "expires_at"),  # no time zone
    ],
)
def test_invalid_key_details_are_refused(supplier, details, field):
    with pytest.raises(InvalidInput) as refused:
        accounts.issue_api_key(supplier, **({"name": "client", "scopes": ["read"]} | details))
    assert list(refused.value.errors) == [field]
    assert (count(ApiKey), count(AuditLog)) == (0, 0)


def test_a_read_only_key_cannot_issue_keys(db_session):
    reader = factories.actor(factories.organisation(Role.FINANCIER), scopes=("read",))
    db.session.commit()
    with pytest.raises(PermissionDenied):
        accounts.issue_api_key(reader, name="more", scopes=["read"])


def test_a_key_is_revoked_once(supplier):
    key, _ = accounts.issue_api_key(supplier, name="old client", scopes=["read"])

    accounts.revoke_api_key(supplier, key)

    assert key.revoked_at is not None
    entry = last_audit_entry()
    assert (entry.action, entry.before["revoked_at"]) == ("api_key.revoke", None)
    assert entry.after["revoked_at"] == key.revoked_at.isoformat()
    with pytest.raises(InvalidState):
        accounts.revoke_api_key(supplier, key)


def test_another_organisations_key_is_not_found(supplier):
    key, _ = accounts.issue_api_key(supplier, name="client", scopes=["read"])
    stranger = factories.actor(factories.organisation(Role.SUPPLIER))
    db.session.commit()
    with pytest.raises(NotFound):
        accounts.revoke_api_key(stranger, key)
    with pytest.raises(NotFound):
        accounts.get_api_key(stranger, key.id)
    with pytest.raises(NotFound):
        accounts.get_api_key(stranger, 10_000)
    assert db.session.get(ApiKey, key.id).revoked_at is None


def test_the_list_holds_the_own_organisations_keys_only(supplier):
    own, _ = accounts.issue_api_key(supplier, name="mine", scopes=["read"])
    accounts.issue_api_key(factories.actor(factories.organisation(Role.BUYER)), name="theirs", scopes=["read"])

    listed = db.session.scalars(accounts.api_keys_of_own_organisation(supplier)).all()

    assert {key.name for key in listed} == {"mine"}
    # A read-only key may list its organisation's keys, too.
    reader = Actor(organisation=supplier.organisation,
                   api_key=factories.actor(supplier.organisation, scopes=("read",)).api_key)
    assert {key.name for key in db.session.scalars(accounts.api_keys_of_own_organisation(reader))} == {
        "mine", "test key"}
