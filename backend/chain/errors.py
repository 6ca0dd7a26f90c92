"""Turning revert data into the name of the custom error that caused it.

Every Anchorline contract reverts with a named custom error (`NotConfirmed(uint256,uint8)`),
and an error raised by one contract can surface from another one's call (the participant
registry's `EnforcedPause` through a Financing call, say). So the decoder knows the errors of
every artifact, plus Solidity's built-in `Error(string)` and `Panic(uint256)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector

from backend.chain.compiler import build_contracts

_BUILTIN = {"Error": ["string"], "Panic": ["uint256"]}


@dataclass(frozen=True)
class DecodedError:
    name: str
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.args))})"


def _abi_type(param: dict[str, Any]) -> str:
    """Canonical ABI type of one input, tuples spelled out (for selectors and decoding)."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in param["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def error_table(abis: list[list[dict[str, Any]]]) -> dict[bytes, tuple[str, list[str]]]:
    """selector -> (error name, input types) for every error in the given ABIs."""
    table: dict[bytes, tuple[str, list[str]]] = {}
    entries = [{"name": n, "inputs": [{"type": t} for t in types]} for n, types in _BUILTIN.items()]
    for abi in abis:
        entries.extend(item for item in abi if item.get("type") == "error")
    for entry in entries:
        types = [_abi_type(param) for param in entry["inputs"]]
        selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
        table[selector] = (entry["name"], types)
    return table


@lru_cache(maxsize=1)
def _project_errors() -> dict[bytes, tuple[str, list[str]]]:
    return error_table([artifact["abi"] for artifact in build_contracts().artifacts.values()])


def decode_revert(data: bytes | str | None) -> DecodedError | None:
    """The custom error encoded in `data` (revert return data: bytes or 0x-hex), or None if
    it is empty, not revert data at all (a node's error message), unknown or malformed."""
    if isinstance(data, str):
        if not data.startswith("0x"):
            return None
        try:
            data = bytes.fromhex(data[2:])
        except ValueError:
            return None
    if not data or len(data) < 4:
        return None
    known = _project_errors().get(data[:4])
    if known is None:
        return None
    name, types = known
    try:
        return DecodedError(name, tuple(decode(types, data[4:])))
    except DecodingError:
        return None
