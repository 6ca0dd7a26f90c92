"""Where Anchorline keeps its files.

The project root is the checkout (the package is installed editable by the Makefile); it can
be moved with ANCHORLINE_HOME, for example to run the CLI from an installed wheel next to a
checkout of the contracts.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("ANCHORLINE_HOME") or Path(__file__).resolve().parent.parent)
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
NODE_MODULES = PROJECT_ROOT / "node_modules"
BUILD_DIR = PROJECT_ROOT / "build"
# One JSON file per chain id; tests point ANCHORLINE_DEPLOYMENTS elsewhere so they never
# overwrite the record of a developer's devnet (which has the same chain id).
DEPLOYMENTS_DIR = Path(os.environ.get("ANCHORLINE_DEPLOYMENTS") or PROJECT_ROOT / "deployments")
# Local, never-committed state: devnet pid/log/state, later the Flask instance folder.
INSTANCE_DIR = Path(os.environ.get("ANCHORLINE_INSTANCE") or PROJECT_ROOT / "instance")
