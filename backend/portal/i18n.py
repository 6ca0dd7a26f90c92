"""The portal's languages: English and Simplified Chinese, chosen by the user.

The choice is kept in the session and in a long-lived cookie (LANGUAGE_COOKIE), so it outlives
signing out and the session's expiry; without one, the browser's Accept-Language decides, and
English is the fallback. Catalogues live in backend/portal/translations (docs/portal.md has the
pybabel workflow). Amounts are shown with exactly their currency's decimals (backend/money.py)
in the locale's currency format; dates and times with Flask-Babel's dateformat and
datetimeformat filters, in the user's locale.
"""
from __future__ import annotations

import copy
from pathlib import Path

from babel import Locale, UnknownLocaleError
from flask import Flask, request, session
from flask_babel import get_locale

from backend.extensions import babel
from backend.money import from_minor_units, minor_unit_exponent

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
ENGLISH = "en"
SIMPLIFIED_CHINESE = "zh_Hans_CN"
# The languages offered, by locale identifier, each named in itself (for the language switch).
LANGUAGES: dict[str, str] = {ENGLISH: "English", SIMPLIFIED_CHINESE: "简体中文"}
LANGUAGE_SESSION_KEY = "language"
LANGUAGE_COOKIE = "anchorline_language"
LANGUAGE_COOKIE_MAX_AGE = 365 * 86_400


def init_babel(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", ENGLISH)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    babel.init_app(app, locale_selector=select_language)
    app.jinja_env.filters["amount"] = format_amount


def select_language() -> str:
    """The session's language, else the cookie's, else the best of Accept-Language, else English."""
    for chosen in (session.get(LANGUAGE_SESSION_KEY), request.cookies.get(LANGUAGE_COOKIE)):
        if chosen in LANGUAGES:
            return chosen
    for tag, _quality in request.accept_languages:
        offered = offered_language(tag)
        if offered is not None:
            return offered
    return ENGLISH


def offered_language(tag: str) -> str | None:
    """The offered language a browser's language tag asks for: any English for English; Chinese
    in simplified script (zh, zh-CN, zh-SG, zh-Hans) for Simplified Chinese; else None."""
    try:
        locale = Locale.parse(tag.replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError):
        return None
    if locale.language == "en":
        return ENGLISH
    if locale.language == "zh" and locale.script in (None, "Hans"):
        return SIMPLIFIED_CHINESE
    return None


def format_amount(minor_units: int, currency: str) -> str:
    """`minor_units` of `currency` in the current locale's currency format, with exactly the
    currency's ISO 4217 decimals (not CLDR's): 123456750 CNY is "CN¥1,234,567.50" in English
    and "¥1,234,567.50" in Chinese; 1234 KWD "KWD1.234"; 1000 JPY "¥1,000", never "¥1,000.00"."""
    locale = get_locale() or Locale.parse(ENGLISH)
    exponent = minor_unit_exponent(currency)
    pattern = copy.copy(locale.currency_formats["standard"])
    pattern.frac_prec = (exponent, exponent)
    return pattern.apply(from_minor_units(minor_units, currency), locale, currency=currency, currency_digits=False)
