"""Signing and sending one transaction with a local key, over standard JSON-RPC only.

Used by deployment, the benchmarks and the tests. The workers' outbox (which must store the
signed bytes before it sends them) builds on `build_fields` and `sign` but sends on its own.
"""
from __future__ import annotations

import ast
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import TxParams, TxReceipt

from backend.chain.errors import DecodedError, decode_revert

# Estimates are exact for the state they ran against; a block later the same call can cost a
# little more (a slot another transaction warmed or cleared), so leave room.
GAS_HEADROOM = 1.25


class TransactionReverted(Exception):
    """A transaction (or its gas estimate) reverted; `error` is the decoded custom error."""

    def __init__(self, error: DecodedError | None, detail: str, receipt: TxReceipt | None = None) -> None:
        self.error = error
        self.receipt = receipt
        super().__init__(f"reverted with {error}" if error else f"reverted: {detail}")


_REVERTED = "execution reverted: "


def revert_error(exc: Exception) -> DecodedError | None:
    """The custom error carried by a revert exception, if it is one of ours.

    Nodes hand the revert data back in different places: web3 puts it in `.data` (sometimes
    wrapped in a dict), eth-tester in the first argument, as bytes or in the message.
    """
    data: Any = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if data is None and exc.args:
        data = exc.args[0]
        if isinstance(data, str) and data.startswith(_REVERTED + "b"):
            try:
                data = ast.literal_eval(data[len(_REVERTED):])
            except (ValueError, SyntaxError):
                return None
    return decode_revert(data) if isinstance(data, (str, bytes)) else None


def _reverted(exc: Exception) -> TransactionReverted | None:
    error = revert_error(exc)
    if error is None and not isinstance(exc, (ContractCustomError, ContractLogicError)):
        if "revert" not in str(exc).lower():
            return None
    return TransactionReverted(error, str(exc))


def call(fn: Any) -> Any:
    """Run a web3 contract view call; a revert raises TransactionReverted, as a transaction's
    does, with the decoded custom error (nodes and test chains raise their own types)."""
    try:
        return fn.call()
    except Exception as exc:
        reverted = _reverted(exc)
        if reverted is None:
            raise
        raise reverted from exc


def call_data(fn: Any) -> dict[str, Any]:
    """`to`, `data` and `value` of a web3 contract function or constructor call, built
    locally (web3's own build_transaction would estimate gas and raise a bare revert)."""
    tx = fn.build_transaction({"gas": 1, "gasPrice": 0})
    return {key: tx[key] for key in ("to", "data", "value") if key in tx}


def fee_fields(w3: Web3) -> dict[str, int]:
    """EIP-1559 fees where the chain charges a base fee; the node's gas price (zero on a
    free-gas network such as the devnet or Besu with zeroBaseFee) where it charges none, so
    accounts holding no ether can still transact there."""
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
    if not base_fee:
        return {"gasPrice": w3.eth.gas_price}
    priority = w3.eth.max_priority_fee
    return {"maxFeePerGas": 2 * base_fee + priority, "maxPriorityFeePerGas": priority}


def build_fields(w3: Web3, account: LocalAccount, tx: TxParams, nonce: int | None = None) -> dict[str, Any]:
    """Complete `tx` (to, data, value) with sender, nonce, chain id, fees and a gas limit.

    Raises TransactionReverted when the gas estimate reverts, so a doomed transaction is
    never signed.
    """
    fields: dict[str, Any] = {
        **tx,
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending") if nonce is None else nonce,
        "chainId": w3.eth.chain_id,
    }
    if "gasPrice" not in fields and "maxFeePerGas" not in fields:
        fields.update(fee_fields(w3))
    if "gas" not in fields:
        fields["gas"] = estimate_gas(w3, fields)
    return fields


def estimate_gas(w3: Web3, tx: dict[str, Any]) -> int:
    """A gas limit for `tx` (from, to, data, value; a nonce is not needed): the node's estimate
    with GAS_HEADROOM. Raises TransactionReverted when the estimate reverts."""
    try:
        return int(w3.eth.estimate_gas(tx) * GAS_HEADROOM)
    except Exception as exc:
        reverted = _reverted(exc)
        if reverted is None:
            raise
        raise reverted from exc


def sign(account: LocalAccount, fields: dict[str, Any]) -> bytes:
    """The raw signed transaction bytes."""
    return bytes(account.sign_transaction(fields).raw_transaction)


def send(w3: Web3, account: LocalAccount, tx: Any, *, nonce: int | None = None, timeout: float = 120) -> TxReceipt:
    """Sign `tx` (fields, or a web3 contract call) with `account`, broadcast it, wait for its
    receipt; raise TransactionReverted if it reverted. `nonce` defaults to the sender's next."""
    if not isinstance(tx, dict):
        tx = call_data(tx)
    fields = build_fields(w3, account, tx, nonce)
    tx_hash = w3.eth.send_raw_transaction(sign(account, fields))
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt["status"] != 1:
        raise TransactionReverted(_replay_error(w3, fields, receipt), "status 0", receipt)
    return receipt


def _replay_error(w3: Web3, fields: dict[str, Any], receipt: TxReceipt) -> DecodedError | None:
    """Why a mined transaction reverted: replay it as a call on the state before its block."""
    call = {key: fields[key] for key in ("from", "to", "data", "value", "gas") if key in fields}
    try:
        w3.eth.call(call, receipt["blockNumber"] - 1)
    except Exception as exc:
        return revert_error(exc)
    return None


def mined_revert_error(w3: Web3, receipt: TxReceipt) -> DecodedError | None:
    """Why the mined transaction of `receipt` (status 0) reverted: the transaction as the node
    has it, replayed as a call on the state before its block, and, when that passes (a
    transaction earlier in the same block changed what it depended on), on the state after it."""
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    replay = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"], "gas": tx["gas"]}
    for block in (receipt["blockNumber"] - 1, receipt["blockNumber"]):
        try:
            w3.eth.call(replay, block)
        except Exception as exc:
            error = revert_error(exc)
            if error is not None:
                return error
    return None
