"""Deploying the Anchorline contracts with web3.py and a local eth-account key.

Order and wiring: the settlement token and the receivable registry first, which both name the
Financing contract in immutables, as their participant registry (Financing is also the
platform's ParticipantRegistry) and as their settlement agent / servicer (cheaper on every
settlement than a role lookup, and the rules cannot be swapped under the participants); then
Financing itself. The three transactions are signed with the deployer's next three nonces, so
Financing's address is known before the first is sent.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import rlp
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_canonical_address, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from backend import paths
from backend.chain import transactions
from backend.chain.compiler import build_contracts
from backend.paths import BUILD_DIR

CONTRACT_NAMES = ("SettlementToken", "ReceivableRegistry", "Financing")
DAY = 86_400


class DeploymentError(RuntimeError):
    """The deployment cannot go on (wrong nonce prediction, missing code, bad settings)."""


@dataclass(frozen=True)
class DeploySettings:
    """What a deployment is configured with; recorded in the deployment file."""

    currency: str = "CNY"  # ISO 4217 code of the settlement token
    token_decimals: int = 2  # token units are the currency's minor units
    token_name: str = "Anchorline Settlement CNY"
    token_symbol: str = "aCNY"
    grace_period: int = 5 * DAY  # after the due date, before a receivable may be marked overdue
    default_period: int = 30 * DAY  # after the grace period, before it may be marked defaulted
    admin_transfer_delay: int = 2 * DAY  # OpenZeppelin's delay on handing over the admin role
    admin: str | None = None  # default: the deployer
    operator: str | None = None  # default: the deployer

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise DeploymentError(f"currency must be an ISO 4217 code like CNY, not {self.currency!r}")
        if not 0 <= self.token_decimals <= 18:
            raise DeploymentError("token decimals must be between 0 and 18")
        for name in ("grace_period", "default_period", "admin_transfer_delay"):
            if getattr(self, name) < 0:
                raise DeploymentError(f"{name} cannot be negative")


@dataclass
class Deployment:
    """Where the contracts live on one chain, and what they were built and deployed from."""

    chain_id: int
    deployer: str
    admin: str
    operator: str
    deploy_block: int
    addresses: dict[str, str]
    build_hash: str
    bytecode_hashes: dict[str, str]  # sha256 of each artifact's runtime bytecode (immutables unset)
    compiler_version: str
    settings: dict[str, Any] = field(default_factory=dict)

    def contracts(self, w3: Web3, build_dir: Path = BUILD_DIR) -> dict[str, Contract]:
        """The deployed contracts, by name."""
        artifacts = build_contracts(build_dir=build_dir).artifacts
        return {
            name: w3.eth.contract(address=address, abi=artifacts[name]["abi"])
            for name, address in self.addresses.items()
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        return cls(**json.loads(text))


def create_address(sender: str, nonce: int) -> str:
    """The address a CREATE from `sender` at `nonce` deploys to (yellow paper, eq. 86)."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


def deploy_contracts(
    w3: Web3,
    deployer: LocalAccount,
    settings: DeploySettings | None = None,
    build_dir: Path = BUILD_DIR,
) -> Deployment:
    """Deploy the contracts, wired to each other, and return where they are."""
    settings = settings or DeploySettings()
    build = build_contracts(build_dir=build_dir)
    artifacts = build.artifacts
    admin = to_checksum_address(settings.admin or deployer.address)
    operator = to_checksum_address(settings.operator or deployer.address)
    administration = (settings.admin_transfer_delay, admin, operator)

    first_nonce = w3.eth.get_transaction_count(deployer.address, "pending")
    nonces = iter(range(first_nonce, first_nonce + len(CONTRACT_NAMES)))

    def deploy(name: str, *args: Any) -> tuple[str, int]:
        factory = w3.eth.contract(abi=artifacts[name]["abi"], bytecode=artifacts[name]["bytecode"])
        receipt = transactions.send(w3, deployer, factory.constructor(*args), nonce=next(nonces))
        return receipt["contractAddress"], receipt["blockNumber"]

    financing_predicted = create_address(deployer.address, first_nonce + len(CONTRACT_NAMES) - 1)
    token, first_block = deploy(
        "SettlementToken",
        settings.token_name,
        settings.token_symbol,
        settings.currency.encode(),
        settings.token_decimals,
        financing_predicted,  # the participant registry
        financing_predicted,  # the settlement agent
        administration,
    )
    registry, _ = deploy("ReceivableRegistry", financing_predicted, financing_predicted, administration)
    financing, _ = deploy("Financing", registry, token, settings.grace_period, settings.default_period, administration)
    if financing != financing_predicted:  # only a node that ignores the signed nonce gets here
        raise DeploymentError(f"Financing landed at {financing}, not at the predicted {financing_predicted}")
    addresses = {
        "SettlementToken": token,
        "ReceivableRegistry": registry,
        "Financing": financing,
    }
    return Deployment(
        chain_id=w3.eth.chain_id,
        deployer=deployer.address,
        admin=admin,
        operator=operator,
        deploy_block=first_block,
        addresses=addresses,
        build_hash=next(iter(artifacts.values()))["buildHash"],
        bytecode_hashes={name: _bytecode_hash(artifacts[name]) for name in CONTRACT_NAMES},
        compiler_version=build.compiler_version,
        settings=asdict(settings),
    )


def current_build_hash(build_dir: Path = BUILD_DIR) -> str:
    """The build hash the contracts compile to now (compiling them if needed)."""
    return next(iter(build_contracts(build_dir=build_dir).artifacts.values()))["buildHash"]


def is_live(w3: Web3, deployment: Deployment) -> bool:
    """True when every recorded contract has code on the connected chain."""
    return w3.eth.chain_id == deployment.chain_id and all(
        len(w3.eth.get_code(address)) > 0 for address in deployment.addresses.values()
    )


def deployment_path(chain_id: int, deployments_dir: Path | None = None) -> Path:
    return (deployments_dir or paths.DEPLOYMENTS_DIR) / f"{chain_id}.json"


def save_deployment(deployment: Deployment, deployments_dir: Path | None = None) -> Path:
    path = deployment_path(deployment.chain_id, deployments_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(deployment.to_json())
    tmp.replace(path)
    return path


def load_deployment(chain_id: int, deployments_dir: Path | None = None) -> Deployment | None:
    path = deployment_path(chain_id, deployments_dir)
    return Deployment.from_json(path.read_text()) if path.exists() else None


def _bytecode_hash(artifact: dict[str, Any]) -> str:
    return hashlib.sha256(bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x"))).hexdigest()
