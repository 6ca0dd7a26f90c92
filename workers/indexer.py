"""The event indexer: every Anchorline contract event, stored once and applied to the projections.

`index_once` reads the three contracts' logs from the deployment block on, in block ranges of
INDEXER_BLOCK_RANGE up to the chain height minus CONFIRMATION_DEPTH, with one eth_getLogs per
range for all three addresses. Each range is one database transaction: the decoded events are
stored (`ChainEvent`, unique by chain, transaction hash and log index; an event already stored
is skipped, never applied again), applied to the projections (`workers.projections`), the
hashes of the range's blocks within the reorganisation window are kept (`IndexedBlock`) and the
cursors (`IndexerCursor`, one per contract, moving together) advance. A crash loses at most
the range in progress, which is read again.

Before reading on, the stored block hashes are compared with the chain's. From the first block
that differs, the orphaned events are deleted and the projections folded again from the events
that remain (`projections.reset` + `projections.refold`, without announcing them again); then
the new chain is read. A reorganisation deeper than REORG_WINDOW_BLOCKS raises `ReorgTooDeep`
and changes nothing: the indexer stops rather than guess.

One indexer at a time: a transaction-scoped advisory lock on PostgreSQL; on SQLite, the first
statement of each transaction writes the cursors, which takes the database's single write lock.

`reindex` rebuilds every projection from the chain; it equals incremental indexing exactly.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import requests
from flask import Flask, current_app
from eth_utils import to_checksum_address, to_hex
from hexbytes import HexBytes
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from web3 import Web3
from web3.types import RPCEndpoint
from web3.exceptions import BlockNotFound

from backend.chain import runtime
from backend.chain.client import LedgerClient
from backend.chain.connection import ChainUnreachable
from backend.extensions import db
from backend.models import ChainEvent, ContractName, IndexedBlock, IndexerCursor
from workers import projections
from workers.celery_app import TransientError, worker_task

log = logging.getLogger(__name__)

# The key of PostgreSQL's advisory lock that makes one indexer at a time ("AnchIdx1").
INDEXER_LOCK_KEY = 0x416E636849647831
# Above this, a stored integer argument is a decimal string: JSON readers lose precision there.
JSON_SAFE_INTEGER = 2**53
TASK_NAME = "workers.indexer.index_new_blocks"
INDEX_INTERVAL_SECONDS = 1.0


class ReorgTooDeep(RuntimeError):
    """The chain was reorganised below the reorganisation window: the indexer cannot know what
    to roll back, so it stops. Raise REORG_WINDOW_BLOCKS, or rebuild with `anchorline reindex`."""


class LogQueryFailed(TransientError):
    """The node refused or failed a log query (often: too many results; lower INDEXER_BLOCK_RANGE)."""


class ChainMoved(TransientError):
    """The chain changed while a range was being read (a block hash differed between calls)."""


def json_safe(value: Any) -> Any:
    """An event argument as stored: integers up to 2**53 as numbers, beyond as decimal
    strings; bytes as 0x-hex; addresses checksummed (as web3 decodes them); lists element-wise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -JSON_SAFE_INTEGER <= value <= JSON_SAFE_INTEGER else str(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value



@dataclass(frozen=True)
class EventLayout:
    """Where one event's arguments are in a log: the indexed ones in the topics after the
    first, the others ABI-encoded in the data."""

    contract: ContractName
    name: str
    arguments: tuple[str, ...]  # every argument's name, in the ABI's order
    indexed: tuple[tuple[str, str], ...]  # (name, type)
    data: tuple[tuple[str, str], ...]


class EventDecoder:
    """Decodes the raw JSON-RPC logs of one deployment's contracts by their ABIs, with eth-abi
    directly (web3's log formatting costs more than the rest of indexing together). A log is
    known by its address and first topic (the ERC-20 and ERC-721 `Transfer` share a topic)."""

    def __init__(self, ledger: LedgerClient) -> None:
        self.codec = ledger.w3.codec
        self.addresses = [ledger.deployment.addresses[name] for name in ContractName]
        self._layouts: dict[tuple[str, str], EventLayout] = {}
        contracts = {ContractName.SETTLEMENT_TOKEN: ledger.token, ContractName.RECEIVABLE_REGISTRY: ledger.registry,
                     ContractName.FINANCING: ledger.financing}
        for name, contract in contracts.items():
            for abi in contract.abi:
                if abi["type"] != "event" or abi.get("anonymous"):
                    continue
                inputs = abi["inputs"]
                signature = f"{abi['name']}({','.join(_abi_type(arg) for arg in inputs)})"
                self._layouts[(contract.address.lower(), to_hex(Web3.keccak(text=signature)))] = EventLayout(
                    contract=name,
                    name=abi["name"],
                    arguments=tuple(arg["name"] for arg in inputs),
                    indexed=tuple((arg["name"], _abi_type(arg)) for arg in inputs if arg["indexed"]),
                    data=tuple((arg["name"], _abi_type(arg)) for arg in inputs if not arg["indexed"]),
                )

    def decode(self, chain_id: int, entry: Mapping[str, Any]) -> dict[str, Any]:
        """The ChainEvent columns of one raw log (as eth_getLogs returns it: hex strings)."""
        topics = entry["topics"]
        layout = self._layouts.get((entry["address"].lower(), topics[0])) if topics else None
        if layout is None:
            raise ValueError(f"log {entry['transactionHash']}:{int(entry['logIndex'], 16)} of {entry['address']} "
                             "is no event of the deployed contracts' ABI (were they built from other sources?)")
        values = {name: self._topic(kind, topic)
                  for (name, kind), topic in zip(layout.indexed, topics[1:], strict=True)}
        if layout.data:
            decoded = self.codec.decode([kind for _, kind in layout.data], bytes.fromhex(entry["data"][2:]))
            values.update((name, _stored(kind, value)) for (name, kind), value in zip(layout.data, decoded))
        return {
            "chain_id": chain_id,
            "tx_hash": entry["transactionHash"],
            "log_index": int(entry["logIndex"], 16),
            "block_number": int(entry["blockNumber"], 16),
            "block_hash": entry["blockHash"],
            "contract": layout.contract,
            "event": layout.name,
            "args": {name: values[name] for name in layout.arguments},
        }

    def _topic(self, kind: str, topic: str) -> Any:
        if kind == "address":
            return _checksummed("0x" + topic[-40:])
        if kind.startswith("uint"):
            return json_safe(int(topic, 16))
        if kind.startswith("bytes") or kind == "string" or kind.endswith("]") or kind.startswith("("):
            # Fixed bytes are the topic itself; dynamic values are indexed as their hash.
            return topic
        return _stored(kind, self.codec.decode([kind], bytes.fromhex(topic[2:]))[0])


def _abi_type(argument: Mapping[str, Any]) -> str:
    """An ABI argument's canonical type (tuples spelled out), as event signatures use it."""
    kind = argument["type"]
    if kind.startswith("tuple"):
        return f"({','.join(_abi_type(part) for part in argument['components'])}){kind[len('tuple'):]}"
    return kind


@lru_cache(maxsize=65_536)
def _checksummed(address: str) -> str:
    """Checksumming hashes the address; the same few participants recur in every range."""
    return to_checksum_address(address)


def _stored(kind: str, value: Any) -> Any:
    """A decoded value as stored: addresses checksummed (eth-abi gives them lowercase)."""
    if kind == "address":
        return _checksummed(value)
    if kind.startswith("address["):
        return [_checksummed(item) for item in value]
    return json_safe(value)


@dataclass
class Indexer:
    """Indexes one deployment into the database of the current application context."""

    ledger: LedgerClient
    block_range: int
    confirmation_depth: int
    reorg_window: int
    announce: bool = True

    def __post_init__(self) -> None:
        self.w3 = self.ledger.w3
        self.chain_id = self.ledger.deployment.chain_id
        self.decoder = EventDecoder(self.ledger)
        self.block_time: Callable[[str], int] = lru_cache(maxsize=1024)(
            lambda block_hash: self.w3.eth.get_block(HexBytes(block_hash))["timestamp"])

    @classmethod
    def from_config(cls, config: Mapping[str, Any], ledger: LedgerClient | None = None, *,
                    announce: bool = True) -> Indexer:
        for name in ("INDEXER_BLOCK_RANGE", "REORG_WINDOW_BLOCKS"):
            if config[name] < 1:
                raise ValueError(f"{name} must be at least 1, not {config[name]}")
        if config["CONFIRMATION_DEPTH"] < 0:
            raise ValueError(f"CONFIRMATION_DEPTH cannot be negative, not {config['CONFIRMATION_DEPTH']}")
        return cls(ledger or runtime.ledger(config), config["INDEXER_BLOCK_RANGE"], config["CONFIRMATION_DEPTH"],
                   config["REORG_WINDOW_BLOCKS"], announce)

    # ------------------------------------------------------------------ reading on
    def run(self, until: int | None = None) -> int:
        """Indexes up to the confirmed height (or block `until`, if lower), one committed range
        at a time; returns how many events were stored. Returns early if another indexer holds
        the lock."""
        stored = 0
        target = self.w3.eth.block_number - self.confirmation_depth
        if until is not None:
            target = min(target, until)
        try:
            while True:
                if not self._claim():
                    db.session.rollback()
                    return stored
                self._roll_back_reorganisation()
                start = self.cursor() + 1
                if start > target:
                    db.session.commit()
                    return stored
                stored += self._index_range(start, min(start + self.block_range - 1, target))
                db.session.commit()
        except BaseException:
            db.session.rollback()
            raise

    def cursor(self) -> int:
        """The last block indexed (the block before the deployment's, before any)."""
        blocks = db.session.scalars(select(IndexerCursor.block_number).where(IndexerCursor.chain_id == self.chain_id))
        return min(blocks, default=self.ledger.deployment.deploy_block - 1)

    def _claim(self) -> bool:
        """Takes the one-indexer-at-a-time lock for this transaction; False if another has it."""
        if db.session.get_bind().dialect.name == "postgresql":
            return bool(db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": INDEXER_LOCK_KEY}))
        db.session.execute(update(IndexerCursor).where(IndexerCursor.chain_id == self.chain_id)
                           .values(block_number=IndexerCursor.block_number))
        return True

    def _index_range(self, start: int, end: int) -> int:
        hashes, first_parent = self._block_hashes(max(start, end - self.reorg_window + 1), end)
        self._require_continuity(min(hashes), first_parent)
        rows = [self.decoder.decode(self.chain_id, entry) for entry in self._get_logs(start, end)]
        for row in rows:
            if hashes.setdefault(row["block_number"], row["block_hash"]) != row["block_hash"]:
                raise ChainMoved(f"block {row['block_number']} changed while blocks {start}-{end} were read")
        known = {(tx_hash, log_index) for tx_hash, log_index in db.session.execute(
            select(ChainEvent.tx_hash, ChainEvent.log_index)
            .where(ChainEvent.chain_id == self.chain_id, ChainEvent.block_number.between(start, end)))}
        rows = [row for row in rows if (row["tx_hash"], row["log_index"]) not in known]
        if rows:
            db.session.execute(insert(ChainEvent), rows)
            events = [ChainEvent(**row) for row in rows]
            view = projections.Projections(self.chain_id, self.block_time, publish=self.announce)
            view.load(events)
            for event in events:
                view.apply(event)
        self._keep_block_hashes(hashes, end)
        self._move_cursors(end, hashes[end])
        log.debug("indexed blocks %d-%d of chain %d: %d new events", start, end, self.chain_id, len(rows))
        return len(rows)

    def _get_logs(self, start: int, end: int) -> list[dict[str, Any]]:
        """The three contracts' logs of blocks `start` to `end`, one eth_getLogs, unformatted."""
        response = self.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [
            {"fromBlock": hex(start), "toBlock": hex(end), "address": self.decoder.addresses}])
        if "error" in response:
            raise LogQueryFailed(f"eth_getLogs over blocks {start}-{end} failed: {response['error']}")
        return [entry for entry in response["result"] if not entry.get("removed")]

    def _block_hashes(self, first: int, last: int) -> tuple[dict[int, str], str]:
        """The hashes of blocks `first` to `last` (`first` <= `last`), checked to form one chain
        (each block's parent the block before it; a reorganisation while they were read raises
        ChainMoved), and the hash of the parent of `first`."""
        blocks = [self.w3.eth.get_block(number) for number in range(first, last + 1)]
        for parent, child in zip(blocks, blocks[1:]):
            if child["parentHash"] != parent["hash"]:
                raise ChainMoved(f"blocks {parent['number']} and {child['number']} are not on one chain: "
                                 "it moved while they were read")
        return {block["number"]: to_hex(block["hash"]) for block in blocks}, to_hex(blocks[0]["parentHash"])

    def _require_continuity(self, first: int, first_parent: str) -> None:
        """The range must continue the chain the indexer last read: the parent of its first
        block read is the stored hash of the block before. Otherwise the chain was reorganised
        between the reorganisation check and this read, and the next pass rolls it back."""
        stored = db.session.scalar(select(IndexedBlock.block_hash).where(
            IndexedBlock.chain_id == self.chain_id, IndexedBlock.block_number == first - 1))
        if stored is not None and stored != first_parent:
            raise ChainMoved(f"block {first} does not follow the indexed block {first - 1}: the chain was "
                             "reorganised while it was read")

    def _keep_block_hashes(self, hashes: dict[int, str], end: int) -> None:
        """Stores the hashes of the blocks within the reorganisation window below `end`."""
        lowest = end - self.reorg_window + 1
        db.session.execute(delete(IndexedBlock).where(
            IndexedBlock.chain_id == self.chain_id,
            (IndexedBlock.block_number < lowest) | IndexedBlock.block_number.in_(sorted(hashes)),
        ))
        db.session.execute(insert(IndexedBlock), [
            {"chain_id": self.chain_id, "block_number": number, "block_hash": block_hash}
            for number, block_hash in sorted(hashes.items()) if number >= lowest
        ])

    def _move_cursors(self, block_number: int, block_hash: str) -> None:
        cursors = {cursor.contract: cursor for cursor in db.session.scalars(
            select(IndexerCursor).where(IndexerCursor.chain_id == self.chain_id))}
        for contract in ContractName:
            cursor = cursors.get(contract)
            if cursor is None:
                db.session.add(IndexerCursor(chain_id=self.chain_id, contract=contract, block_number=block_number,
                                             block_hash=block_hash))
            else:
                cursor.block_number, cursor.block_hash = block_number, block_hash

    # ------------------------------------------------------------------ reorganisations
    def _roll_back_reorganisation(self) -> None:
        """Compares the stored block hashes with the chain's, newest first; from the first
        block that differs on, undoes what was indexed (see the module docstring)."""
        stored = [(number, block_hash) for number, block_hash in db.session.execute(
            select(IndexedBlock.block_number, IndexedBlock.block_hash)
            .where(IndexedBlock.chain_id == self.chain_id).order_by(IndexedBlock.block_number.desc()))]
        if not stored or self._chain_hash(stored[0][0]) == stored[0][1]:
            return
        common = next(((number, block_hash) for number, block_hash in stored[1:]
                       if self._chain_hash(number) == block_hash), None)
        if common is None:
            raise ReorgTooDeep(
                f"chain {self.chain_id} was reorganised below block {stored[-1][0]}, deeper than the window of "
                f"{self.reorg_window} blocks the indexer keeps; it stops rather than guess. Rebuild the projections "
                "with `anchorline reindex`."
            )
        fork, fork_hash = common
        orphaned = db.session.execute(delete(ChainEvent).where(
            ChainEvent.chain_id == self.chain_id, ChainEvent.block_number > fork)).rowcount
        db.session.execute(delete(IndexedBlock).where(
            IndexedBlock.chain_id == self.chain_id, IndexedBlock.block_number > fork))
        self._move_cursors(fork, fork_hash)
        projections.reset()
        projections.refold(self.chain_id, self.block_time)
        log.warning("chain %d was reorganised above block %d: %d orphaned events rolled back",
                    self.chain_id, fork, orphaned)

    def _chain_hash(self, number: int) -> str | None:
        try:
            return to_hex(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    # ------------------------------------------------------------------ reindexing
    def reindex(self) -> int:
        """Resets every projection, forgets every stored event, block and cursor of the chain,
        and indexes from the deployment block. Returns how many events were stored. What was
        indexed before is not announced again; events beyond it (mined while the workers were
        stopped for the reindex) are announced as incremental indexing would have."""
        if not self._claim():
            db.session.rollback()
            raise RuntimeError("another indexer is running; stop the workers before reindexing")
        indexed_before = self.cursor()
        projections.reset()
        for model in (ChainEvent, IndexedBlock, IndexerCursor):
            db.session.execute(delete(model).where(model.chain_id == self.chain_id))
        db.session.commit()
        announce, self.announce = self.announce, False
        try:
            stored = self.run(until=indexed_before)
        finally:
            self.announce = announce
        return stored + self.run()


def _in_app(app: Flask | None, work: Callable[[], Any]) -> Any:
    if app is None:
        return work()
    with app.app_context():
        return work()


def index_once(app: Flask | None = None, *, ledger: LedgerClient | None = None) -> int:
    """Indexes every confirmed block not yet indexed (in `app`'s context, or the current one);
    returns how many events were stored. `ledger`: the deployment to follow (default: the
    one ETH_RPC_URL names, `backend.chain.runtime.ledger`)."""
    return _in_app(app, lambda: Indexer.from_config(current_app.config, ledger).run())


def reindex(app: Flask | None = None, *, ledger: LedgerClient | None = None) -> int:
    """Rebuilds every projection from the chain (see `Indexer.reindex`); what was indexed before
    is not announced to webhooks again."""
    return _in_app(app, lambda: Indexer.from_config(current_app.config, ledger).reindex())


# The beat runs the task every second anyway: a few retries bridge a blip, while unbounded ones
# would pile up a chain of retries per beat for as long as the node is away.
@worker_task(name=TASK_NAME, max_retries=3)
def index_new_blocks() -> None:
    """Indexes what is new on the chain. A node or database briefly away is retried; a
    reorganisation deeper than the window is not: it is logged, and raised on every beat."""
    try:
        index_once()
    except ReorgTooDeep:
        log.critical("the indexer stopped", exc_info=True)
        raise
    except (ChainUnreachable, requests.RequestException, OperationalError, IntegrityError) as exc:
        # IntegrityError: two indexers' first transactions raced on SQLite; the next run wins.
        db.session.rollback()
        raise TransientError(f"indexing failed for now: {exc}") from exc


def periodic_tasks(config: Any) -> dict[str, dict[str, Any]]:
    """Index every second; a beat that finds the last one still running expires unrun."""
    return {
        "index-new-blocks": {
            "task": TASK_NAME,
            "schedule": INDEX_INTERVAL_SECONDS,
            "options": {"expires": INDEX_INTERVAL_SECONDS * 5},
        },
    }


__all__ = ["ChainMoved", "EventDecoder", "LogQueryFailed", "Indexer", "ReorgTooDeep", "index_new_blocks", "index_once",
           "json_safe", "periodic_tasks", "reindex"]
