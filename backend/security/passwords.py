"""Password hashing with argon2id, and the policy a new password must meet.

Production uses argon2-cffi's default parameters (RFC 9106's low-memory profile), which the
library raises over time; needs_rehash tells the login code when a stored hash was made with
weaker ones so it can store a fresh hash while it still holds the plain password. Every function
takes the hasher as a keyword argument so tests can pass a cheap one from make_password_hasher.
"""
from __future__ import annotations

from argon2 import DEFAULT_MEMORY_COST, DEFAULT_TIME_COST, PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12
# Room for any passphrase or password manager's output; the bound keeps absurd inputs out.
MAX_PASSWORD_LENGTH = 1024


class WeakPassword(ValueError):
    """A chosen password does not meet the password policy."""


class CorruptPasswordHash(ValueError):
    """A stored password hash cannot be read or checked (a data problem, not a wrong password)."""


def make_password_hasher(
    time_cost: int = DEFAULT_TIME_COST, memory_cost: int = DEFAULT_MEMORY_COST
) -> PasswordHasher:
    """An argon2id hasher: the library's defaults, or cheaper parameters for tests.

    `memory_cost` is in KiB and must be at least 32 (8 per lane, 4 lanes by default).
    """
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, type=Type.ID)


DEFAULT_HASHER = make_password_hasher()


def check_password_policy(password: str) -> None:
    """Raise WeakPassword, saying what is wrong, unless `password` may be chosen."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    if password.isspace():
        raise WeakPassword("a password cannot be only whitespace")


def hash_password(password: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """The argon2id hash of `password` (salted, in PHC string format) to store.

    It does not apply the policy: call check_password_policy when a password is chosen.
    """
    return hasher.hash(password)


def verify_password(stored_hash: str, password: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Whether `password` matches `stored_hash`; False on a wrong password.

    Raises CorruptPasswordHash when `stored_hash` is not a usable argon2 hash.
    """
    try:
        return hasher.verify(stored_hash, password)
    except VerifyMismatchError:
        return False
    except (InvalidHashError, VerificationError) as exc:
        reason = str(exc) or "not an argon2 hash"
        raise CorruptPasswordHash(f"the stored password hash is corrupt or unusable ({reason})") from None


def needs_rehash(stored_hash: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """Whether `stored_hash` was made with other parameters (or another argon2 variant) than `hasher`'s.

    Raises CorruptPasswordHash when `stored_hash` is not in argon2's format.
    """
    try:
        return hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        raise CorruptPasswordHash("the stored password hash is corrupt or unusable (not an argon2 hash)") from None
