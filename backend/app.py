"""The Flask application factory.

There is no module-level application: `flask --app backend.app ...` finds `create_app` and
calls it, and tests call it with the settings they need. Every setting comes from
backend.config (the environment, overridable by the mapping given here).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend import models  # noqa: F401  (registers every table on db.metadata for Flask-Migrate)
from backend import paths
from backend.api import register_api
from backend.config import load_config
from backend.extensions import db, limiter, migrate
from backend.portal import register_portal
from workers.celery_app import init_celery
from workers.monitoring import StackCollector

MIGRATIONS_DIR = paths.PROJECT_ROOT / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A configured Anchorline application: the environment's settings, overridden by `config`.

    The instance folder is backend.paths.INSTANCE_DIR (read now, so a test can point it
    elsewhere); the database schema is the migrations' (`flask --app backend.app db upgrade`).
    """
    app = Flask(__name__, instance_path=str(Path(paths.INSTANCE_DIR).absolute()))
    app.config.from_mapping(load_config(config, instance_dir=Path(app.instance_path)))

    db.init_app(app)
    # An absolute directory, so `flask db ...` and the tests work from any working directory.
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    limiter.init_app(app)  # first: its check runs before the API's own request hooks
    register_api(app)
    register_portal(app)
    init_celery(app)

    app.add_url_rule("/healthz", view_func=healthz)
    install_metrics(app)
    return app


def healthz() -> tuple[dict[str, str], int]:
    """Liveness and database reachability, for load balancers and process supervisors."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}, 200


def install_metrics(app: Flask) -> None:
    """Prometheus metrics at /metrics: the stack's status (workers/monitoring.py) read at scrape
    time, in a registry of this application's own (so several applications in one process,
    as in the tests, never share or duplicate gauges)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StackCollector(app))

    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", view_func=metrics)
