"""The local devnet (`anchorline devnet`, backend/chain/devnet.py), the chain connection
(backend/chain/connection.py), and the rules that keep Anchorline portable to Besu or GoQuorum:
the backend, workers and benchmarks speak standard JSON-RPC only and sign transactions locally.

Every devnet here runs in a temporary instance folder on a free port, so a developer's devnet on
8545 is never touched.
"""
from __future__ import annotations

import json
import random
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import pytest
import requests
import rlp
from click.testing import CliRunner, Result
from eth_account import Account
from web3 import HTTPProvider, Web3

from backend.chain import devnet
from backend.chain.connection import (
    ChainUnreachable,
    DeployerKeyError,
    connect,
    deployer_account,
    dev_accounts,
    rpc_url,
)
from backend.commands.devnet import devnet as devnet_cli
from backend.paths import PROJECT_ROOT
from tests.conftest import AnvilNode

CONFIG = devnet.load_config()


def cli(*args: object) -> Result:
    return CliRunner().invoke(devnet_cli, [str(arg) for arg in args], catch_exceptions=False)


def answers(url: str) -> bool:
    """Whether a JSON-RPC node answers at `url` right now (no retries)."""
    probe = Web3(HTTPProvider(url, request_kwargs={"timeout": 1}, exception_retry_configuration=None))
    try:
        probe.eth.chain_id
    except requests.exceptions.RequestException:
        return False
    return True


@dataclass(frozen=True)
class Instance:
    folder: Path  # what --instance-dir names
    port: int

    @property
    def directory(self) -> Path:
        return devnet.default_directory(self.folder)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[object]:
        return ["--instance-dir", self.folder]


@pytest.fixture
def instance(tmp_path: Path, unused_port: Callable[[], int]) -> Iterator[Instance]:
    """A private instance folder and port for `anchorline devnet`; its devnet is stopped after."""
    try:
        devnet.anvil_binary()
    except devnet.AnvilNotFound as exc:
        pytest.skip(str(exc))
    here = Instance(folder=tmp_path, port=unused_port())
    yield here
    devnet.stop(here.directory)


@pytest.fixture
def foreign_anvil(unused_port: Callable[[], int]) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """An anvil this test starts itself, outside `anchorline devnet` (no pid file)."""
    port = unused_port()
    process = subprocess.Popen(
        [devnet.anvil_binary(), "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while not answers(f"http://127.0.0.1:{port}"):
        assert time.monotonic() < deadline, "the test's own anvil did not come up"
        time.sleep(0.05)
    yield process, port
    process.terminate()
    process.wait(10)


# ---------------------------------------------------------------------- anchorline devnet


@pytest.mark.anvil
def test_chain_survives_stop_and_start(instance: Instance) -> None:
    started = cli("start", *instance.args(), "--port", instance.port)
    assert started.exit_code == 0, started.output
    assert instance.url in started.output
    status = cli("status", *instance.args())
    assert status.exit_code == 0, status.output
    assert instance.url in status.output
    assert re.search(r"block \d+", status.output)

    # A value transfer signed here and sent with eth_sendRawTransaction, as the backend does.
    w3 = connect(instance.url)
    sender = dev_accounts(2)[1]
    recipient = Account.create().address
    tx = {
        "chainId": CONFIG.chain_id,
        "nonce": w3.eth.get_transaction_count(sender.address),
        "to": recipient,
        "value": 12_345,
        "gas": 21_000,
        "gasPrice": w3.eth.gas_price,
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["status"] == 1
    height = w3.eth.block_number
    sender_balance = w3.eth.get_balance(sender.address)

    stopped = cli("stop", *instance.args())
    assert stopped.exit_code == 0, stopped.output
    assert "stopped" in stopped.output
    assert not devnet.pid_file(instance.directory).exists()
    assert not answers(instance.url)
    not_running = cli("status", *instance.args())
    assert not_running.exit_code != 0
    assert "not running" in not_running.output

    assert cli("start", *instance.args(), "--port", instance.port).exit_code == 0
    w3 = connect(instance.url)
    assert w3.eth.block_number >= height
    assert w3.eth.get_balance(recipient) == 12_345
    assert w3.eth.get_balance(sender.address) == sender_balance
    assert w3.eth.get_transaction_receipt(tx_hash)["blockHash"] == receipt["blockHash"]
    assert cli("stop", *instance.args()).exit_code == 0


@pytest.mark.anvil
def test_start_when_running_does_nothing(instance: Instance) -> None:
    assert cli("start", *instance.args(), "--port", instance.port).exit_code == 0
    node = devnet.running(instance.directory)
    assert node is not None

    again = cli("start", *instance.args(), "--port", instance.port)
    assert again.exit_code == 0, again.output
    assert "already running" in again.output
    assert devnet.running(instance.directory) == node
    assert devnet.pid_file(instance.directory).read_text().strip() == str(node.pid)


@pytest.mark.anvil
def test_stop_never_touches_an_anvil_it_did_not_start(
    instance: Instance, foreign_anvil: tuple[subprocess.Popen[bytes], int]
) -> None:
    process, port = foreign_anvil
    foreign_url = f"http://127.0.0.1:{port}"

    nothing = cli("stop", *instance.args())
    assert nothing.exit_code == 0
    assert "not running" in nothing.output

    # A pid file naming a process that is not this devnet's anvil (a reused pid, say).
    instance.directory.mkdir(parents=True, exist_ok=True)
    devnet.pid_file(instance.directory).write_text(f"{process.pid}\n")
    assert cli("status", *instance.args()).exit_code != 0
    stale = cli("stop", *instance.args())
    assert stale.exit_code == 0
    assert "stale pid file" in stale.output
    assert not devnet.pid_file(instance.directory).exists()

    assert process.poll() is None
    assert answers(foreign_url)


@pytest.mark.anvil
def test_start_on_a_port_in_use_says_so(
    instance: Instance, foreign_anvil: tuple[subprocess.Popen[bytes], int]
) -> None:
    _, port = foreign_anvil
    refused = cli("start", *instance.args(), "--port", port)
    assert refused.exit_code != 0
    assert f"127.0.0.1:{port} is already in use" in refused.output
    assert not devnet.pid_file(instance.directory).exists()


@pytest.mark.anvil
def test_a_damaged_state_file_is_named(instance: Instance) -> None:
    instance.directory.mkdir(parents=True)
    devnet.state_file(instance.directory).write_text('{"block": {"number": ')  # cut mid-write
    refused = cli("start", *instance.args(), "--port", instance.port)
    assert refused.exit_code != 0
    assert f"the state file {devnet.state_file(instance.directory)} is damaged" in refused.output
    assert not devnet.pid_file(instance.directory).exists()


@pytest.mark.anvil
@pytest.mark.parametrize("interruption", [KeyboardInterrupt(), RuntimeError("unexpected")], ids=["ctrl-c", "error"])
def test_an_interrupted_start_leaves_no_anvil_behind(
    instance: Instance, monkeypatch: pytest.MonkeyPatch, interruption: BaseException
) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def interrupted_wait(process: subprocess.Popen[bytes], *args: object) -> None:
        started.append(process)
        assert devnet.pid_file(instance.directory).read_text().strip() == str(process.pid)
        raise interruption

    monkeypatch.setattr(devnet, "_wait_until_serving", interrupted_wait)
    with pytest.raises(type(interruption)):
        devnet.start(instance.directory, port=instance.port)
    [process] = started
    assert process.poll() is not None  # terminated and reaped, not orphaned
    assert not devnet.pid_file(instance.directory).exists()


def test_missing_anvil_binary_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(devnet.ANVIL_BINARY_ENV, str(tmp_path / "no-anvil-here"))
    refused = cli("start", "--instance-dir", tmp_path)
    assert refused.exit_code != 0
    assert "npm ci" in refused.output
    assert not devnet.pid_file(devnet.default_directory(tmp_path)).exists()


def test_shell_script_calls_the_cli(tmp_path: Path) -> None:
    status = subprocess.run(
        [PROJECT_ROOT / "hardhat-free-devnet" / "devnet.sh", "status", "--instance-dir", tmp_path],
        capture_output=True, text=True, timeout=60,
    )
    assert status.returncode == 1, status.stderr
    assert "devnet not running" in status.stdout


def test_shell_script_needs_the_project_venv(tmp_path: Path) -> None:
    """Never the system python3, which lacks the dependencies."""
    copy = tmp_path / "hardhat-free-devnet" / "devnet.sh"  # a checkout without .venv
    copy.parent.mkdir()
    copy.write_bytes((PROJECT_ROOT / "hardhat-free-devnet" / "devnet.sh").read_bytes())
    copy.chmod(0o755)
    done = subprocess.run([copy, "start"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "run `make install` first" in done.stderr
    assert done.stdout == ""


# ---------------------------------------------------------------------- the chain itself


def test_standard_legacy_and_eip1559_transactions_are_mined(anvil: AnvilNode) -> None:
    w3 = anvil.w3
    funded = anvil.accounts[2]
    unfunded = Account.create()
    base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
    priority = w3.eth.max_priority_fee
    nonce = w3.eth.get_transaction_count(funded.address)
    common = {"chainId": anvil.chain_id, "to": anvil.accounts[3].address, "value": 1, "gas": 21_000}
    signed = [
        funded.sign_transaction({**common, "nonce": nonce, "gasPrice": w3.eth.gas_price}),
        # the fields web3 and backend/chain/transactions.py fill in by default
        funded.sign_transaction(
            {**common, "nonce": nonce + 1, "maxFeePerGas": 2 * base_fee + priority, "maxPriorityFeePerGas": priority}
        ),
        # free gas: a participant without ether can still transact
        unfunded.sign_transaction({**common, "value": 0, "nonce": 0, "gasPrice": 0}),
    ]
    hashes = [w3.eth.send_raw_transaction(tx.raw_transaction) for tx in signed]
    assert [w3.eth.wait_for_transaction_receipt(h, timeout=10)["status"] for h in hashes] == [1, 1, 1]
    assert w3.eth.get_block("latest")["gasLimit"] == CONFIG.block_gas_limit


def test_a_burst_of_transactions_is_all_mined(anvil: AnvilNode) -> None:
    """200 transfers from 4 senders, submitted concurrently and out of nonce order: anvil's
    automine can leave some of these pending forever; interval mining must not."""
    w3 = anvil.w3
    senders = anvil.accounts[4:8]
    raw = []
    for sender in senders:
        nonce = w3.eth.get_transaction_count(sender.address, "pending")
        common = {"chainId": anvil.chain_id, "to": anvil.accounts[9].address, "value": 1, "gas": 21_000, "gasPrice": 0}
        raw += [sender.sign_transaction({**common, "nonce": nonce + i}).raw_transaction for i in range(50)]
    random.shuffle(raw)
    session = requests.Session()

    def send(tx: bytes) -> str:
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0x" + tx.hex()]}
        return session.post(anvil.rpc_url, json=request, timeout=10).json()["result"]

    with ThreadPoolExecutor(16) as pool:
        hashes = list(pool.map(send, raw))
    deadline = time.monotonic() + 10
    pending = set(hashes)
    while pending and time.monotonic() < deadline:
        pending = {h for h in pending if w3.eth.get_transaction(h)["blockNumber"] is None}
        time.sleep(0.1)
    assert not pending, f"{len(pending)} of 200 transactions still pending after 10 s"


def test_dev_accounts_are_anvils_accounts(anvil: AnvilNode) -> None:
    # eth_accounts is fine in a test: it only checks the derivation path against anvil's.
    assert [account.address for account in anvil.accounts] == anvil.w3.eth.accounts


# ---------------------------------------------------------------------- connection.py


def test_rpc_url_defaults_to_the_devnet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETH_RPC_URL", raising=False)
    assert rpc_url() == f"http://{CONFIG.host}:{CONFIG.port}"
    monkeypatch.setenv("ETH_RPC_URL", "http://besu.example:8545")
    assert rpc_url() == "http://besu.example:8545"


def test_connect_names_the_url_when_nothing_answers(unused_port: Callable[[], int]) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(ChainUnreachable, match=re.escape(url)):
        connect(url, timeout=1)


def test_connect_never_echoes_credentials_in_the_url(unused_port: Callable[[], int]) -> None:
    port = unused_port()
    url = f"http://alice:s3cret@127.0.0.1:{port}/v3/pathk3y?apikey=k3y#frag"
    with pytest.raises(ChainUnreachable) as raised:
        connect(url, timeout=1)
    message = str(raised.value)
    assert f"http://127.0.0.1:{port} " in message
    assert not any(secret in message for secret in ("alice", "s3cret", "pathk3y", "apikey", "k3y", "frag"))
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # requests' message quotes the query


def test_deployer_is_the_devnet_account_only_on_the_devnet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPLOYER_PRIVATE_KEY", raising=False)
    devnet_chain = SimpleNamespace(eth=SimpleNamespace(chain_id=CONFIG.chain_id))
    other_chain = SimpleNamespace(eth=SimpleNamespace(chain_id=2026))
    assert deployer_account(devnet_chain).address == dev_accounts(1)[0].address
    with pytest.raises(DeployerKeyError, match="DEPLOYER_PRIVATE_KEY"):
        deployer_account(other_chain)

    own = Account.create()
    monkeypatch.setenv("DEPLOYER_PRIVATE_KEY", own.key.hex())
    assert deployer_account(other_chain).address == own.address

    broken = "0x" + "zz" * 32
    monkeypatch.setenv("DEPLOYER_PRIVATE_KEY", broken)
    with pytest.raises(DeployerKeyError) as raised:
        deployer_account(other_chain)
    assert broken not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


# ---------------------------------------------------------------------- portability rules

_SCANNED = ("backend", "workers", "bench")
# Methods only anvil / Hardhat / Ganache answer (anvil_mine, evm_snapshot, hardhat_impersonate...).
_DEV_NODE_METHOD = re.compile(r"""["'](anvil|evm|hardhat)_[A-Za-z]+["']""")
# web3's w3.testing.* sends evm_* methods.
_WEB3_TESTING = re.compile(r"\.testing\.[A-Za-z_]+\(")
# Names that match the pattern but are not RPC methods.
_NOT_RPC = {'"evm_version"', "'evm_version'"}
# Node-side signing: Besu has no eth_sendTransaction or eth_accounts keys, so anything that asks
# the node to sign (contract.functions.f().transact(), w3.eth.send_transaction) works on anvil
# only. Sign locally and send with eth_sendRawTransaction (backend/chain/transactions.py).
_NODE_SIGNING = re.compile(
    r"""\.transact\(|\.send_transaction\(|\.eth\.accounts\b|["'](eth_sendTransaction|eth_accounts|eth_sign\w*|personal_\w+)["']"""
)


def _scanned_sources() -> Iterator[tuple[Path, int, str]]:
    for top in _SCANNED:
        for path in sorted((PROJECT_ROOT / top).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                yield path.relative_to(PROJECT_ROOT), number, line


def test_backend_workers_and_bench_call_no_dev_node_only_rpc_methods() -> None:
    """So that a Besu or GoQuorum QBFT network can replace the devnet by setting ETH_RPC_URL."""
    offending = [
        f"{path}:{number}: {line.strip()}"
        for path, number, line in _scanned_sources()
        if _WEB3_TESTING.search(line)
        or any(match.group(0) not in _NOT_RPC for match in _DEV_NODE_METHOD.finditer(line))
    ]
    assert not offending, "anvil/Hardhat-only RPC methods outside the devnet and tests:\n" + "\n".join(offending)


def test_backend_workers_and_bench_sign_transactions_locally() -> None:
    offending = [
        f"{path}:{number}: {line.strip()}" for path, number, line in _scanned_sources() if _NODE_SIGNING.search(line)
    ]
    assert not offending, "transactions must be signed locally (eth_sendRawTransaction):\n" + "\n".join(offending)


def test_devnet_hardfork_is_the_contracts_compile_target() -> None:
    """Otherwise the devnet could run bytecode the target network rejects, or the reverse."""
    from backend.chain.compiler import EVM_VERSION

    assert CONFIG.hardfork == EVM_VERSION


def test_sample_besu_genesis_is_a_four_validator_qbft_free_gas_chain() -> None:
    samples = PROJECT_ROOT / "docs" / "besu-qbft"
    genesis = json.loads((samples / "genesis.json").read_text())
    config = genesis["config"]
    assert set(config["qbft"]) >= {"blockperiodseconds", "epochlength", "requesttimeoutseconds"}
    assert config["zeroBaseFee"] is True
    assert config["chainId"] != CONFIG.chain_id  # so the devnet's public keys never deploy there
    assert f"{CONFIG.hardfork}Time" in config
    assert int(genesis["gasLimit"], 16) >= CONFIG.block_gas_limit

    vanity, validators, votes, round_number, seals = rlp.decode(bytes.fromhex(genesis["extraData"][2:]))
    assert vanity == bytes(32)
    assert len(validators) == 4 and all(len(address) == 20 for address in validators)
    assert (votes, round_number, seals) == ([], b"", [])

    # generate-blockchain-config's input is the same genesis, minus the extraData it computes.
    generator_input = json.loads((samples / "qbftConfigFile.json").read_text())
    assert generator_input["genesis"] == {key: value for key, value in genesis.items() if key != "extraData"}
    assert generator_input["blockchain"]["nodes"]["count"] == 4
