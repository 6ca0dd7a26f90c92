"""The portal in English and Simplified Chinese: the language chosen and remembered, the
browser's preference as fallback, amounts and dates in the locale's format, and catalogues
that are complete and compiled."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from flask_babel import force_locale

from backend.models import InvoiceStatus, Role
from backend.portal.i18n import LANGUAGE_COOKIE, SIMPLIFIED_CHINESE, TRANSLATIONS_DIR, offered_language
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import portal_sign_in, post_form, text

CATALOGUE = TRANSLATIONS_DIR / SIMPLIFIED_CHINESE / "LC_MESSAGES"
PORTAL_DIR = TRANSLATIONS_DIR.parent


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_english_is_the_default(client: FlaskClient) -> None:
    page = text(client.get("/sign-in"))

    assert '<html lang="en">' in page and "<h1>Sign in</h1>" in page


@pytest.mark.parametrize(
    ("accept_language", "heading"),
    [("zh-CN,zh;q=0.9,en;q=0.8", "<h1>登录</h1>"), ("zh", "<h1>登录</h1>"), ("fr-FR,zh-Hans;q=0.5", "<h1>登录</h1>"),
     ("zh-TW,en;q=0.5", "<h1>Sign in</h1>"), ("de-DE", "<h1>Sign in</h1>")],
)
def test_without_a_choice_the_browsers_languages_decide(client: FlaskClient, accept_language: str,
                                                        heading: str) -> None:
    assert heading in text(client.get("/sign-in", headers={"Accept-Language": accept_language}))


@pytest.mark.parametrize(("tag", "offered"), [("en-GB", "en"), ("zh-SG", SIMPLIFIED_CHINESE), ("zh-HK", None),
                                              ("not a tag", None), ("", None)])
def test_offered_language(tag: str, offered: str | None) -> None:
    assert offered_language(tag) == offered


def test_the_chosen_language_is_remembered_past_signing_in_and_out(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER)
        factories.invoice(supplier, factories.organisation(Role.BUYER), status=InvoiceStatus.REGISTERED,
                          amount_minor=987_654_32)
        email = user_with_password(supplier).email

    switched = post_form(client, "/language", "/sign-in", language=SIMPLIFIED_CHINESE, next="/sign-in")
    assert switched.status_code == 302 and switched.headers["Location"] == "/sign-in"
    assert client.get_cookie(LANGUAGE_COOKIE).value == SIMPLIFIED_CHINESE
    assert "<h1>登录</h1>" in text(client.get("/sign-in", headers={"Accept-Language": "en"}))

    portal_sign_in(client, email)
    dashboard = text(client.get("/dashboard/supplier"))
    assert '<html lang="zh-Hans">' in dashboard
    assert "<h1>应收账款</h1>" in dashboard and "已登记" in dashboard and "¥987,654.32" in dashboard
    assert '<option lang="zh-Hans-CN" selected value="zh_Hans_CN">' in dashboard

    post_form(client, "/sign-out", "/dashboard/supplier")
    assert "您已退出登录。" in text(client.get("/sign-in"))


def test_the_language_cookie_alone_chooses_the_language(app: Flask, client: FlaskClient) -> None:
    client.set_cookie(LANGUAGE_COOKIE, SIMPLIFIED_CHINESE)

    assert "<h1>登录</h1>" in text(client.get("/sign-in"))


def test_only_offered_languages_can_be_chosen(client: FlaskClient) -> None:
    answer = post_form(client, "/language", "/sign-in", language="xx")

    assert answer.status_code == 400
    assert client.get_cookie(LANGUAGE_COOKIE) is None


@pytest.mark.parametrize(
    ("minor_units", "currency", "english", "chinese"),
    [(123_456_750, "CNY", "CN¥1,234,567.50", "¥1,234,567.50"), (165_625, "EUR", "€1,656.25", "€1,656.25"),
     (1_000, "JPY", "¥1,000", "JP¥1,000"), (1_234, "KWD", "KWD1.234", "KWD1.234"), (5, "USD", "$0.05", "US$0.05")],
)
def test_amounts_have_exactly_their_currencys_decimals_in_each_locale(
    app: Flask, minor_units: int, currency: str, english: str, chinese: str
) -> None:
    template = "{{ minor_units | amount(currency) }}"
    with app.test_request_context():
        with force_locale("en"):
            assert render_template_string(template, minor_units=minor_units, currency=currency) == english
        with force_locale(SIMPLIFIED_CHINESE):
            assert render_template_string(template, minor_units=minor_units, currency=currency) == chinese


def test_dates_and_times_are_written_as_the_locale_writes_them(app: Flask) -> None:
    template = "{{ day | dateformat }} / {{ moment | datetimeformat('short') }}"
    values = {"day": date(2026, 3, 9), "moment": datetime(2026, 3, 9, 14, 5, tzinfo=timezone.utc)}
    with app.test_request_context():
        with force_locale("en"):
            assert render_template_string(template, **values) == "Mar 9, 2026 / 3/9/26, 2:05\u202fPM"
        with force_locale(SIMPLIFIED_CHINESE):
            assert render_template_string(template, **values) == "2026年3月9日 / 2026/3/9 14:05"


def test_the_chinese_catalogue_translates_every_message_and_its_compiled_copy_is_current() -> None:
    with (CATALOGUE / "messages.po").open("rb") as source:
        catalogue = read_po(source)
    with (CATALOGUE / "messages.mo").open("rb") as compiled:
        shipped = read_mo(compiled)
    extracted = _messages_in_the_source()

    translations = {message.id: message.string for message in catalogue if message.id}
    assert extracted <= translations.keys(), f"run pybabel extract and update (docs/portal.md): {extracted - translations.keys()}"
    assert all(translations.values()), [key for key, value in translations.items() if not value]
    assert not [message.id for message in catalogue if message.id and message.fuzzy]
    assert {message.id: message.string for message in shipped if message.id} == translations, \
        "run pybabel compile (docs/portal.md)"


def _messages_in_the_source() -> set[str]:
    """The messages `pybabel extract` finds with the portal's babel.cfg (its paths are relative
    to the project; read here from the portal's folder, so nothing else is walked)."""
    with (PORTAL_DIR / "babel.cfg").open() as configuration:
        method_map, options_map = parse_mapping_cfg(configuration)
    local_map = [(pattern.removeprefix("backend/portal/"), method) for pattern, method in method_map]
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    found = extract_from_dir(PORTAL_DIR, local_map, options_map, keywords=keywords)
    return {message if isinstance(message, str) else message[0] for _file, _line, message, *_rest in found}
