"""Each organisation's on-chain signing key, encrypted at rest under the master secret.

A key is generated with eth-account and stored as an Ethereum keystore v3 JSON document
(Web3 Secret Storage: scrypt, AES-128-CTR, a MAC over the ciphertext), whose password is the
master secret. The master secret comes from $ANCHORLINE_MASTER_SECRET or, when that is unset,
from <instance>/master.key, created on first use.

Neither a private key nor the master secret may reach an exception message, a repr or a log
line: the objects that hold them redact their repr, and errors from eth-account, whose messages
this module does not control, are replaced rather than chained.
"""
from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_hex_address, to_checksum_address

from backend.paths import INSTANCE_DIR

MASTER_SECRET_ENV = "ANCHORLINE_MASTER_SECRET"
MASTER_KEY_FILENAME = "master.key"
MASTER_KEY_BYTES = 32
# A secret shorter than this is likely a placeholder ("changeme") rather than random data.
MIN_MASTER_SECRET_LENGTH = 32
# The keystore standard's scrypt cost (geth's default, n = 2**18 with r = 8, p = 1): over half a
# second and 256 MiB per decryption, which makes guessing the master secret offline expensive.
SCRYPT_N = 2**18


class KeystoreError(Exception):
    """A signing key cannot be sealed or unsealed."""


class MasterSecretError(KeystoreError):
    """The master secret is missing, too weak, or stored unsafely."""


class MasterSecret:
    """The secret every signing key is encrypted under; its repr and str never show it."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        if len(value) < MIN_MASTER_SECRET_LENGTH:
            raise MasterSecretError(
                f"the master secret from {source} is shorter than {MIN_MASTER_SECRET_LENGTH} characters; "
                f'generate one with: python -c "import secrets; print(secrets.token_hex({MASTER_KEY_BYTES}))"'
            )
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The secret itself, to hand to the keystore encryption and nowhere else."""
        return self._value

    def __repr__(self) -> str:
        return f"MasterSecret(source={self.source!r}, value=<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True)
class SealedKey:
    """A new signing key: its checksum address, and the keystore JSON to store."""

    address: str
    # Encrypted, but still what an attacker would need to try master secrets offline.
    keystore_json: str = field(repr=False)


def load_master_secret(instance_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> MasterSecret:
    """The master secret: $ANCHORLINE_MASTER_SECRET if set, else <instance_dir>/master.key.

    The file is created with 32 random bytes (hex-encoded, so its content can be moved into the
    environment variable as is) when it does not exist, and is never overwritten. It must be a
    regular file without group or other permissions. A set but empty or short variable is an
    error rather than a reason to fall back to the file: keys sealed under the file's secret would
    not open once the variable is fixed.
    """
    environ = os.environ if environ is None else environ
    if MASTER_SECRET_ENV in environ:
        return MasterSecret(environ[MASTER_SECRET_ENV], source=f"${MASTER_SECRET_ENV}")
    path = (INSTANCE_DIR if instance_dir is None else instance_dir) / MASTER_KEY_FILENAME
    if not path.exists():
        _create_master_key_file(path)
    return MasterSecret(_read_master_key_file(path), source=str(path))


def _create_master_key_file(path: Path) -> None:
    """Write a new random master key at `path`, unless another process has just done so.

    The secret is written to a temporary file in the same folder and hard-linked into place:
    the link either creates `path` complete or fails because it exists, so no reader ever sees a
    partial file and a concurrent creator's secret is never replaced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(MASTER_KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        # Sync the folder too: losing the new name in a crash after keys were sealed under it
        # would make those keys unrecoverable.
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    finally:
        temporary.unlink(missing_ok=True)


def _read_master_key_file(path: Path) -> str:
    # Checked on the open descriptor, so the permissions are those of the file that is read.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise MasterSecretError(f"{path} is not a regular file")
        if mode & 0o077:
            raise MasterSecretError(
                f"{path} is accessible to group or others (mode {stat.S_IMODE(mode):04o}); it holds the "
                f"master secret of every signing key. Run `chmod 600 {path}` and start again."
            )
        with os.fdopen(descriptor, "r", encoding="utf-8", closefd=False) as handle:
            return handle.read().strip()
    finally:
        os.close(descriptor)


def new_signing_key(master: MasterSecret, *, scrypt_n: int = SCRYPT_N) -> SealedKey:
    """A new random signing key, sealed under `master` with scrypt cost `scrypt_n` (a power of 2)."""
    account = Account.create()
    return SealedKey(address=account.address, keystore_json=_seal(account, master, scrypt_n))


def unseal(master: MasterSecret, keystore_json: str) -> LocalAccount:
    """The signing account in `keystore_json`, decrypted with `master`.

    Raises KeystoreError if the document is not a keystore v3, if it does not decrypt (wrong
    master secret or altered ciphertext, salt or MAC), or if it decrypts to the key of another
    address (altered address or IV).
    """
    document = _parse_keystore(keystore_json)
    address = to_checksum_address(document["address"])
    try:
        account = Account.from_key(Account.decrypt(document, master.reveal()))
    except Exception:
        # eth-account fails with ValueError, KeyError, TypeError or NotImplementedError depending
        # on what is wrong, in messages this module does not control: report one clear cause.
        raise KeystoreError(
            f"cannot decrypt the signing key of {address}: wrong master secret or corrupt keystore"
        ) from None
    # The MAC covers neither the address field nor the IV: an altered one decrypts without error
    # to the wrong key, which shows here.
    if account.address != address:
        raise KeystoreError(
            f"the keystore labelled {address} decrypts to the key of {account.address}: it was altered"
        )
    return account


def rotate(
    old_master: MasterSecret, new_master: MasterSecret, keystore_json: str, *, scrypt_n: int = SCRYPT_N
) -> str:
    """`keystore_json` re-encrypted under `new_master` (same key and address, fresh salt and IV)."""
    return _seal(unseal(old_master, keystore_json), new_master, scrypt_n)


def _seal(account: LocalAccount, master: MasterSecret, scrypt_n: int) -> str:
    if scrypt_n < 2 or scrypt_n & (scrypt_n - 1):
        raise ValueError(f"scrypt_n must be a power of 2 of at least 2, not {scrypt_n}")
    return json.dumps(Account.encrypt(account.key, master.reveal(), kdf="scrypt", iterations=scrypt_n))


def _parse_keystore(keystore_json: str) -> dict[str, Any]:
    try:
        document = json.loads(keystore_json)
    except ValueError:
        raise KeystoreError("the stored signing key is not JSON") from None
    if not (
        isinstance(document, dict)
        and document.get("version") == 3
        and isinstance(document.get("address"), str)
        and is_hex_address(document["address"])
    ):
        raise KeystoreError("the stored signing key is not a keystore v3 document with an address")
    return document
