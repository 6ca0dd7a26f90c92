"""`anchorline serve`: the web server (the REST API under /api/v1), on waitress.

waitress is a production WSGI server in pure Python, one process with many threads: the API
on a host of its own or beside `anchorline up --detach` (`anchorline up` itself runs gunicorn,
several processes). The database is migrated to the newest schema before the first request, so
a fresh instance folder works at once. `prepared_app` and `ensure_local_operator` are `up`'s too.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import click
import flask_migrate
from flask import Flask
from waitress import create_server
from waitress.server import BaseWSGIServer

from backend.app import create_app
from backend.services import organisations

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Worker threads per server process: enough for a portal and a few machine clients at once.
THREADS = 8
# The operator made for a fresh local stack by `anchorline up`.
LOCAL_OPERATOR = {
    "name": "Anchorline Operator",
    "legal_identifier": "0088:0000000000001",
    "email": "operator@anchorline.local",
    "display_name": "Operator",
}


def prepared_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application (with `config` over the environment's settings), its database migrated
    to the newest revision."""
    app = create_app(config)
    with app.app_context():
        flask_migrate.upgrade()
    return app


def web_server(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """A bound (not yet running) server: `run()` serves until `close()`."""
    return create_server(app, host=host, port=port, threads=THREADS)


def ensure_local_operator(app: Flask) -> tuple[str, str] | None:
    """On a database without an operator, makes one with a fresh password and returns its
    email and password, to be shown once; None when there is an operator already."""
    with app.app_context():
        if organisations.operator_organisation() is not None:
            return None
        password = secrets.token_urlsafe(18)
        organisations.create_operator(**LOCAL_OPERATOR, password=password)
        return LOCAL_OPERATOR["email"], password


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the REST API (and its docs at /api/v1/docs) until Ctrl-C."""
    server = web_server(prepared_app(), host, port)
    click.echo(f"API at http://{host}:{server.effective_port}/api/v1 (interactive docs at /api/v1/docs)")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
