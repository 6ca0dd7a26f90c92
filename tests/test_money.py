"""Amounts to ledger minor units and back: exact or refused, never rounded."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.money import (
    MAX_MINOR_UNITS,
    MINOR_UNIT_EXPONENTS,
    AmountError,
    from_minor_units,
    minor_unit_exponent,
    parse_amount,
    to_minor_units,
)

TWO_DECIMALS = "EUR USD GBP CHF CNY SEK NOK DKK PLN CZK HUF INR SGD HKD AUD CAD NZD ZAR BRL MXN TRY AED SAR".split()


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [(code, 2) for code in TWO_DECIMALS]
    + [("JPY", 0), ("KRW", 0)]
    + [(code, 3) for code in ("BHD", "KWD", "JOD", "OMR", "TND")],
)
def test_minor_unit_exponents_are_iso_4217(currency, exponent):
    assert minor_unit_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1656.25", "EUR", 165625),
        ("1656.2", "EUR", 165620),
        ("1656", "EUR", 165600),
        ("0.01", "USD", 1),
        (" 42.50 ", "GBP", 4250),
        ("+7", "CHF", 700),
        (".5", "EUR", 50),
        ("12000", "JPY", 12000),
        ("1250.375", "KWD", 1250375),
        ("0.001", "BHD", 1),
        (Decimal("99.99"), "SEK", 9999),
        (Decimal("1E+3"), "JPY", 1000),
    ],
)
def test_exact_amounts_convert(amount, currency, minor):
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("10.005", "EUR"), ("10.500", "EUR"), ("1.5", "JPY"), ("100.0", "KRW"), ("0.0001", "KWD"), (Decimal("0.125"), "USD")],
)
def test_more_decimals_than_the_currency_has_is_refused_not_rounded(amount, currency):
    with pytest.raises(AmountError, match="never rounded"):
        to_minor_units(amount, currency)


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "-0.01", Decimal("0"), Decimal("-1"), Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity")])
def test_non_positive_or_non_finite_amounts_are_refused(amount):
    with pytest.raises(AmountError, match="greater than zero"):
        to_minor_units(amount, "EUR")


@pytest.mark.parametrize("amount", ["", "abc", "1,000.00", "1 000", "1e3", "NaN", "Infinity", "12.34.56", "€12", "0x10", "."])
def test_non_numeric_text_is_refused(amount):
    with pytest.raises(AmountError, match="not a decimal number"):
        to_minor_units(amount, "EUR")


@pytest.mark.parametrize("currency", ["XXX", "eur", "EURO", "", "€"])
def test_unknown_currency_codes_are_refused(currency):
    with pytest.raises(AmountError, match="unknown currency code"):
        to_minor_units("1.00", currency)


def test_floats_are_a_programming_error():
    with pytest.raises(TypeError, match="Decimal or a string"):
        to_minor_units(0.1, "EUR")


@pytest.mark.parametrize(("currency", "largest"), [("EUR", "92233720368547758.07"), ("JPY", "9223372036854775807"), ("KWD", "9223372036854775.807")])
def test_the_largest_amount_fits_the_ledger_and_the_database(currency, largest):
    assert to_minor_units(largest, currency) == MAX_MINOR_UNITS == 2**63 - 1
    one_more = from_minor_units(1, currency) + Decimal(largest)
    with pytest.raises(AmountError, match="more than the ledger can hold"):
        to_minor_units(one_more, currency)


def test_huge_amounts_are_refused_without_rounding_into_range():
    with pytest.raises(AmountError, match="more than the ledger can hold"):
        to_minor_units("1" + "0" * 40, "EUR")
    with pytest.raises(AmountError, match="more than the ledger can hold"):
        to_minor_units(Decimal("1E+999999"), "JPY")


def test_parse_amount_checks_form_without_a_currency():
    assert parse_amount("10.005") == Decimal("10.005")
    with pytest.raises(AmountError):
        parse_amount("-1")


@pytest.mark.parametrize(("minor", "currency", "amount"), [(165625, "EUR", "1656.25"), (100000, "EUR", "1000.00"), (500, "JPY", "500"), (1, "KWD", "0.001"), (0, "USD", "0.00")])
def test_from_minor_units_has_the_currency_decimals(minor, currency, amount):
    result = from_minor_units(minor, currency)
    assert result == Decimal(amount)
    assert str(result) == amount


@pytest.mark.parametrize("minor", [-1, MAX_MINOR_UNITS + 1])
def test_from_minor_units_refuses_what_the_ledger_cannot_hold(minor):
    with pytest.raises(AmountError, match="outside the ledger's range"):
        from_minor_units(minor, "EUR")


def test_from_minor_units_refuses_unknown_currencies_and_non_integers():
    with pytest.raises(AmountError):
        from_minor_units(100, "XXX")
    with pytest.raises(TypeError):
        from_minor_units(1.0, "EUR")


@given(minor=st.integers(min_value=1, max_value=MAX_MINOR_UNITS), currency=st.sampled_from(sorted(MINOR_UNIT_EXPONENTS)))
def test_minor_units_round_trip_through_decimal_and_text(minor, currency):
    amount = from_minor_units(minor, currency)
    assert to_minor_units(amount, currency) == minor
    assert to_minor_units(str(amount), currency) == minor
