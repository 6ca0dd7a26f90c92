"""API keys for machine clients (backend/security/api_keys.py)."""
from __future__ import annotations

import base64
import re

import pytest

from backend.security.api_keys import (
    IssuedKey,
    MalformedApiKey,
    Scope,
    UnknownScope,
    generate_api_key,
    hash_secret,
    parse_token,
    secret_matches,
    validate_scopes,
)


@pytest.fixture
def issued() -> IssuedKey:
    return generate_api_key()


def test_token_has_the_documented_shape(issued):
    assert issued.token == f"al_{issued.prefix}_{issued.secret}"
    assert re.fullmatch(r"[a-z2-7]{8}", issued.prefix)
    assert len(base64.urlsafe_b64decode(issued.secret + "=")) == 32


def test_two_keys_are_distinct():
    first, second = generate_api_key(), generate_api_key()
    assert first.prefix != second.prefix
    assert first.secret != second.secret


def test_repr_shows_the_prefix_but_not_the_secret(issued):
    for shown in (repr(issued), str(issued)):
        assert issued.prefix in shown
        assert issued.secret not in shown


def test_parse_token_gives_prefix_and_token(issued):
    assert parse_token(issued.token) == (issued.prefix, issued.token)


def test_parse_token_accepts_every_generated_shape():
    """Secrets contain "_" and "-" at any position; none may confuse the parser."""
    for _ in range(200):
        issued = generate_api_key()
        assert parse_token(issued.token)[0] == issued.prefix


VALID = "al_abcdefgh_" + "A" * 43


@pytest.mark.parametrize(
    "token",
    [
        "",
        "al_",
        "al_abcdefgh_",
        "al_abcdefgh",
        "ak_abcdefgh_" + "A" * 43,  # another tag
        "AL_abcdefgh_" + "A" * 43,
        "al_abcdefg_" + "A" * 43,  # prefix too short
        "al_abcdefghi_" + "A" * 43,  # prefix too long
        "al_ABCDEFGH_" + "A" * 43,  # prefix not lowercase base32
        "al_abcdefg1_" + "A" * 43,  # 1 is not in base32
        "al_abcdefgh_" + "A" * 42,  # secret too short
        "al_abcdefgh_" + "A" * 44,  # secret too long
        "al_abcdefgh_" + "A" * 42 + "=",  # padded base64
        "al_abcdefgh_" + "A" * 42 + "+",  # standard base64, not url-safe
        "al_abcdefgh-" + "A" * 43,
        "al-abcdefgh_" + "A" * 43,
        "Bearer " + VALID,
        " " + VALID,
        VALID + "\n",
        VALID + " ",
        "al_abcdefgh_" + "A" * 42 + "\u00e9",
    ],
)
def test_malformed_tokens_are_refused(token):
    with pytest.raises(MalformedApiKey, match="not an Anchorline API key"):
        parse_token(token)


def test_malformed_token_message_does_not_quote_the_token():
    token = "al_abcdefgh_" + "S3cret" * 8
    with pytest.raises(MalformedApiKey) as raised:
        parse_token(token)
    assert "S3cret" not in str(raised.value)


def test_hash_is_sha256_hex_and_hides_the_secret(issued):
    stored = hash_secret(issued.token)
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert stored == hash_secret(issued.token)
    assert issued.secret not in stored
    assert stored != hash_secret(generate_api_key().token)


def test_own_token_matches(issued):
    assert secret_matches(hash_secret(issued.token), issued.token) is True


def test_another_keys_token_does_not_match(issued):
    assert secret_matches(hash_secret(issued.token), generate_api_key().token) is False


def test_token_with_any_character_changed_does_not_match(issued):
    stored = hash_secret(issued.token)
    for position, character in enumerate(issued.token):
        flipped = "B" if character == "A" else "A"
        altered = issued.token[:position] + flipped + issued.token[position + 1 :]
        assert secret_matches(stored, altered) is False, position


def test_garbage_stored_hash_does_not_match(issued):
    assert secret_matches("", issued.token) is False
    assert secret_matches("\u00e9" * 64, issued.token) is False


def test_scopes_vocabulary():
    assert {scope.value for scope in Scope} == {"read", "write"}


@pytest.mark.parametrize(
    ("names", "scopes"),
    [
        (["read"], {Scope.READ}),
        (["write"], {Scope.WRITE}),
        (["read", "write"], {Scope.READ, Scope.WRITE}),
        (("write", "read", "read"), {Scope.READ, Scope.WRITE}),
    ],
)
def test_validate_scopes(names, scopes):
    assert validate_scopes(names) == frozenset(scopes)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["admin"], r"unknown API key scope\(s\) \['admin'\]; the scopes are \['read', 'write'\]"),
        (["read", "READ"], r"\['READ'\]"),
        ([], "at least one scope"),
        ("read", "not the single string"),
    ],
)
def test_invalid_scopes_are_refused(names, message):
    with pytest.raises(UnknownScope, match=message):
        validate_scopes(names)
