"""The REST API under /api/v1: thin flask-smorest blueprints over the services.

`register_api(app)` sets up the API on an application: the OpenAPI document (with the problem
body as every error's schema and the two ways to authenticate), Swagger UI served from the
local swagger-ui-dist package, problem+json errors, the request id, Idempotency-Key, rate
limits, and each area module's blueprint `blp` (listed in AREA_MODULES). A view only parses its
input, calls one service and returns: everything here applies to it without its asking.
"""
from __future__ import annotations

import copy
import importlib
from http import HTTPStatus
from typing import Any

from apispec import APISpec, BasePlugin
from flask import Blueprint, Flask, current_app
from flask_smorest import Blueprint as ApiBlueprint

from backend import paths
from backend.api import auth, idempotency, problems, text_input
from backend.api.problems import PROBLEM_MEDIA_TYPE, ProblemSchema
from backend.config import API_URL_PREFIX, SWAGGER_UI_ASSETS_URL
from backend.extensions import api, limiter

# The modules whose `blp` make up the API, registered in this order.
AREA_MODULES: tuple[str, ...] = ("backend.api.session", "backend.api.organisations", "backend.api.users",
                                  "backend.api.api_keys", "backend.api.tokens", "backend.api.audit_log",
                                  "backend.api.invoices", "backend.api.financing", "backend.api.early_payment",
                                  "backend.api.repayments",
                                  "backend.api.webhooks", "backend.api.health", "backend.api.transactions",
                                  "backend.api.risk", "backend.api.exposure", "backend.api.fraud",
                                  "backend.api.reports", "backend.api.screening", "backend.api.aml")

SWAGGER_UI_DIST = paths.NODE_MODULES / "swagger-ui-dist"
# flask-smorest documents an error response under its status's name (NOT_FOUND, ...); this one
# answers for every status an operation does not list.
DEFAULT_ERROR_RESPONSE = "DEFAULT_ERROR"


def api_rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


# One budget per principal shared by every API route (scope "api"), rather than one per route.
API_RATE_LIMIT = limiter.shared_limit(api_rate_limit, scope="api", key_func=auth.rate_limit_key)

IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": idempotency.IDEMPOTENCY_KEY_HEADER,
    "required": False,
    "description": "Makes a retry of this request safe: the same key with the same request gets the first "
    "answer again (for 24 hours); with a different request it is a 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
}


class ProblemDocumentation(BasePlugin):
    """Completes every operation's documentation with what the infrastructure adds to it: a
    problem document for any status the operation does not list, and Idempotency-Key on POSTs
    that need a caller (signing in has none, and takes no key)."""

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            operation.setdefault("responses", {}).setdefault("default", DEFAULT_ERROR_RESPONSE)
            if method == "post" and operation.get("security") != []:
                operation.setdefault("parameters", []).append(copy.deepcopy(IDEMPOTENCY_KEY_PARAMETER))


swagger_ui_assets = Blueprint(
    "swagger_ui_assets",
    __name__,
    static_folder=SWAGGER_UI_DIST,
    static_url_path=SWAGGER_UI_ASSETS_URL.rstrip("/"),
)


def register_api(app: Flask) -> None:
    """Sets up the API on `app` (see the module's docstring)."""
    api.ERROR_SCHEMA = ProblemSchema
    api.init_app(app, spec_kwargs={"extra_plugins": [ProblemDocumentation()]})
    _document_problems(api.spec)
    for name, scheme in auth.security_schemes(app.config["SESSION_COOKIE_NAME"]).items():
        api.spec.components.security_scheme(name, scheme)
    app.register_blueprint(swagger_ui_assets)
    # flask-smorest's blueprint of the OpenAPI document and the documentation pages.
    API_RATE_LIMIT(next(blueprint for blueprint in app.blueprints.values() if blueprint.url_prefix == API_URL_PREFIX))

    auth.install(app)
    problems.install(app)
    text_input.install(app)
    idempotency.install(app)
    for module_name in AREA_MODULES:
        register_area(importlib.import_module(module_name).blp)


def register_area(blp: ApiBlueprint) -> None:
    """Registers an area's blueprint on the API (and its routes on the application), under the
    API's rate limit. Only for blueprints under /api/v1."""
    if not (blp.url_prefix or "").startswith(API_URL_PREFIX + "/"):
        raise ValueError(f"the blueprint {blp.name!r} is not under {API_URL_PREFIX}")
    api.register_blueprint(blp)
    API_RATE_LIMIT(blp)


def _document_problems(spec: APISpec) -> None:
    """Documents every error response as a problem document (flask-smorest documents them with
    ERROR_SCHEMA, but as application/json)."""
    for status in HTTPStatus:
        if status >= 400:
            spec.components.response(status.name, _problem_response(status.phrase), lazy=True)
    spec.components.response(DEFAULT_ERROR_RESPONSE, _problem_response("An error (a problem document)"), lazy=True)


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": ProblemSchema}}}
