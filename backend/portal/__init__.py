"""The web portal: server-rendered pages for people, over the same services as the API.

`register_portal(app)` sets it up: Flask-Login sessions (backend/portal/auth.py); a CSRF token
on every unsafe request outside /api/v1 (Flask-WTF; the JSON API keeps its own rules: API
keys, and its SameSite session cookie); English and Simplified Chinese
(backend/portal/i18n.py); the front-end packages installed from npm and served by the app
itself under /static/vendor/ (no CDN); and each area's blueprint (PORTAL_BLUEPRINTS), whose
security headers and HTML error pages come from backend/portal/layout.py. See docs/portal.md.
"""
from __future__ import annotations

from flask import Blueprint, Flask, abort, send_from_directory
from flask.typing import ResponseReturnValue

from backend import paths
from backend.api.responses import is_api_request
from backend.extensions import csrf
from backend.portal import auditor, auth, compliance, financier, i18n, invoices, layout, operator, pages

# The portal's blueprints: their views are the pages, their error pages are HTML. The main
# navigation lists their pages in this order, each area's in the order its module adds them.
PORTAL_BLUEPRINTS: tuple[Blueprint, ...] = (pages.blp, invoices.blp, financier.blp, operator.blp, auth.blp, auditor.blp,
                                             compliance.blp)
layout.order_navigation([blueprint.name for blueprint in PORTAL_BLUEPRINTS])
# The npm packages the pages load, each by the folder of its built files.
VENDOR_PACKAGES = {
    "htmx.org": paths.NODE_MODULES / "htmx.org" / "dist",
    "chart.js": paths.NODE_MODULES / "chart.js" / "dist",
}
VENDOR_URL_PREFIX = "/static/vendor"

vendor = Blueprint("vendor", __name__, url_prefix=VENDOR_URL_PREFIX)


@vendor.route("/<string:package>/<path:filename>")
def vendor_asset(package: str, filename: str) -> ResponseReturnValue:
    """A built file of one of VENDOR_PACKAGES (send_from_directory refuses paths leaving it)."""
    directory = VENDOR_PACKAGES.get(package)
    if directory is None:
        abort(404)
    return send_from_directory(directory, filename)


def register_portal(app: Flask) -> None:
    """Sets up the portal on `app` (see the module's docstring)."""
    # Checked below for everything but the API, rather than everywhere with exemptions: an API
    # area registered later (as the tests' probe is) must not need to know about the portal.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    # A token is good for as long as the session it is bound to, not an hour: a form left open
    # over lunch still submits.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    app.before_request(require_csrf_token_outside_api)
    auth.init_login(app)
    i18n.init_babel(app)
    app.register_blueprint(vendor)
    for blueprint in PORTAL_BLUEPRINTS:
        app.register_blueprint(blueprint)


def require_csrf_token_outside_api() -> None:
    """Every POST, PUT, PATCH or DELETE outside the API carries the session's CSRF token (in
    the form's csrf_token field or the X-CSRFToken header); without it, CSRFError (400)."""
    if not is_api_request():
        csrf.protect()
