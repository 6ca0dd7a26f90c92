"""Support for the portal's tests: the CSRF token a page's form carries, and signing in through
the sign-in form as a browser would."""
from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from tests.api_support import PASSWORD

_CSRF_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/sign-in") -> str:
    """The CSRF token of the first form on the page at `path` (bound to the client's session)."""
    page = client.get(path)
    match = _CSRF_TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


def portal_sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **form: str) -> Any:
    """Submits the sign-in form, with its CSRF token."""
    return client.post("/sign-in", data={"email": email, "password": password,
                                         "csrf_token": csrf_token(client), **form})


def post_form(client: FlaskClient, path: str, form_page: str, **form: str) -> Any:
    """Submits a form to `path` with the CSRF token of the page `form_page`."""
    return client.post(path, data={"csrf_token": csrf_token(client, form_page), **form})


def text(response: Any) -> str:
    return response.get_data(as_text=True)
