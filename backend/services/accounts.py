"""Who acts for an organisation: its users (people, created by the operator) and its API keys
(machine clients, issued and revoked by the organisation itself).

A password is stored only as its argon2id hash and an API key only as the SHA-256 of its token;
the token is handed back once, when the key is issued, and appears in no audit entry or log.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from backend.extensions import db
from backend.models import ApiKey, Organisation, Role, User, utcnow
from backend.security.api_keys import Scope, UnknownScope, generate_api_key, hash_secret, validate_scopes
from backend.security.passwords import (
    CorruptPasswordHash,
    WeakPassword,
    check_password_policy,
    hash_password,
    verify_password,
)
from backend.services import audit
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, InvalidState, NotFound, PermissionDenied
from backend.services.permissions import ALL_ROLES, Action, authorize, get_authorized
from backend.services.transaction import atomic

MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 200
MAX_KEY_NAME_LENGTH = 100
# One @, something on each side, a dot in the domain: enough to catch typing mistakes; whether
# the address exists only mail can tell.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Roles that write anything; an organisation with none of them (an auditor) gets read-only keys.
_WRITING_ROLES = ALL_ROLES & ~Role.AUDITOR


# ---------------------------------------------------------------- users


@atomic
def create_user(actor: Actor, organisation: Organisation, *, email: str, display_name: str, password: str) -> User:
    """A person who signs in for `organisation`; the operator creates them."""
    authorize(actor, Action.CREATE_USER, organisation)
    email = (email or "").strip().lower()
    display_name = (display_name or "").strip()
    errors: dict[str, list[str]] = {}
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
        errors["email"] = ["expected an e-mail address such as name@example.com"]
    if not display_name:
        errors["display_name"] = ["give the person's name"]
    elif len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        errors["display_name"] = [f"at most {MAX_DISPLAY_NAME_LENGTH} characters"]
    try:
        check_password_policy(password)
    except WeakPassword as exc:
        errors["password"] = [str(exc)]
    if errors:
        raise InvalidInput("the user's details are invalid", errors=errors)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Duplicate("a user with this e-mail address exists already", errors={"email": ["taken"]})
    user = User(organisation=organisation, email=email, display_name=display_name,
                password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    # Who was created for which organisation; the e-mail address and name stay in the users table,
    # where they can be corrected or erased, which an append-only log cannot do.
    audit.record(actor, Action.CREATE_USER, "user", user.id, after={"organisation_id": organisation.id})
    return user


@atomic
def change_password(actor: Actor, *, current_password: str, new_password: str) -> User:
    """The signed-in user's own new password, once they have given their current one."""
    user = actor.user
    if user is None:
        raise PermissionDenied("only a signed-in person changes their password; an API key has none")
    errors: dict[str, list[str]] = {}
    try:
        current_matches = verify_password(user.password_hash, current_password or "")
    except CorruptPasswordHash:
        current_matches = False
    if not current_matches:
        errors["current_password"] = ["this is not your current password"]
    try:
        check_password_policy(new_password or "")
    except WeakPassword as exc:
        errors["new_password"] = [str(exc)]
    else:
        if current_matches and new_password == current_password:
            errors["new_password"] = ["choose a password other than the current one"]
    if errors:
        raise InvalidInput("the password was not changed", errors=errors)
    user.password_hash = hash_password(new_password)
    # That it happened, never anything of the password.
    audit.record(actor, "user.change_password", "user", user.id)
    return user


# A temporary password: 16 random bytes, 22 URL-safe characters, well above the policy's minimum.
TEMPORARY_PASSWORD_BYTES = 16


@atomic
def reset_password(actor: Actor, user_id: int) -> tuple[User, str]:
    """A new random password for the user `user_id` of any organisation, set by the operator's
    staff for someone who lost theirs; returned this once (to be handed over and then changed),
    stored only as its hash."""
    user = db.session.get(User, user_id)
    if user is None:
        authorize(actor, Action.RESET_PASSWORD)
        raise NotFound("no such user")
    authorize(actor, Action.RESET_PASSWORD, user.organisation)
    temporary = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    user.password_hash = hash_password(temporary)
    audit.record(actor, Action.RESET_PASSWORD, "user", user.id, after={"organisation_id": user.organisation_id})
    return user, temporary


def users_for_password_reset(actor: Actor) -> Select[tuple[User]]:
    """Every organisation's users, for the operator's staff choosing whose password to reset."""
    authorize(actor, Action.RESET_PASSWORD)
    return select(User).join(User.organisation).order_by(Organisation.name, User.email)


# ---------------------------------------------------------------- API keys


def api_keys_of_own_organisation(actor: Actor) -> Select[tuple[ApiKey]]:
    """The actor's organisation's API keys, revoked and expired ones included."""
    authorize(actor, Action.VIEW_API_KEYS, actor.organisation)
    return select(ApiKey).where(ApiKey.organisation_id == actor.organisation.id)


def get_api_key(actor: Actor, key_id: int) -> ApiKey:
    return get_authorized(actor, Action.VIEW_API_KEYS, ApiKey, key_id)


@atomic
def issue_api_key(
    actor: Actor, *, name: str, scopes: list[str], expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """A new key for the actor's own organisation, and its token: returned this once, stored
    nowhere. An auditor's keys may only read."""
    authorize(actor, Action.MANAGE_API_KEYS, actor.organisation)
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["give the key a name that says which client uses it"]
    elif len(name) > MAX_KEY_NAME_LENGTH:
        errors["name"] = [f"at most {MAX_KEY_NAME_LENGTH} characters"]
    granted: frozenset[Scope] = frozenset()
    try:
        granted = validate_scopes(scopes)
    except UnknownScope as exc:
        errors["scopes"] = [str(exc)]
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= utcnow()):
        errors["expires_at"] = ["a moment in the future, with its time zone"]
    if errors:
        raise InvalidInput("the API key's details are invalid", errors=errors)
    if Scope.WRITE in granted and not actor.has_any(_WRITING_ROLES):
        raise PermissionDenied("an auditor's API keys may only read")
    issued = generate_api_key()
    key = ApiKey(
        organisation=actor.organisation,
        created_by=actor.user,
        name=name,
        prefix=issued.prefix,
        secret_hash=hash_secret(issued.token),
        scopes=sorted(granted),
        expires_at=expires_at,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(actor, "api_key.issue", "api_key", key.id, after=_snapshot(key))
    return key, issued.token


@atomic
def revoke_api_key(actor: Actor, key: ApiKey) -> ApiKey:
    """Revokes one of the actor's organisation's keys; it authenticates nothing from now on."""
    authorize(actor, Action.MANAGE_API_KEYS, key)
    if key.revoked_at is not None:
        raise InvalidState(f"the API key {key.prefix} is revoked already")
    before = _snapshot(key)
    key.revoked_at = utcnow()
    audit.record(actor, "api_key.revoke", "api_key", key.id, before=before, after=_snapshot(key))
    return key


def _snapshot(key: ApiKey) -> dict[str, Any]:
    """What the audit log records of a key: never its hash, and the token is not even known."""
    return {
        "organisation_id": key.organisation_id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }
