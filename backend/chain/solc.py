"""Locating a Solidity compiler, offline.

The machines Anchorline builds on reach package registries but not binaries.soliditylang.org,
so py-solc-x can never download solc. A compiler that is already there is used, in this
order: $SOLC_BINARY (an explicit choice, used whatever its version, with a warning if it is not
SOLC_VERSION), a native `solc` on PATH if it is SOLC_VERSION, the SOLC_VERSION that py-solc-x
installed earlier, and finally the npm `solc` package from `npm ci` (pinned to SOLC_VERSION in
package.json), driven through solcjs-adapter.js, which answers like a native binary.
"""
from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import warnings
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


class SolcVersionWarning(UserWarning):
    """$SOLC_BINARY is not SOLC_VERSION; it is used anyway, being an explicit choice."""


def find_solc() -> tuple[Path, str]:
    """Return the compiler to use and how it was found (shown by `anchorline contracts build`)."""
    if explicit := os.environ.get("SOLC_BINARY"):
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SolcNotFoundError(f"SOLC_BINARY={explicit} is not an executable file")
        if (version := solc_version(path)).split("+")[0] != SOLC_VERSION:
            warnings.warn(
                f"SOLC_BINARY={explicit} is solc {version}, not the pinned {SOLC_VERSION}; the artifacts "
                "may differ from everyone else's",
                SolcVersionWarning,
                stacklevel=2,
            )
        return path, "SOLC_BINARY"
    if (native := shutil.which("solc")) and _is_pinned(Path(native)):
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


def _is_pinned(solc: Path) -> bool:
    """Whether `solc` runs and is SOLC_VERSION (a solc on PATH that is not is passed over)."""
    try:
        return solc_version(solc).split("+")[0] == SOLC_VERSION
    except SolcNotFoundError:
        return False


def _solcx_installed() -> Path | None:
    try:
        # Lists the install folder only; nothing here downloads.
        versions = solcx.get_installed_solc_versions()
    except OSError:
        # The folder defaults to ~/.solcx and py-solc-x creates it; a read-only home means none.
        return None
    pinned = Version(SOLC_VERSION)
    return solcx.install.get_executable(pinned) if pinned in versions else None


def _solcjs_adapter() -> Path:
    if shutil.which("node") is None:
        raise SolcNotFoundError(
            f"no Solidity compiler found: SOLC_BINARY is unset, there is no `solc` {SOLC_VERSION} on "
            "PATH and py-solc-x has not installed it; install Node.js (the `node` command) and run "
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
