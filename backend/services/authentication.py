"""Who is calling: API keys and passwords checked, and the `Actor` a request acts as.

Every refusal of a credential is one `AuthenticationFailed` with one message per kind of
credential, whichever check failed: a caller guessing keys or addresses learns nothing about
which exist or which are revoked. For the same reason an unknown address costs as much to refuse
as a wrong password. A good credential of an organisation that is suspended or not through KYC
is `OrganisationInactive` instead: its holder has proved who it is, and is told why it can do
nothing.
"""
from __future__ import annotations

import functools
import logging
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import select

from backend.extensions import db
from backend.models import ApiKey, User, utcnow
from backend.security.api_keys import MalformedApiKey, parse_token, secret_matches
from backend.security.passwords import DEFAULT_HASHER, CorruptPasswordHash, hash_password, needs_rehash, verify_password
from backend.services.actors import Actor
from backend.services.errors import AuthenticationFailed
from backend.services.permissions import require_active
from backend.services.transaction import atomic

INVALID_API_KEY = "invalid API key"
INVALID_LOGIN = "wrong email address or password"
SESSION_ENDED = "the session has ended: sign in again"
# How stale ApiKey.last_used_at may get: it says whether a key is still in use, which a minute
# answers as well as a millisecond would, and most requests are then reads that write nothing.
LAST_USED_RESOLUTION = timedelta(minutes=1)

logger = logging.getLogger(__name__)


def actor_for_api_key(token: str, *, request_id: str | None) -> Actor:
    """The actor holding the API key `token` (the whole `al_<prefix>_<secret>` string).

    Refuses a malformed, unknown, revoked or expired key, and the key of an inactive user, all
    with the same message; the key of an inactive organisation with `OrganisationInactive`.
    """
    try:
        prefix, token = parse_token(token)
    except MalformedApiKey:
        raise AuthenticationFailed(INVALID_API_KEY) from None
    key = db.session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    now = utcnow()
    if key is None or not secret_matches(key.secret_hash, token) or not _key_usable(key, now):
        raise AuthenticationFailed(INVALID_API_KEY)
    require_active(key.organisation)
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        _record_use(key, now)
    return Actor(organisation=key.organisation, api_key=key, request_id=request_id)


def _key_usable(key: ApiKey, now: datetime) -> bool:
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return False
    return key.created_by is None or key.created_by.is_active


@atomic
def _record_use(key: ApiKey, now: datetime) -> None:
    key.last_used_at = now


@atomic
def authenticate_user(email: str, password: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> User:
    """The active user whose address is `email` and whose password is `password`; notes the login
    (and stores a fresh hash if the stored one was made with weaker parameters than `hasher`'s)."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    # An unknown address is checked against a hash of the same cost, so the time an answer takes
    # does not tell which addresses have accounts.
    stored_hash = user.password_hash if user is not None else _dummy_hash(hasher)
    try:
        matches = verify_password(stored_hash, password, hasher=hasher)
    except CorruptPasswordHash:
        logger.error("user %s has an unusable password hash; refusing the login", user.id if user else None)
        matches = False
    if user is None or not matches or not user.is_active:
        raise AuthenticationFailed(INVALID_LOGIN)
    require_active(user.organisation)
    if needs_rehash(user.password_hash, hasher=hasher):
        user.password_hash = hash_password(password, hasher=hasher)
    user.last_login_at = utcnow()
    return user


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash made by `hasher` of a password nobody knows (made once per hasher: it is slow)."""
    return hash_password(secrets.token_urlsafe(32), hasher=hasher)


def actor_for_user(user_id: int, *, request_id: str | None) -> Actor:
    """The actor a signed-in user acts as; refused once the user is gone or deactivated."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        raise AuthenticationFailed(SESSION_ENDED)
    require_active(user.organisation)
    return Actor(organisation=user.organisation, user=user, request_id=request_id)
