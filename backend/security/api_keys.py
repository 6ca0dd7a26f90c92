"""API keys for machine clients, sent as `Authorization: Bearer al_<prefix>_<secret>`.

The prefix (8 base32 characters) is public: it finds the key's row and names the key in lists.
The secret (32 random bytes, url-safe base64) is shown once, when the key is issued; only the
SHA-256 of the whole token is stored. Authenticating a request is parse_token, a lookup by
prefix, then secret_matches against the stored hash.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

TOKEN_TAG = "al"
PREFIX_BYTES = 5  # 40 bits: exactly 8 base32 characters, no padding
SECRET_BYTES = 32
# al_, 8 lowercase base32 characters, _, 43 url-safe base64 characters (32 bytes, unpadded);
# the secret's alphabet includes "_" and "-", so the shape is checked as a whole.
_TOKEN_PATTERN = re.compile(rf"{TOKEN_TAG}_(?P<prefix>[a-z2-7]{{8}})_[A-Za-z0-9_-]{{43}}")


class MalformedApiKey(ValueError):
    """A string is not an Anchorline API key token."""


class UnknownScope(ValueError):
    """A requested API key scope is not one of Scope's."""


class Scope(StrEnum):
    """What an API key may do."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class IssuedKey:
    """A new API key. The secret and token are for the client, once; they never appear in repr."""

    prefix: str
    secret: str = field(repr=False)
    token: str = field(repr=False)


def generate_api_key() -> IssuedKey:
    """A new random API key. Store its prefix and hash_secret(token); hand the token to the client."""
    prefix = base64.b32encode(secrets.token_bytes(PREFIX_BYTES)).decode("ascii").lower()
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return IssuedKey(prefix=prefix, secret=secret, token=f"{TOKEN_TAG}_{prefix}_{secret}")


def parse_token(token: str) -> tuple[str, str]:
    """(prefix, token) of a well-formed API key token; MalformedApiKey for anything else.

    The message never quotes the token, which may be a real key sent in the wrong shape.
    """
    match = _TOKEN_PATTERN.fullmatch(token)
    if match is None:
        raise MalformedApiKey(f"not an Anchorline API key: expected {TOKEN_TAG}_<8-character prefix>_<secret>")
    return match["prefix"], token


def hash_secret(token: str) -> str:
    """The SHA-256 (hex) of a token, the only form in which a key is stored.

    A fast hash is right here, unlike for passwords: the secret is 256 bits from the system's
    CSPRNG, so even a leaked hash cannot be searched by brute force, however cheap each guess.
    argon2's deliberate slowness protects low-entropy human passwords; on every API request it
    would only add latency and a way to exhaust the server's CPU and memory.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def secret_matches(stored_hash: str, token: str) -> bool:
    """Whether `token` is the key whose hash is `stored_hash` (compared in constant time)."""
    return hmac.compare_digest(stored_hash.encode("utf-8"), hash_secret(token).encode("utf-8"))


def validate_scopes(scopes: Iterable[str]) -> frozenset[Scope]:
    """The Scopes named in `scopes`; UnknownScope if any is not one, or if there are none."""
    if isinstance(scopes, str):
        raise UnknownScope(f"scopes must be a list of names, not the single string {scopes!r}")
    names = set(scopes)
    allowed = {scope.value for scope in Scope}
    unknown = names - allowed
    if unknown:
        raise UnknownScope(f"unknown API key scope(s) {sorted(unknown)}; the scopes are {sorted(allowed)}")
    if not names:
        raise UnknownScope(f"an API key needs at least one scope of {sorted(allowed)}")
    return frozenset(Scope(name) for name in names)
