"""Registration throughput on a private anvil: invoices per second through signed batch
transactions, next to one transaction per invoice, measured in the same run.

    python -m bench.register                      # 10,000 invoices in batches of 100, 1,000 singles
    python -m bench.register --count 2000 --batch-size 50 --single-count 500 --json

Every transaction is built and signed before the clock starts (fields built once per sender,
nonces counted locally, one gas estimate with headroom per kind of transaction). The clock runs
from the first eth_sendRawTransaction to the last receipt: each supplier's transactions go out
in nonce order on its own keep-alive connection (a thread per supplier, JSON-RPC batch
requests), then the last transaction of every supplier is polled for its receipt; nonces are
sequential, so those receipts mean every earlier one is in a block too. Afterwards every receipt
is checked for status 1 and the registry's balances for the number of invoices.

Each round (--rounds, default 3; rates are medians) runs on a fresh anvil with a fresh
deployment: anvil's cost per block grows as its chain fills up, which would otherwise penalise
whichever run comes later, and the one-transaction-per-invoice run needs far more blocks.

Targets (printed, never asserted): >= 1,000 invoices/s batched and >= 5x the single rate.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from web3 import Web3

from backend.chain import devnet, transactions
from backend.chain.connection import dev_accounts
from backend.chain.client import BUYER, SUPPLIER
from bench.common import Chain, Platform, Rpc, private_chain

BATCH_RATE_TARGET = 1_000
RATIO_TARGET = 5
# Raw transactions per JSON-RPC batch request, and a cap on its size (a batch of 100 invoices
# is ~23 kB of calldata, ~46 kB as hex).
SEND_CHUNK_TXS = 50
SEND_CHUNK_BYTES = 1_000_000
RECEIPT_CHUNK = 500
POLL_SECONDS = 0.002
# How long the last receipts may take once everything is sent; a node that drops a transaction
# never mines it, and the poll would otherwise wait forever.
RECEIPT_TIMEOUT_SECONDS = 120.0


@dataclass
class Run:
    invoices: int
    transactions: int
    seconds: float
    blocks: int
    gas_used: int

    @property
    def rate(self) -> float:
        return self.invoices / self.seconds


def _encoder(p: Platform, name: str) -> Callable[[Any], str]:
    """Call data for the registry's one-argument function `name`, encoded with eth-abi
    directly (web3's encode_abi re-validates the ABI on every call: slow for 10,000 invoices)."""
    abi = next(item for item in p.registry.abi if item.get("type") == "function" and item["name"] == name)
    selector = function_abi_to_4byte_selector(abi)
    types = get_abi_input_types(abi)
    return lambda argument: "0x" + (selector + abi_encode(types, [argument])).hex()


def _signed_transactions(
    p: Platform,
    suppliers: list[LocalAccount],
    nonces: list[int],
    buyer: LocalAccount,
    count: int,
    batch_size: int | None,
) -> list[list[tuple[str, str, int]]]:
    """Per supplier, its signed transactions in nonce order: (raw hex, hash hex, invoices).

    `batch_size` None: one register() per invoice; otherwise registerBatch() of that many.
    `nonces` are the suppliers' next nonces, advanced here for the transactions signed.
    """
    w3 = p.w3
    now = p.now()
    size = batch_size or 1
    groups = [
        [p.registration(buyer, now=now) for _ in range(min(size, count - start))] for start in range(0, count, size)
    ]
    encode = _encoder(p, "registerBatch" if batch_size else "register")
    calldata = [encode(group if batch_size else group[0]) for group in groups]
    chain_id = w3.eth.chain_id
    fees = transactions.fee_fields(w3)
    # One estimate for the largest transaction (the first), from a supplier that may hold
    # nothing yet (its first receivable costs the most), with the usual headroom.
    probe = {"from": suppliers[0].address, "to": p.registry.address, "data": calldata[0], **fees}
    gas_limit = int(w3.eth.estimate_gas(probe) * transactions.GAS_HEADROOM)
    per_supplier: list[list[tuple[str, str, int]]] = [[] for _ in suppliers]
    for index, (group, data) in enumerate(zip(groups, calldata)):
        which = index % len(suppliers)
        fields = {
            "to": p.registry.address,
            "data": data,
            "value": 0,
            "nonce": nonces[which],
            "gas": gas_limit,
            "chainId": chain_id,
            **fees,
        }
        nonces[which] += 1
        signed = suppliers[which].sign_transaction(fields)
        raw, tx_hash = bytes(signed.raw_transaction).hex(), bytes(signed.hash).hex()
        per_supplier[which].append(("0x" + raw, "0x" + tx_hash, len(group)))
    return per_supplier


def _send_all(rpc_url: str, txs: list[tuple[str, str, int]], errors: list[BaseException]) -> None:
    rpc = Rpc(rpc_url)
    try:
        chunk: list[tuple[str, list[Any]]] = []
        size = 0
        for raw, _, _ in txs:
            if chunk and (len(chunk) >= SEND_CHUNK_TXS or size + len(raw) > SEND_CHUNK_BYTES):
                rpc.batch(chunk)
                chunk, size = [], 0
            chunk.append(("eth_sendRawTransaction", [raw]))
            size += len(raw)
        if chunk:
            rpc.batch(chunk)
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)
    finally:
        rpc.close()


def _missing_receipts(rpc: Rpc, hashes: list[str]) -> list[str]:
    """The transactions among `hashes` that have no receipt (yet)."""
    missing = []
    for start in range(0, len(hashes), RECEIPT_CHUNK):
        chunk = hashes[start:start + RECEIPT_CHUNK]
        receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in chunk])
        missing += [h for h, receipt in zip(chunk, receipts) if receipt is None]
    return missing


def _timed_run(chain: Chain, per_supplier: list[list[tuple[str, str, int]]], timeout: float) -> Run:
    rpc = Rpc(chain.rpc_url)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_send_all, args=(chain.rpc_url, txs, errors)) for txs in per_supplier if txs]
    last_hashes = [txs[-1][1] for txs in per_supplier if txs]

    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"sending failed: {errors[0]}") from errors[0]
    hashes = [h for txs in per_supplier for _, h, _ in txs]
    deadline = time.perf_counter() + timeout
    pending = list(last_hashes)
    while pending:
        receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in pending])
        pending = [h for h, receipt in zip(pending, receipts) if receipt is None]
        if pending and time.perf_counter() > deadline and (missing := _missing_receipts(rpc, hashes)):
            raise TimeoutError(
                f"{len(missing)} of {len(hashes)} transactions still have no receipt {timeout:g}s after the "
                f"last was sent (dropped by the node?), e.g. {missing[0]}; see --timeout"
            )
        if pending:
            time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - started

    # Untimed: every receipt, not just the last ones.
    blocks: set[str] = set()
    gas_used = 0
    for start in range(0, len(hashes), RECEIPT_CHUNK):
        chunk = hashes[start:start + RECEIPT_CHUNK]
        for h, receipt in zip(chunk, rpc.batch([("eth_getTransactionReceipt", [h]) for h in chunk])):
            if receipt is None or int(receipt["status"], 16) != 1:
                raise RuntimeError(f"transaction {h} failed or is missing: {receipt}")
            blocks.add(receipt["blockNumber"])
            gas_used += int(receipt["gasUsed"], 16)
    rpc.close()
    invoices = sum(n for txs in per_supplier for _, _, n in txs)
    return Run(invoices=invoices, transactions=len(hashes), seconds=seconds, blocks=len(blocks), gas_used=gas_used)


def _round(
    count: int, batch_size: int, single_count: int, supplier_count: int, timeout: float
) -> tuple[Run, Run, float, int]:
    """One round on a fresh chain: the single-invoice run, then the batched run, so both
    meet an almost empty registry (anvil's cost per block grows as its chain fills up).
    Returns both runs, the (untimed) signing seconds and the receivables the registry holds."""
    with private_chain() as chain:
        w3: Web3 = chain.w3
        accounts = dev_accounts(2 + supplier_count)
        operator, buyer, suppliers = accounts[0], accounts[1], accounts[2:]
        p = Platform.deploy(w3, operator)
        p.onboard(buyer, BUYER)
        for supplier in suppliers:
            p.onboard(supplier, SUPPLIER)

        nonces = [w3.eth.get_transaction_count(s.address, "pending") for s in suppliers]
        prepared = time.perf_counter()
        single_txs = _signed_transactions(p, suppliers, nonces, buyer, single_count, None)
        batch_txs = _signed_transactions(p, suppliers, nonces, buyer, count, batch_size)
        signing = time.perf_counter() - prepared
        single = _timed_run(chain, single_txs, timeout)
        batch = _timed_run(chain, batch_txs, timeout)

        held = sum(p.registry.functions.balanceOf(s.address).call() for s in suppliers)
        if held != single.invoices + batch.invoices:
            raise RuntimeError(
                f"the registry holds {held} receivables of the suppliers, expected {single.invoices + batch.invoices}"
            )
        return single, batch, signing, held


def measure(
    count: int,
    batch_size: int,
    single_count: int,
    supplier_count: int,
    rounds: int,
    timeout: float = RECEIPT_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    singles: list[Run] = []
    batches: list[Run] = []
    signing = 0.0
    held = 0
    for _ in range(rounds):
        single, batch, seconds, receivables = _round(count, batch_size, single_count, supplier_count, timeout)
        singles.append(single)
        batches.append(batch)
        signing += seconds
        held += receivables
    config = devnet.load_config()
    batch_rate = statistics.median(run.rate for run in batches)
    single_rate = statistics.median(run.rate for run in singles)
    return {
        "batch_invoices_per_s": round(batch_rate, 1),
        "single_invoices_per_s": round(single_rate, 1),
        "ratio": round(batch_rate / single_rate, 2),
        "rounds": rounds,
        "batch_size": batch_size,
        "batch_invoices": count,
        "batch_transactions": batches[0].transactions,
        "batch_rates": [round(run.rate, 1) for run in batches],
        "batch_seconds": [round(run.seconds, 3) for run in batches],
        "batch_blocks": [run.blocks for run in batches],
        "batch_gas_per_invoice": round(sum(r.gas_used for r in batches) / sum(r.invoices for r in batches)),
        "single_invoices": single_count,
        "single_rates": [round(run.rate, 1) for run in singles],
        "single_seconds": [round(run.seconds, 3) for run in singles],
        "single_blocks": [run.blocks for run in singles],
        "single_gas_per_invoice": round(sum(r.gas_used for r in singles) / sum(r.invoices for r in singles)),
        "signing_seconds": round(signing, 2),
        "suppliers": supplier_count,
        "registry_receivables": held,
        "block_gas_limit": config.block_gas_limit,
        "mining": _mining(config),
    }


def _mining(config: devnet.DevnetConfig) -> str:
    interval = f"{config.block_time_seconds}s blocks" if config.block_time_seconds else None
    if config.mixed_mining and interval:
        return f"mixed (instant + {interval})"
    return f"interval ({interval})" if interval else "instant"


def print_report(r: dict[str, Any]) -> None:
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    batch_ok = "met" if r["batch_invoices_per_s"] >= BATCH_RATE_TARGET else "MISSED"
    ratio_ok = "met" if r["ratio"] >= RATIO_TARGET else "MISSED"
    print(f"Anchorline registration throughput (private anvil, {today})")
    print(
        f"anvil as in hardhat-free-devnet/devnet.json: {r['mining']} mining, "
        f"block gas limit {r['block_gas_limit']:,}; {r['suppliers']} suppliers sending in parallel"
    )
    print("Timed from the first eth_sendRawTransaction to the last receipt; signing is untimed.")
    print(
        f"{r['rounds']} round(s), each on a fresh chain: {r['single_invoices']:,} single-invoice transactions, "
        f"then {r['batch_invoices']:,} invoices in batches of {r['batch_size']}; rates are medians.\n"
    )
    print(f"{'round':<8}{'mode':<22}{'invoices':>9}{'txs':>7}{'blocks':>8}{'seconds':>9}{'invoices/s':>12}")
    for i in range(r["rounds"]):
        print(
            f"{i + 1:<8}{'one tx per invoice':<22}{r['single_invoices']:>9,}{r['single_invoices']:>7,}"
            f"{r['single_blocks'][i]:>8,}{r['single_seconds'][i]:>9.3f}{r['single_rates'][i]:>12,.0f}"
        )
        print(
            f"{'':<8}{'batches of ' + str(r['batch_size']):<22}{r['batch_invoices']:>9,}{r['batch_transactions']:>7,}"
            f"{r['batch_blocks'][i]:>8,}{r['batch_seconds'][i]:>9.3f}{r['batch_rates'][i]:>12,.0f}"
        )
    print()
    print(
        f"batched:  {r['batch_invoices_per_s']:>8,.0f} invoices/s (median; target >= {BATCH_RATE_TARGET:,}): {batch_ok}"
    )
    print(f"single:   {r['single_invoices_per_s']:>8,.0f} invoices/s (median)")
    print(f"ratio:    {r['ratio']:>8.1f}x (target >= {RATIO_TARGET}x): {ratio_ok}")
    print(
        f"gas per invoice: {r['batch_gas_per_invoice']:,} batched, {r['single_gas_per_invoice']:,} single; "
        "all receipts status 1;"
    )
    print(f"every round's registry holds all its invoices ({r['registry_receivables']:,} in all)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.register", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--count", type=int, default=10_000, help="invoices registered in batches per round (default 10,000)"
    )
    parser.add_argument("--batch-size", type=int, default=100, help="invoices per batch transaction (default 100)")
    parser.add_argument(
        "--single-count", type=int, default=1_000, help="invoices registered one per transaction per round (default 1,000)"
    )
    parser.add_argument("--suppliers", type=int, default=4, help="suppliers sending in parallel (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds to take the median of (default 3)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=RECEIPT_TIMEOUT_SECONDS,
        help=f"seconds to wait for the last receipts once all is sent (default {RECEIPT_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    args = parser.parse_args(argv)
    for name in ("count", "batch_size", "single_count", "suppliers", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.timeout > 0:
        parser.error("--timeout must be positive")
    if args.suppliers > 8:
        parser.error("--suppliers is at most 8 (the devnet funds 10 accounts: operator, buyer, suppliers)")
    result = measure(args.count, args.batch_size, args.single_count, args.suppliers, args.rounds, args.timeout)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
