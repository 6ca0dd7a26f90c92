"""Locating a Solidity compiler, offline.

The machines Anchorline builds on reach package registries but not binaries.soliditylang.org,
so py-solc-x can never download solc. Any compiler that is already there is used, in this
order: $SOLC_BINARY (an explicit choice), a native `solc` on PATH, a solc that py-solc-x
installed earlier (the pinned version if present), and finally the npm `solc` package from
`npm ci`, driven through solcjs-adapter.js, which answers like a native binary.
"""
from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
from pathlib import Path

import solcx
from packaging.version import Version
from solcx.exceptions import SolcError

from backend.paths import NODE_MODULES, PROJECT_ROOT

SOLC_VERSION = "0.8.30"
# Package data: setuptools ships it through pyproject's `backend = ["chain/*.js"]`.
SOLCJS_ADAPTER = Path(__file__).with_name("solcjs-adapter.js")


class SolcNotFoundError(RuntimeError):
    """No usable compiler; the message says what to install or set."""


def find_solc() -> tuple[Path, str]:
    """Return the compiler to use and how it was found (shown by `anchorline contracts build`)."""
    if explicit := os.environ.get("SOLC_BINARY"):
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SolcNotFoundError(f"SOLC_BINARY={explicit} is not an executable file")
        return path, "SOLC_BINARY"
    if native := shutil.which("solc"):
        return Path(native), "PATH"
    if installed := _solcx_installed():
        return installed, "py-solc-x"
    return _solcjs_adapter(), "npm solc (solcjs-adapter.js)"


def solc_version(solc: Path) -> str:
    """Full version, e.g. "0.8.30+commit.73712a01", parsed exactly as py-solc-x parses it.

    Cached per binary and modification time: the build hash needs it on every up-to-date
    check, and asking solcjs costs half a second of Node start-up.
    """
    return _version_of(str(solc), solc.stat().st_mtime_ns)


@functools.cache
def _version_of(solc: str, mtime_ns: int) -> str:
    try:
        return solcx.wrapper.get_version_str_from_solc_binary(solc)
    except (OSError, subprocess.CalledProcessError, SolcError) as exc:
        raise SolcNotFoundError(f"{solc} is not a working solc: `{solc} --version` failed ({exc})") from exc


def _solcx_installed() -> Path | None:
    try:
        # Lists the install folder only; nothing here downloads.
        versions = solcx.get_installed_solc_versions()
    except OSError:
        # The folder defaults to ~/.solcx and py-solc-x creates it; a read-only home means none.
        return None
    if not versions:
        return None
    pinned = Version(SOLC_VERSION)
    return solcx.install.get_executable(pinned if pinned in versions else versions[0])


def _solcjs_adapter() -> Path:
    if shutil.which("node") is None:
        raise SolcNotFoundError(
            "no Solidity compiler found: SOLC_BINARY is unset, there is no `solc` on PATH and "
            "py-solc-x has none installed; install Node.js (the `node` command) and run "
            f"`npm ci` in {PROJECT_ROOT} to use the npm solc {SOLC_VERSION}, or install a native "
            f"solc {SOLC_VERSION} on PATH"
        )
    if not (NODE_MODULES / "solc" / "package.json").is_file():
        raise SolcNotFoundError(
            f"no Solidity compiler found: the npm package solc is missing from {NODE_MODULES}; "
            f"run `npm ci` in {PROJECT_ROOT}"
        )
    if not os.access(SOLCJS_ADAPTER, os.X_OK):
        # py-solc-x executes the file itself, and a copy of package data may have lost its mode.
        mode = SOLCJS_ADAPTER.stat().st_mode
        try:
            SOLCJS_ADAPTER.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise SolcNotFoundError(
                f"{SOLCJS_ADAPTER} is not executable and cannot be made so ({exc}); run chmod +x on it"
            ) from exc
    return SOLCJS_ADAPTER
