"""The local development chain: one anvil process per devnet directory.

`anchorline devnet start|stop|status` (backend/commands/devnet.py) and the test fixture
(tests/conftest.py) both go through this module, so the tests exercise what developers run.
The chain's parameters live in hardhat-free-devnet/devnet.json and the reasons for each of them
in hardhat-free-devnet/README.md.

This module only manages the process. Everything that talks to the chain goes through
backend/chain/connection.py over standard Ethereum JSON-RPC, which is why a Besu or GoQuorum
network can take the devnet's place (docs/ledger-networks.md).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from web3 import HTTPProvider, Web3

from backend import processes
from backend.paths import INSTANCE_DIR, NODE_MODULES, PROJECT_ROOT
# free_port and the stop results are part of this module's interface (the commands, the tests and the
# benchmarks use them through it).
from backend.processes import (
    StopOutcome,
    StopResult,
    flag,
    free_port,
    listening,
    live_process_args,
    locked,
    signal_and_wait,
)

CONFIG_FILE = PROJECT_ROOT / "hardhat-free-devnet" / "devnet.json"
ANVIL_BINARY_ENV = "ANVIL_BINARY"
DEFAULT_ANVIL_BINARY = NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
# Loading a large state file takes a few seconds; a healthy empty chain answers within 0.1 s.
START_TIMEOUT_SECONDS = 30.0
# anvil writes its whole state file on SIGTERM before it exits, which grows with the chain.
STOP_TIMEOUT_SECONDS = 30.0
# anvil prints the dev accounts' private keys ("(0) 0xac09...") and the mnemonic at start-up;
# they stay in the local log file but are never echoed by an error message.
_SECRET_LINE = re.compile(r"^\s*(\(\d+\)\s+0x[0-9a-fA-F]{64}|Mnemonic:)")
# What anvil 1.7 prints when the --state file is not valid JSON.
_STATE_UNREADABLE = "for '--state <PATH>': failed to parse json file"


class DevnetError(RuntimeError):
    """The devnet could not be started, stopped or inspected; the message says why."""


class AnvilNotFound(DevnetError):
    """The anvil binary is not installed (or ANVIL_BINARY points nowhere)."""


@dataclass(frozen=True)
class DevnetConfig:
    """hardhat-free-devnet/devnet.json; its README explains every value."""

    chain_id: int
    host: str
    port: int
    mnemonic: str
    derivation_path: str
    accounts: int
    balance_ether: int
    hardfork: str
    block_time_seconds: float
    mixed_mining: bool
    block_gas_limit: int
    free_gas: bool
    history_states: int
    state_interval_seconds: int

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def load_config(path: Path = CONFIG_FILE) -> DevnetConfig:
    raw = json.loads(path.read_text())
    return DevnetConfig(
        chain_id=int(raw["chainId"]),
        host=raw["host"],
        port=int(raw["port"]),
        mnemonic=raw["mnemonic"],
        derivation_path=raw["derivationPath"],
        accounts=int(raw["accounts"]),
        balance_ether=int(raw["balanceEther"]),
        hardfork=raw["hardfork"],
        block_time_seconds=float(raw["blockTimeSeconds"]),
        mixed_mining=bool(raw["mixedMining"]),
        block_gas_limit=int(raw["blockGasLimit"]),
        free_gas=bool(raw["freeGas"]),
        history_states=int(raw["historyStates"]),
        state_interval_seconds=int(raw["stateIntervalSeconds"]),
    )


def default_directory(instance_dir: Path | None = None) -> Path:
    """Where the devnet keeps its pid, log and state: <instance>/devnet."""
    return (instance_dir or INSTANCE_DIR) / "devnet"


def pid_file(directory: Path) -> Path:
    return directory / "anvil.pid"


def log_file(directory: Path) -> Path:
    return directory / "anvil.log"


def state_file(directory: Path) -> Path:
    return directory / "state.json"


def anvil_binary() -> Path:
    """The anvil executable: $ANVIL_BINARY, else the one `npm ci` installs in node_modules."""
    override = os.environ.get(ANVIL_BINARY_ENV)
    binary = Path(override) if override else DEFAULT_ANVIL_BINARY
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        source = f"{ANVIL_BINARY_ENV}={override}" if override else "node_modules"
        raise AnvilNotFound(
            f"anvil not found at {binary} (from {source}); run `make install` (or `npm ci`) "
            f"to install it, or point {ANVIL_BINARY_ENV} at an anvil executable"
        )
    return binary


def anvil_command(binary: Path, config: DevnetConfig, state: Path, port: int) -> list[str]:
    """The anvil command line for `config`, serving on `port` and persisting to `state`."""
    command = [
        str(binary),
        "--host", config.host,
        "--port", str(port),
        "--chain-id", str(config.chain_id),
        "--mnemonic", config.mnemonic,
        "--derivation-path", config.derivation_path,
        "--accounts", str(config.accounts),
        "--balance", str(config.balance_ether),
        "--hardfork", config.hardfork,
        # Interval mining; automine only on top of it when mixedMining is set (see the README).
        "--block-time", f"{config.block_time_seconds:g}",
        "--gas-limit", str(config.block_gas_limit),
        # Keep the state of the last N blocks in memory and none on disk; without this anvil
        # writes every block's state under ~/.foundry/anvil/tmp, without bound.
        "--prune-history", str(config.history_states),
        # --state loads the file if it exists and writes it on SIGTERM/SIGINT; the interval
        # bounds what a crash or SIGKILL loses.
        "--state", str(state),
        "--state-interval", str(config.state_interval_seconds),
        "--color", "never",
    ]
    if config.mixed_mining:
        command.append("--mixed-mining")
    if config.free_gas:
        # Base fee 0 (stays 0 under EIP-1559) and eth_gasPrice 0, like Besu's zeroBaseFee with
        # min-gas-price=0: zero-priced transactions from unfunded accounts are accepted, and
        # transactions that do offer a fee still work.
        command += ["--base-fee", "0", "--disable-min-priority-fee"]
    return command


@dataclass(frozen=True)
class RunningDevnet:
    pid: int
    rpc_url: str
    directory: Path


def running(directory: Path) -> RunningDevnet | None:
    """The devnet anvil serving `directory`, or None.

    A pid file alone proves nothing (the process may have died and its pid been reused), so
    the process must also be an anvil whose --state is this directory's state file.
    """
    pid = _read_pid(directory)
    if pid is None:
        return None
    args = live_process_args(pid)
    if args is None or not _serves(args, directory):
        return None
    rpc_url = f"http://{flag(args, '--host')}:{flag(args, '--port')}"
    return RunningDevnet(pid=pid, rpc_url=rpc_url, directory=directory)


def start(
    directory: Path,
    *,
    port: int | None = None,
    config: DevnetConfig | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> tuple[RunningDevnet, bool]:
    """Start anvil in the background for `directory` and wait until its RPC answers.

    Returns the devnet and whether this call started it: if it is already running, nothing is
    done. Raises DevnetError (with the tail of anvil's log) if it does not come up in time; if
    the wait ends any other way (KeyboardInterrupt included), anvil is stopped before re-raising.
    """
    config = config or load_config()
    port = port or config.port
    with locked(directory):
        current = running(directory)
        if current:
            return current, False
        binary = anvil_binary()
        if listening(config.host, port):
            raise DevnetError(
                f"{config.host}:{port} is already in use by another process (not the devnet in "
                f"{directory}); stop it or start the devnet on another port with --port"
            )
        log = log_file(directory)
        if log.exists():
            log.replace(log.with_name(log.name + ".1"))
        with log.open("wb") as log_handle:
            process = subprocess.Popen(
                anvil_command(binary, config, state_file(directory).resolve(), port),
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                # its own session: Ctrl-C in the terminal that started it does not stop it
                start_new_session=True,
            )
        rpc_url = f"http://{config.host}:{port}"
        try:
            pid_file(directory).write_text(f"{process.pid}\n")
            _wait_until_serving(process, rpc_url, config.chain_id, log, timeout)
        except DevnetError as exc:
            pid_file(directory).unlink(missing_ok=True)
            if _STATE_UNREADABLE in log.read_text(errors="replace"):
                # The periodic dump is not atomic: a SIGKILL in the middle of one leaves a
                # truncated file behind.
                raise DevnetError(
                    f"{exc}\nthe state file {state_file(directory)} is damaged; move it away to "
                    f"start a fresh chain"
                ) from None
            raise
        except BaseException:
            # Ctrl-C (anvil has its own session and does not get it) or anything unexpected:
            # never leave an anvil behind that no pid file names.
            _terminate(process)
            pid_file(directory).unlink(missing_ok=True)
            raise
        # Reap anvil if it exits while this process still runs (the test session, `anchorline
        # up`), so it never lingers as a zombie; the thread dies with a short-lived CLI.
        threading.Thread(target=process.wait, daemon=True).start()
        return RunningDevnet(pid=process.pid, rpc_url=rpc_url, directory=directory), True


def stop(directory: Path, *, timeout: float = STOP_TIMEOUT_SECONDS) -> StopResult:
    """Stop the anvil this module started for `directory`, and nothing else.

    SIGTERM makes anvil write its state file before exiting; this waits for the exit so the
    next start loads a complete file. A pid file naming some other process is only removed.
    """
    if not directory.is_dir():
        return StopResult(StopOutcome.NOT_RUNNING, None)
    with locked(directory):
        pid = _read_pid(directory)
        if pid is None:
            return StopResult(StopOutcome.NOT_RUNNING, None)
        args = live_process_args(pid)
        if args is None or not _serves(args, directory):
            pid_file(directory).unlink(missing_ok=True)
            return StopResult(StopOutcome.STALE_PID_FILE, pid)
        if not signal_and_wait(pid, signal.SIGTERM, timeout):
            raise DevnetError(
                f"anvil (pid {pid}) did not exit within {timeout:.0f}s of SIGTERM; its pid "
                f"file is kept so `devnet stop` can be run again"
            )
        pid_file(directory).unlink(missing_ok=True)
        return StopResult(StopOutcome.STOPPED, pid)


@contextmanager
def temporary(config: DevnetConfig | None = None) -> Iterator[RunningDevnet]:
    """A devnet of one's own (a temporary directory, a free port) for tests and benchmarks,
    stopped and deleted when the block exits, whatever happens in it. It never touches the
    developer's devnet on the configured port nor inherits its chain."""
    config = config or load_config()
    with tempfile.TemporaryDirectory(prefix="anchorline-devnet-") as tmp:
        directory = Path(tmp)
        node, _ = start(directory, port=free_port(config.host), config=config)
        try:
            yield node
        finally:
            stop(directory)


def _wait_until_serving(
    process: subprocess.Popen[bytes], rpc_url: str, chain_id: int, log: Path, timeout: float
) -> None:
    # No retries: a refused connection just means "not yet", and the loop polls again.
    probe = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 1}, exception_retry_configuration=None))
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise DevnetError(
                f"anvil exited with status {process.returncode} while starting; {_log_tail(log)}"
            )
        try:
            answered = probe.eth.chain_id
        except requests.exceptions.RequestException:
            answered = None
        if answered is not None:
            if answered != chain_id:
                _terminate(process)
                raise DevnetError(f"anvil at {rpc_url} reports chain id {answered}, expected {chain_id}")
            return
        if time.monotonic() > deadline:
            _terminate(process)
            raise DevnetError(
                f"anvil did not answer eth_chainId at {rpc_url} within {timeout:.0f}s; {_log_tail(log)}"
            )
        time.sleep(0.05)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Stop an anvil that never came up; it has served nothing, so SIGKILL loses nothing."""
    processes.terminate(process, STOP_TIMEOUT_SECONDS)


def _log_tail(log: Path) -> str:
    return processes.log_tail(log, hide=_SECRET_LINE)


def _read_pid(directory: Path) -> int | None:
    return processes.read_pid(pid_file(directory))


def _serves(args: list[str], directory: Path) -> bool:
    """Whether a command line is an anvil persisting to `directory`'s state file."""
    return (
        bool(args)
        and "anvil" in Path(args[0]).name
        and flag(args, "--state") == str(state_file(directory).resolve())
    )
