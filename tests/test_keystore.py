"""Signing keys sealed under the master secret (backend/security/keystore.py).

Keys are sealed with a tiny scrypt cost (CHEAP_SCRYPT_N) so the tests are fast; one test seals
with the production cost to check it is the keystore standard's.
"""
from __future__ import annotations

import json
import os
import secrets
import stat

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

from backend.security import keystore
from backend.security.keystore import (
    MASTER_SECRET_ENV,
    SCRYPT_N,
    KeystoreError,
    MasterSecret,
    MasterSecretError,
    SealedKey,
    load_master_secret,
    new_signing_key,
    rotate,
    unseal,
)

CHEAP_SCRYPT_N = 2**4


@pytest.fixture
def master() -> MasterSecret:
    return MasterSecret(secrets.token_hex(32), source="test")


@pytest.fixture
def other_master() -> MasterSecret:
    return MasterSecret(secrets.token_hex(32), source="test")


@pytest.fixture
def sealed(master) -> SealedKey:
    return new_signing_key(master, scrypt_n=CHEAP_SCRYPT_N)


def altered(keystore_json: str, change) -> str:
    document = json.loads(keystore_json)
    change(document)
    return json.dumps(document)


def flip_hex(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


# ---------------------------------------------------------------------- sealing and unsealing


def test_sealed_key_is_a_keystore_v3_of_its_checksum_address(sealed):
    document = json.loads(sealed.keystore_json)
    assert document["version"] == 3
    assert document["crypto"]["kdf"] == "scrypt"
    assert document["crypto"]["kdfparams"]["n"] == CHEAP_SCRYPT_N
    assert sealed.address.startswith("0x")
    assert sealed.address == to_checksum_address(sealed.address)
    assert to_checksum_address(document["address"]) == sealed.address


def test_production_kdf_is_the_keystore_standard_scrypt(master):
    document = json.loads(new_signing_key(master).keystore_json)
    assert SCRYPT_N == 2**18
    assert document["crypto"]["kdf"] == "scrypt"
    params = document["crypto"]["kdfparams"]
    assert (params["n"], params["r"], params["p"], params["dklen"]) == (2**18, 8, 1, 32)


def test_each_call_generates_a_distinct_key(master):
    first = new_signing_key(master, scrypt_n=CHEAP_SCRYPT_N)
    second = new_signing_key(master, scrypt_n=CHEAP_SCRYPT_N)
    assert first.address != second.address
    assert unseal(master, first.keystore_json).key != unseal(master, second.keystore_json).key


def test_unseal_gives_a_signer_of_the_sealed_address(master, sealed):
    account = unseal(master, sealed.keystore_json)
    assert account.address == sealed.address
    message = encode_defunct(text="receivable 42 confirmed")
    signature = account.sign_message(message).signature
    assert Account.recover_message(message, signature=signature) == sealed.address


def test_wrong_master_secret_is_a_clear_keystore_error(other_master, sealed):
    with pytest.raises(KeystoreError) as raised:
        unseal(other_master, sealed.keystore_json)
    assert str(raised.value) == (
        f"cannot decrypt the signing key of {sealed.address}: wrong master secret or corrupt keystore"
    )
    # eth-account's own error is dropped, not chained: its message is not ours to vouch for.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("ciphertext", "cannot decrypt"),
        ("mac", "cannot decrypt"),
        ("salt", "cannot decrypt"),
        ("iv", "decrypts to the key of 0x"),  # outside the MAC: caught by the address check
    ],
)
def test_tampered_keystore_is_refused(master, sealed, field, reason):
    def tamper(document):
        crypto = document["crypto"]
        holder = {"salt": crypto["kdfparams"], "iv": crypto["cipherparams"]}.get(field, crypto)
        holder[field] = flip_hex(holder[field])

    with pytest.raises(KeystoreError, match=reason):
        unseal(master, altered(sealed.keystore_json, tamper))


def test_keystore_with_another_address_is_refused(master, sealed):
    stranger = Account.create().address
    relabelled = altered(sealed.keystore_json, lambda document: document.update(address=stranger[2:].lower()))
    with pytest.raises(KeystoreError, match=f"labelled {stranger} decrypts to the key of {sealed.address}"):
        unseal(master, relabelled)


@pytest.mark.parametrize(
    ("keystore_json", "reason"),
    [
        ("", "not JSON"),
        ("{not json", "not JSON"),
        ("[]", "not a keystore v3"),
        ('{"version": 3}', "not a keystore v3"),
        ('{"version": 3, "address": "0x1234"}', "not a keystore v3"),
        ('{"version": 4, "address": "' + "ab" * 20 + '"}', "not a keystore v3"),
        ('{"version": 3, "address": "' + "ab" * 20 + '"}', "cannot decrypt the signing key of 0x"),
    ],
)
def test_malformed_keystore_is_refused(master, keystore_json, reason):
    with pytest.raises(KeystoreError, match=reason):
        unseal(master, keystore_json)


def test_scrypt_cost_must_be_a_power_of_two(master):
    with pytest.raises(ValueError, match="power of 2"):
        new_signing_key(master, scrypt_n=1000)


def test_rotate_moves_the_key_to_the_new_master(master, other_master, sealed):
    rotated = rotate(master, other_master, sealed.keystore_json, scrypt_n=CHEAP_SCRYPT_N)
    assert unseal(other_master, rotated).address == sealed.address
    assert unseal(other_master, rotated).key == unseal(master, sealed.keystore_json).key
    with pytest.raises(KeystoreError, match="wrong master secret"):
        unseal(master, rotated)


def test_rotate_with_the_wrong_old_master_is_refused(other_master, sealed):
    with pytest.raises(KeystoreError, match="wrong master secret"):
        rotate(other_master, other_master, sealed.keystore_json, scrypt_n=CHEAP_SCRYPT_N)


def test_no_private_key_or_master_secret_in_reprs_or_errors(master, other_master, sealed, tmp_path):
    account = unseal(master, sealed.keystore_json)
    private_key = account.key.hex().removeprefix("0x").lower()
    secret = master.reveal().lower()
    shown = [repr(master), str(master), f"{master}", repr(sealed), str(sealed), repr(account), str(account)]
    failures = [
        lambda: unseal(other_master, sealed.keystore_json),
        lambda: unseal(master, altered(sealed.keystore_json, lambda d: d["crypto"].update(mac="00" * 32))),
        lambda: unseal(master, altered(sealed.keystore_json, lambda d: d["crypto"]["cipherparams"].update(iv="00" * 16))),
        lambda: rotate(other_master, master, sealed.keystore_json, scrypt_n=CHEAP_SCRYPT_N),
        lambda: MasterSecret(secret[:20], source="test"),
    ]
    for fail in failures:
        with pytest.raises(KeystoreError) as raised:
            fail()
        shown.append(str(raised.value))
        shown.append(repr(raised.value))
    key_file = tmp_path / "master.key"
    key_file.write_text(secret)
    key_file.chmod(0o644)
    with pytest.raises(MasterSecretError) as raised:
        load_master_secret(tmp_path, environ={})
    shown.append(str(raised.value))

    for text in shown:
        assert private_key not in text.lower()
        assert secret not in text.lower()
        assert secret[:20] not in text.lower()
    assert private_key not in sealed.keystore_json.lower()
    assert secret not in sealed.keystore_json.lower()


# ---------------------------------------------------------------------- the master secret


def test_master_secret_from_the_environment(tmp_path):
    value = secrets.token_urlsafe(32)
    master = load_master_secret(tmp_path, environ={MASTER_SECRET_ENV: value})
    assert master.reveal() == value
    assert MASTER_SECRET_ENV in repr(master)
    assert not (tmp_path / "master.key").exists()


@pytest.mark.parametrize("value", ["", "changeme", "x" * 31])
def test_short_master_secret_in_the_environment_is_refused(tmp_path, value):
    with pytest.raises(MasterSecretError, match=f"{MASTER_SECRET_ENV} is shorter than 32 characters"):
        load_master_secret(tmp_path, environ={MASTER_SECRET_ENV: value})
    assert not (tmp_path / "master.key").exists()


def test_master_key_file_is_created_private_and_reused(tmp_path):
    master = load_master_secret(tmp_path, environ={})
    key_file = tmp_path / "master.key"
    content = key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(content.strip())) == 32
    assert master.reveal() == content.strip()
    assert str(key_file) in repr(master)
    assert sorted(os.listdir(tmp_path)) == ["master.key"]  # no temporary file left behind

    again = load_master_secret(tmp_path, environ={})
    assert again.reveal() == master.reveal()
    assert key_file.read_text() == content


def test_master_key_file_is_private_whatever_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        load_master_secret(tmp_path, environ={})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_missing_instance_folder_is_created(tmp_path):
    instance = tmp_path / "not" / "yet"
    load_master_secret(instance, environ={})
    assert (instance / "master.key").is_file()


def test_default_location_is_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(keystore, "INSTANCE_DIR", tmp_path)
    monkeypatch.delenv(MASTER_SECRET_ENV, raising=False)
    master = load_master_secret()
    assert master.reveal() == (tmp_path / "master.key").read_text().strip()


def test_existing_master_key_file_is_used_as_is(tmp_path):
    own = secrets.token_hex(32)
    key_file = tmp_path / "master.key"
    key_file.write_text(own + "\n")
    key_file.chmod(0o600)
    assert load_master_secret(tmp_path, environ={}).reveal() == own
    assert key_file.read_text() == own + "\n"


def test_a_concurrent_creator_never_replaces_the_master_key(tmp_path):
    """Two processes may both find no file; the second to create it must keep the first's."""
    key_file = tmp_path / "master.key"
    keystore._create_master_key_file(key_file)
    first = key_file.read_text()
    keystore._create_master_key_file(key_file)
    assert key_file.read_text() == first
    assert sorted(os.listdir(tmp_path)) == ["master.key"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o660])
def test_master_key_file_open_to_others_is_refused(tmp_path, mode):
    key_file = tmp_path / "master.key"
    key_file.write_text(secrets.token_hex(32))
    key_file.chmod(mode)
    with pytest.raises(MasterSecretError) as raised:
        load_master_secret(tmp_path, environ={})
    message = str(raised.value)
    assert str(key_file) in message
    assert f"{mode:04o}" in message
    assert f"chmod 600 {key_file}" in message


def test_master_key_file_too_short_is_refused(tmp_path):
    key_file = tmp_path / "master.key"
    key_file.write_text("tooshort\n")
    key_file.chmod(0o600)
    with pytest.raises(MasterSecretError, match="shorter than 32 characters"):
        load_master_secret(tmp_path, environ={})


def test_master_key_path_that_is_not_a_file_is_refused(tmp_path):
    (tmp_path / "master.key").mkdir(mode=0o700)
    with pytest.raises(MasterSecretError, match="not a regular file"):
        load_master_secret(tmp_path, environ={})


def test_sealed_key_repr_shows_the_address_only(sealed):
    assert repr(sealed) == f"SealedKey(address='{sealed.address}')"


def test_master_secret_repr_is_redacted(master):
    assert repr(master) == "MasterSecret(source='test', value=<redacted>)"
    assert str(master) == repr(master)
