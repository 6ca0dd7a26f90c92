"""The portal's pages: the home page, each role's dashboard and the language switch.
Adding a page: see docs/portal.md."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from backend.portal import layout
from backend.portal.auth import current_actor, safe_next
from backend.portal.dashboards import DASHBOARDS, dashboards_of
from backend.portal.forms import LanguageForm
from backend.portal.i18n import LANGUAGE_COOKIE, LANGUAGE_COOKIE_MAX_AGE, LANGUAGE_SESSION_KEY

blp = Blueprint("portal", __name__, template_folder="templates", static_folder="static",
                static_url_path="/static/portal")
layout.setup(blp)


@blp.route("/")
@login_required
def home() -> ResponseReturnValue:
    """The first dashboard of the organisation's roles."""
    boards = dashboards_of(current_actor())
    if not boards:
        abort(404)
    return redirect(url_for("portal.dashboard", role=boards[0][0]))


@blp.route("/dashboard/<string:role>")
@login_required
def dashboard(role: str) -> ResponseReturnValue:
    board = DASHBOARDS.get(role)
    actor = current_actor()
    if board is None or not actor.has_any(board.role):
        abort(404)
    return render_template(f"portal/dashboard_{role}.html", dashboard=board, **board.figures(actor))


@blp.route("/language", methods=["POST"])
def choose_language() -> ResponseReturnValue:
    """Remembers the chosen language in the session and in a cookie that outlives it."""
    form = LanguageForm()
    if not form.validate_on_submit():
        abort(400)
    session[LANGUAGE_SESSION_KEY] = form.language.data
    response = make_response(redirect(safe_next(form.next.data) or url_for("portal.home")))
    response.set_cookie(LANGUAGE_COOKIE, form.language.data, max_age=LANGUAGE_COOKIE_MAX_AGE,
                        secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True, samesite="Lax")
    return response
