"""What every portal blueprint shares: the security headers, the base layout's context (the
navigation of the user's roles, the language switch, the sign-out button) and HTML error pages
in the user's language (the API answers problem documents instead).

`setup(blueprint)` is called once, where the blueprint is made: Flask refuses changes to a
blueprint once it is registered, and every application (the tests make many) registers the same
blueprint objects.
"""
from __future__ import annotations

from http import HTTPStatus
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString, get_locale
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from backend.portal import security
from backend.models import Role
from backend.portal.dashboards import INVOICE_STATUS_LABELS, KYC_STATUS_LABELS, dashboards_of
from backend.portal.forms import ConfirmForm, LanguageForm
from backend.security.passwords import MIN_PASSWORD_LENGTH
from backend.services.errors import NotFound, PermissionDenied, ServiceError

# A service's refusal as the status of the error page that shows it (anything else: 400).
SERVICE_ERROR_STATUS: dict[type[ServiceError], int] = {NotFound: 404, PermissionDenied: 403}


@dataclass(frozen=True)
class NavLink:
    """A page the main navigation lists for organisations holding any of `roles`."""

    endpoint: str
    title: LazyString
    roles: Role


# Filled by each area's module as it is imported, then put in PORTAL_BLUEPRINTS order
# (order_navigation); listed after the dashboards and before the password link.
NAV_LINKS: list[NavLink] = []


def nav_link(endpoint: str, title: LazyString, roles: Role) -> None:
    """Lists the page `endpoint` in the main navigation of organisations holding any of `roles`."""
    NAV_LINKS.append(NavLink(endpoint, title, roles))


def order_navigation(blueprint_names: list[str]) -> None:
    """Puts NAV_LINKS in the order of their blueprints in `blueprint_names` (any other last),
    keeping each blueprint's own order."""
    order = {name: position for position, name in enumerate(blueprint_names)}
    NAV_LINKS.sort(key=lambda link: order.get(link.endpoint.partition(".")[0], len(order)))


def setup(blueprint: Blueprint) -> None:
    security.protect(blueprint)
    blueprint.context_processor(page_context)
    blueprint.register_error_handler(HTTPException, error_page)
    blueprint.register_error_handler(ServiceError, error_page)


def page_context() -> dict[str, Any]:
    # (url, title, endpoint) of each page the user's roles open, dashboards first.
    navigation: list[tuple[str, LazyString, str]] = []
    if current_user.is_authenticated:
        actor = current_user.actor
        navigation = [(url_for("portal.dashboard", role=name), board.title, f"portal.dashboard:{name}")
                      for name, board in dashboards_of(actor)]
        navigation += [(url_for(link.endpoint), link.title, link.endpoint)
                       for link in NAV_LINKS if actor.has_any(link.roles)]
    locale = get_locale()
    return {
        "navigation": navigation,
        "current_locale": str(locale),
        "current_locale_tag": locale.language if locale.script is None else f"{locale.language}-{locale.script}",
        "invoice_status_labels": INVOICE_STATUS_LABELS,
        "kyc_status_labels": KYC_STATUS_LABELS,
        "min_password_length": MIN_PASSWORD_LENGTH,
        "language_form": LanguageForm(formdata=None, language=str(locale), next=request.full_path.rstrip("?")),
        "sign_out_form": ConfirmForm(formdata=None),
    }


def error_page(error: HTTPException | ServiceError) -> ResponseReturnValue:
    if isinstance(error, ServiceError):
        status = next((code for kind, code in SERVICE_ERROR_STATUS.items() if isinstance(error, kind)), 400)
        detail = error.detail
    else:
        status = error.code or 500
        detail = None
    # Flask-Limiter adds Retry-After to a 429 itself (RATELIMIT_HEADERS_ENABLED).
    return render_template("portal/error.html", status=status, phrase=HTTPStatus(status).phrase,
                           detail=detail), status
