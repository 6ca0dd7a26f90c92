"""Currencies and amounts: decimal amounts as written on invoices, minor units as the ledger keeps them.

The ledger stores every amount as a uint64 count of the currency's minor units (cents, fils,
yen), so an amount must convert exactly: an amount with more decimals than its currency has is
refused, never rounded. That includes trailing zeros ("10.500 EUR"): in a bulk upload they are
as likely a thousands separator (ten thousand five hundred) as three decimals.
"""
from __future__ import annotations

import re
from decimal import Decimal
from types import MappingProxyType
from typing import Mapping

__all__ = [
    "MAX_MINOR_UNITS",
    "MINOR_UNIT_EXPONENTS",
    "AmountError",
    "from_minor_units",
    "minor_unit_exponent",
    "parse_amount",
    "to_minor_units",
]

# The ledger stores uint64, but the database a signed 64-bit BIGINT: the smaller bound holds for both.
MAX_MINOR_UNITS = 2**63 - 1

# ISO 4217 minor-unit exponents, as the standard lists them (HUF, CZK, IDR and TWD have 2 there
# even though their cents are out of use in cash).
MINOR_UNIT_EXPONENTS: Mapping[str, int] = MappingProxyType({
    "AED": 2, "ARS": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0,
    "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2,
    "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KES": 2, "KRW": 0,
    "KWD": 3, "LYD": 3, "MAD": 2, "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2, "NZD": 2, "OMR": 3,
    "PHP": 2, "PKR": 2, "PLN": 2, "QAR": 2, "RON": 2, "RSD": 2, "SAR": 2, "SEK": 2, "SGD": 2,
    "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "VND": 0, "XAF": 0, "XOF": 0,
    "ZAR": 2,
})

# Plain decimal notation as XML Schema's xs:decimal allows it: no exponent, no thousands
# separators, so "1e3" or "1,000.00" from a spreadsheet export is refused rather than guessed at.
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


class AmountError(ValueError):
    """An amount or currency that cannot become a ledger amount; the message says why."""


def minor_unit_exponent(currency: str) -> int:
    """How many decimals `currency` (an upper-case ISO 4217 code) has."""
    try:
        return MINOR_UNIT_EXPONENTS[currency]
    except (KeyError, TypeError):
        raise AmountError(f"unknown currency code {currency!r} (an upper-case ISO 4217 code such as EUR)") from None


def parse_amount(amount: Decimal | str) -> Decimal:
    """A positive, finite decimal amount, whatever its currency. Strings must be plain decimal
    notation; surrounding whitespace is ignored."""
    if isinstance(amount, str):
        text = amount.strip()
        if not _PLAIN_DECIMAL.fullmatch(text):
            raise AmountError(f"{amount!r} is not a decimal number (digits with an optional '.', no separators)")
        value = Decimal(text)
    elif isinstance(amount, Decimal):
        value = amount
    else:
        # A float has already lost the exact amount; a caller passing one has a bug to fix.
        raise TypeError(f"amount must be a Decimal or a string, not {type(amount).__name__}")
    if not (value.is_finite() and value > 0):
        raise AmountError(f"amount must be a number greater than zero, not {value}")
    return value


def to_minor_units(amount: Decimal | str, currency: str) -> int:
    """`amount` of `currency` as a count of minor units: "1656.25", "EUR" -> 165625."""
    exponent = minor_unit_exponent(currency)
    value = parse_amount(amount)
    decimals = max(0, -value.as_tuple().exponent)
    if decimals > exponent:
        allowed = f"{exponent} decimals" if exponent else "no decimals"
        raise AmountError(f"{currency} amounts have {allowed}; {value} has {decimals} (amounts are never rounded)")
    # Compared before scaling: Decimal comparison is exact, while scaling rounds past 28 digits.
    if value > Decimal(MAX_MINOR_UNITS).scaleb(-exponent):
        raise AmountError(f"{value} {currency} is more than the ledger can hold ({MAX_MINOR_UNITS} minor units)")
    return int(value.scaleb(exponent))


def from_minor_units(minor_units: int, currency: str) -> Decimal:
    """A count of minor units as a decimal amount with the currency's decimals: 165625, "EUR" -> 1656.25."""
    exponent = minor_unit_exponent(currency)
    if not isinstance(minor_units, int) or isinstance(minor_units, bool):
        raise TypeError(f"minor units must be an int, not {type(minor_units).__name__}")
    if not 0 <= minor_units <= MAX_MINOR_UNITS:
        raise AmountError(f"{minor_units} minor units is outside the ledger's range 0..{MAX_MINOR_UNITS}")
    return Decimal(minor_units).scaleb(-exponent)


def shown(minor_units: int, currency: str) -> str:
    """An amount as people read it in a message: "9000.00 CNY"."""
    return f"{from_minor_units(minor_units, currency)} {currency}"
