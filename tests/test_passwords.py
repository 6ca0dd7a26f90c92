"""Password hashing and policy (backend/security/passwords.py).

Hashes are made with a cheap argon2id hasher so the tests are fast; the production parameters
are checked without hashing with them.
"""
from __future__ import annotations

import argon2
import pytest
from argon2 import PasswordHasher, Type

from backend.security.passwords import (
    DEFAULT_HASHER,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    CorruptPasswordHash,
    WeakPassword,
    check_password_policy,
    hash_password,
    make_password_hasher,
    needs_rehash,
    verify_password,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def cheap() -> PasswordHasher:
    return make_password_hasher(time_cost=1, memory_cost=64)


def test_production_hasher_is_argon2id_with_the_library_defaults():
    library = PasswordHasher()
    assert DEFAULT_HASHER.type is Type.ID
    assert (DEFAULT_HASHER.time_cost, DEFAULT_HASHER.memory_cost) == (library.time_cost, library.memory_cost)
    assert (DEFAULT_HASHER.time_cost, DEFAULT_HASHER.memory_cost) == (
        argon2.DEFAULT_TIME_COST,
        argon2.DEFAULT_MEMORY_COST,
    )


def test_hash_is_salted_argon2id_and_verifies(cheap):
    first = hash_password(PASSWORD, hasher=cheap)
    second = hash_password(PASSWORD, hasher=cheap)
    assert first.startswith("$argon2id$")
    assert PASSWORD not in first
    assert first != second
    assert verify_password(first, PASSWORD, hasher=cheap) is True
    assert verify_password(second, PASSWORD, hasher=cheap) is True


@pytest.mark.parametrize("attempt", ["correct horse battery stapler", "Correct horse battery staple", "", " " + PASSWORD])
def test_wrong_password_is_false_not_an_error(cheap, attempt):
    assert verify_password(hash_password(PASSWORD, hasher=cheap), attempt, hasher=cheap) is False


def test_verify_reads_the_parameters_from_the_hash(cheap):
    """A hash made with other parameters still verifies: upgrading them must not lock users out."""
    older = make_password_hasher(time_cost=2, memory_cost=32)
    assert verify_password(hash_password(PASSWORD, hasher=older), PASSWORD, hasher=cheap) is True


@pytest.mark.parametrize(
    "corrupt",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=64,t=1,p=4$",
        "$argon2zz$v=19$m=64,t=1,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
def test_corrupt_hash_raises(cheap, corrupt):
    with pytest.raises(CorruptPasswordHash, match="corrupt or unusable"):
        verify_password(corrupt, PASSWORD, hasher=cheap)


def test_truncated_hash_raises(cheap):
    stored = hash_password(PASSWORD, hasher=cheap)
    with pytest.raises(CorruptPasswordHash):
        verify_password(stored[:-6], PASSWORD, hasher=cheap)


def test_needs_rehash_when_parameters_differ(cheap):
    stored = hash_password(PASSWORD, hasher=cheap)
    assert needs_rehash(stored, hasher=cheap) is False
    assert needs_rehash(stored, hasher=make_password_hasher(time_cost=2, memory_cost=64)) is True
    assert needs_rehash(stored) is True  # the production parameters are stronger


def test_needs_rehash_for_another_argon2_variant(cheap):
    argon2i = PasswordHasher(time_cost=1, memory_cost=64, type=Type.I)
    assert needs_rehash(argon2i.hash(PASSWORD), hasher=cheap) is True


def test_needs_rehash_of_corrupt_hash_raises(cheap):
    with pytest.raises(CorruptPasswordHash):
        needs_rehash("not a hash", hasher=cheap)


@pytest.mark.parametrize(
    "password",
    ["a" * MIN_PASSWORD_LENGTH, "x" * MAX_PASSWORD_LENGTH, "  padded but long  ", "pässwörd ünïcode"],
)
def test_policy_accepts(password):
    check_password_policy(password)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "at least 12 characters"),
        ("a" * (MIN_PASSWORD_LENGTH - 1), "at least 12 characters"),
        ("x" * (MAX_PASSWORD_LENGTH + 1), "at most 1024 characters"),
        (" " * MIN_PASSWORD_LENGTH, "only whitespace"),
        ("\t\n \u00a0" * 5, "only whitespace"),
    ],
)
def test_policy_refuses(password, reason):
    with pytest.raises(WeakPassword, match=reason):
        check_password_policy(password)


def test_weak_password_is_a_value_error():
    with pytest.raises(ValueError):
        check_password_policy("short")
