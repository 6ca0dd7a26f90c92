"""Database fixtures: an application on a migrated SQLite file, a throw-away PostgreSQL
database, and both backends in turn.

Every schema here is made by the migrations (flask_migrate.upgrade), as in production. The
PostgreSQL server is ANCHORLINE_TEST_POSTGRES (a libpq URL of a database the user may connect
to, with the right to create databases), by default postgres on 127.0.0.1:5432; tests that
need it are skipped, with the reason, when nothing answers there.

tests/conftest.py loads this module as a plugin, so every test module can use its fixtures.
"""
from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from pathlib import Path

import flask_migrate
import psycopg
import pytest
from flask import Flask
from psycopg import sql
from sqlalchemy.engine import make_url

from backend import paths
from backend.app import create_app
from backend.config import WORKER_SETTINGS
from backend.extensions import db

POSTGRES_ADMIN_URL = os.environ.get("ANCHORLINE_TEST_POSTGRES") or "postgresql://postgres@127.0.0.1:5432/test"
# The settings backend.config reads from the environment; a developer's values must not leak
# into the tests.
CONFIG_ENVIRONMENT = (
    "DATABASE_URL",
    "SECRET_KEY",
    "ETH_RPC_URL",
    "REDIS_URL",
    "RATELIMIT_STORAGE_URI",
    "MAX_CONTENT_LENGTH",
    "DOCUMENTS_DIR",
    "OPENAPI_SWAGGER_UI_URL",
    "OPENAPI_REDOC_URL",
    "SETTLEMENT_CURRENCY",
    "GRACE_PERIOD_SECONDS",
    "DEFAULT_PERIOD_SECONDS",
    "API_RATE_LIMIT",
    "LOGIN_RATE_LIMIT",
    "LOGIN_ADDRESS_RATE_LIMIT",
    "ANCHORLINE_MASTER_SECRET",
    *WORKER_SETTINGS,
)


def isolate_configuration(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """Point backend.paths.INSTANCE_DIR at `directory` and hide Anchorline's settings from the
    environment, so create_app reads nothing of the developer's machine."""
    monkeypatch.setattr(paths, "INSTANCE_DIR", directory)
    for name in CONFIG_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def instance_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty instance folder for create_app, and an environment without Anchorline's settings."""
    directory = tmp_path / "instance"
    directory.mkdir()
    isolate_configuration(monkeypatch, directory)
    return directory


def migrated_app(database_url: str) -> Flask:
    """A testing application on `database_url`, its schema upgraded to the migrations' head."""
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    with app.app_context():
        flask_migrate.upgrade()
    return app


def dispose(app: Flask) -> None:
    """Close the application's database connections (before its database is dropped)."""
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session: `app` starts each test from a copy,
    which takes milliseconds where running the migrations takes a good part of a second."""
    directory = tmp_path_factory.mktemp("migrated-sqlite")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_configuration(monkeypatch, directory)
        dispose(migrated_app(f"sqlite:///{directory / 'template.db'}"))
    return directory / "template.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, instance_dir: Path) -> Iterator[Flask]:
    """The application on an empty database migrated to head: a fresh SQLite file in the
    instance folder (a copy of `migrated_sqlite_template`), and then, for the same test, the
    session's PostgreSQL database emptied (`migrated_postgres_database`)."""
    if request.param == "postgresql":
        database_url = request.getfixturevalue("migrated_postgres_database")
        empty_postgres_database(database_url)
    else:
        database_url = copy_sqlite_template(request.getfixturevalue("migrated_sqlite_template"), instance_dir)
    application = create_app({"DATABASE_URL": database_url, "TESTING": True})
    yield application
    dispose(application)


def copy_sqlite_template(template: Path, directory: Path) -> str:
    database = directory / "test.db"
    source, target = sqlite3.connect(template), sqlite3.connect(database)
    try:
        source.backup(target)  # a consistent copy whatever is still in the write-ahead log
    finally:
        source.close()
        target.close()
    return f"sqlite:///{database}"


@pytest.fixture(scope="session")
def migrated_postgres_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One PostgreSQL database for the session, migrated to head once; each test using `app`
    empties it first (creating and dropping a database per test would take over a second)."""
    with throwaway_postgres_database() as url, pytest.MonkeyPatch.context() as monkeypatch:
        isolate_configuration(monkeypatch, tmp_path_factory.mktemp("migrated-postgresql"))
        dispose(migrated_app(url))
        yield url


def empty_postgres_database(url: str) -> None:
    """Deletes every row of every table (the migration's version row aside). The audit log's
    append-only trigger refuses TRUNCATE, so it is switched off for this one transaction."""
    tables = [table.name for table in db.metadata.sorted_tables]
    libpq_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq_url) as connection:
        connection.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        connection.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
        )
        connection.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


@contextmanager
def throwaway_postgres_database() -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty PostgreSQL database, dropped afterwards; the test is
    skipped, saying why, when no server answers."""
    server = make_url(POSTGRES_ADMIN_URL)
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {server.host}:{server.port or 5432}: {exc}")
    name = f"anchorline_test_{uuid.uuid4().hex[:16]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        finally:
            # FORCE ends connections a failed test may have left open.
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database of the test's own, dropped after it."""
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, instance_dir: Path) -> str:
    """The URL of a new, empty database: the test runs once on SQLite, once on PostgreSQL."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{instance_dir / 'test.db'}"


@pytest.fixture
def app_on_each_backend(database_url: str) -> Iterator[Flask]:
    """The application migrated to head, once on SQLite and once on PostgreSQL."""
    application = migrated_app(database_url)
    yield application
    dispose(application)


@pytest.fixture
def db_session(app: Flask) -> Iterator[Any]:
    """The app's database session inside an application context, for service-level tests."""
    with app.app_context():
        yield db.session
        db.session.rollback()
