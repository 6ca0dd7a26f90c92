"""The application factory: where settings come from, the instance folder's defaults, the
health check, the OpenAPI document, and how SQLite connections are set up."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

import backend.app
from backend import paths
from backend.app import create_app
from backend.config import load_config
from backend.extensions import SQLITE_BUSY_TIMEOUT_MS, db


def test_the_application_is_made_by_the_factory_only(instance_dir: Path) -> None:
    assert not hasattr(backend.app, "app")
    assert isinstance(create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "s"}), Flask)


def test_settings_come_from_the_environment(instance_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = {
        "DATABASE_URL": "postgresql://anchorline@db.internal:5432/anchorline",
        "SECRET_KEY": "from-the-environment",
        "ETH_RPC_URL": "http://besu.internal:8545",
        "REDIS_URL": "redis://queue.internal:6379/2",
        "RATELIMIT_STORAGE_URI": "redis://queue.internal:6379/3",
        "MAX_CONTENT_LENGTH": "2048",
        "DOCUMENTS_DIR": "/srv/anchorline/documents",
        "OPENAPI_SWAGGER_UI_URL": "/static/swagger-ui/",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    config = load_config(None, instance_dir=instance_dir)

    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://anchorline@db.internal:5432/anchorline"
    assert config["MAX_CONTENT_LENGTH"] == 2048
    assert config["DOCUMENTS_DIR"] == Path("/srv/anchorline/documents")
    for name in ("SECRET_KEY", "ETH_RPC_URL", "REDIS_URL", "RATELIMIT_STORAGE_URI", "OPENAPI_SWAGGER_UI_URL"):
        assert config[name] == environment[name]
    assert not (instance_dir / "secret_key").exists()


def test_the_mapping_given_to_the_factory_overrides_the_environment(
    instance_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{instance_dir / 'from-environment.db'}")
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "2048")

    application = create_app({
        "DATABASE_URL": f"sqlite:///{instance_dir / 'overridden.db'}",
        "MAX_CONTENT_LENGTH": 4096,
        "TESTING": True,
    })

    assert application.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance_dir / 'overridden.db'}"
    assert application.config["MAX_CONTENT_LENGTH"] == 4096
    assert application.testing


def test_by_default_everything_lives_in_the_instance_folder(tmp_path: Path, instance_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = tmp_path / "elsewhere" / "instance"
    monkeypatch.setattr(paths, "INSTANCE_DIR", fresh)

    application = create_app()

    assert application.instance_path == str(fresh)
    assert application.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{fresh / 'anchorline.db'}"
    assert application.config["DOCUMENTS_DIR"] == fresh / "documents"
    assert application.config["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024
    assert application.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert application.test_client().get("/healthz").status_code == 200
    assert (fresh / "anchorline.db").is_file()


def test_the_secret_key_is_generated_once_and_readable_by_its_owner_only(instance_dir: Path) -> None:
    first = create_app({"DATABASE_URL": "sqlite://"}).config["SECRET_KEY"]
    second = create_app({"DATABASE_URL": "sqlite://"}).config["SECRET_KEY"]

    key_file = instance_dir / "secret_key"
    assert first == second == key_file.read_text()
    assert len(first) == 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [path.name for path in instance_dir.iterdir()] == ["secret_key"]  # no temporary file left


def test_health_check_pings_the_database(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_check_reports_an_unreachable_database(instance_dir: Path) -> None:
    application = create_app({"DATABASE_URL": f"sqlite:///{instance_dir / 'no-such-directory' / 'x.db'}"})
    response = application.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"


def test_the_openapi_document_is_served(app: Flask) -> None:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Anchorline", "version": "v1"}


def test_the_interactive_docs_load_their_scripts_from_this_server(instance_dir: Path) -> None:
    page = create_app({"DATABASE_URL": "sqlite://"}).test_client().get("/api/v1/docs")
    assert page.status_code == 200
    assert "/api/v1/docs/assets/swagger-ui-bundle.js" in page.get_data(as_text=True)

    elsewhere = create_app({"DATABASE_URL": "sqlite://", "OPENAPI_SWAGGER_UI_URL": "/static/swagger-ui/"})
    assert "/static/swagger-ui/swagger-ui-bundle.js" in elsewhere.test_client().get("/api/v1/docs").get_data(as_text=True)
    # ReDoc would load its script from a CDN: it is offered only when told where a local copy is.
    assert create_app({"DATABASE_URL": "sqlite://"}).test_client().get("/api/v1/redoc").status_code == 404


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_sqlite_connections_enforce_foreign_keys_use_wal_and_wait_for_locks(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() == SQLITE_BUSY_TIMEOUT_MS
