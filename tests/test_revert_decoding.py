"""Revert data to custom-error names (backend/chain/errors.py, transactions.revert_error): what
every caller relies on to tell a user why the chain refused."""
from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from web3.exceptions import ContractCustomError, ContractLogicError

from backend.chain.errors import decode_revert
from backend.chain.transactions import revert_error

NOT_CONFIRMED = function_signature_to_4byte_selector("NotConfirmed(uint256,uint8)") + encode(["uint256", "uint8"], [7, 1])


def test_decodes_our_custom_errors_from_bytes_and_hex():
    assert str(decode_revert(NOT_CONFIRMED)) == "NotConfirmed(7, 1)"
    assert decode_revert("0x" + NOT_CONFIRMED.hex()).name == "NotConfirmed"
    panic = function_signature_to_4byte_selector("Panic(uint256)") + encode(["uint256"], [0x11])
    assert decode_revert(panic).args == (0x11,)


@pytest.mark.parametrize(
    "data",
    [None, b"", b"\x01\x02", "insufficient funds for gas", "0xzz", "0x12345678", NOT_CONFIRMED[:20]],
    ids=["none", "empty", "short", "node message", "bad hex", "unknown selector", "truncated arguments"],
)
def test_anything_else_is_not_a_known_error(data):
    assert decode_revert(data) is None


def test_revert_error_finds_the_data_wherever_the_client_put_it():
    assert revert_error(ContractCustomError("0x" + NOT_CONFIRMED.hex(), data="0x" + NOT_CONFIRMED.hex())).name == "NotConfirmed"
    assert revert_error(ContractLogicError("x", data={"data": "0x" + NOT_CONFIRMED.hex()})).name == "NotConfirmed"
    assert revert_error(ValueError(NOT_CONFIRMED)).name == "NotConfirmed"  # eth-tester: raw bytes
    assert revert_error(ValueError(f"execution reverted: {NOT_CONFIRMED!r}")).name == "NotConfirmed"
    assert revert_error(ContractLogicError("execution reverted", data=None)) is None
    assert revert_error(ValueError("nonce too low")) is None
