"""The migrations: one head; the schema they build is exactly the models' on SQLite and on
PostgreSQL; they go down to nothing and up again; and the audit log they make is append-only,
for the ORM and for raw SQL alike."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import Connection, delete, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from backend.app import MIGRATIONS_DIR
from backend.extensions import db
from backend.models import AppendOnlyError, AuditLog
from tests.db_fixtures import dispose, migrated_app

HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def schema_differences(application: Flask) -> list[Any]:
    """What autogenerate would write to turn the database's schema into the models'."""
    with application.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, db.metadata)


def audit_log_guards(connection: Connection) -> set[str]:
    """The names of the triggers (and on PostgreSQL, trigger functions) in the database."""
    if connection.dialect.name == "postgresql":
        triggers = connection.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars()
        functions = connection.execute(text(
            "SELECT proname FROM pg_proc JOIN pg_namespace ON pg_namespace.oid = pronamespace"
            " WHERE nspname = 'public'"
        )).scalars()
        return {*triggers, *functions}
    return set(connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())


def add_audit_entry(application: Flask) -> None:
    with application.app_context():
        db.session.add(AuditLog(action="invoice.confirm", subject_type="invoice", subject_id="1"))
        db.session.commit()


def test_the_migrations_have_exactly_one_head() -> None:
    assert len(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()) == 1


def test_the_migrated_schema_is_the_models_schema(app_on_each_backend: Flask) -> None:
    assert schema_differences(app_on_each_backend) == []


def test_downgrade_to_base_removes_everything_and_upgrade_rebuilds_it(database_url: str) -> None:
    application = migrated_app(database_url)
    try:
        with application.app_context():
            flask_migrate.downgrade(revision="base")
            assert inspect(db.engine).get_table_names() == ["alembic_version"]
            with db.engine.connect() as connection:
                assert audit_log_guards(connection) == set()
            flask_migrate.upgrade()
            with db.engine.connect() as connection:
                assert audit_log_guards(connection)
                assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
        assert schema_differences(application) == []
    finally:
        dispose(application)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET action = 'invoice.dispute'", "DELETE FROM audit_log"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_rewrite_the_audit_log(app_on_each_backend: Flask, statement: str) -> None:
    add_audit_entry(app_on_each_backend)
    with app_on_each_backend.app_context(), db.engine.connect() as connection:
        with pytest.raises(IntegrityError, match="audit_log is append-only"):
            connection.execute(text(statement))
        connection.rollback()
        assert connection.execute(text("SELECT action FROM audit_log")).scalars().all() == ["invoice.confirm"]


def test_postgresql_refuses_to_truncate_the_audit_log(postgres_url: str, instance_dir: Path) -> None:
    application = migrated_app(postgres_url)
    try:
        add_audit_entry(application)
        with application.app_context(), db.engine.connect() as connection:
            with pytest.raises(IntegrityError, match="audit_log is append-only"):
                connection.execute(text("TRUNCATE audit_log"))
            connection.rollback()
            assert connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 1
    finally:
        dispose(application)


def test_the_orm_refuses_to_change_or_delete_an_audit_entry(app: Flask) -> None:
    add_audit_entry(app)
    with app.app_context():
        entry = db.session.execute(select(AuditLog)).scalar_one()
        entry.action = "invoice.dispute"
        with pytest.raises(AppendOnlyError):
            db.session.flush()
        db.session.rollback()

        db.session.delete(db.session.get(AuditLog, entry.id))
        with pytest.raises(AppendOnlyError):
            db.session.flush()
        db.session.rollback()

        with pytest.raises(AppendOnlyError):
            db.session.execute(update(AuditLog).values(action="invoice.dispute"))
        with pytest.raises(AppendOnlyError):
            db.session.execute(delete(AuditLog))
        db.session.rollback()
        assert db.session.execute(select(AuditLog.action)).scalars().all() == ["invoice.confirm"]


def test_flask_db_upgrade_builds_the_schema_from_any_directory(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "ANCHORLINE_INSTANCE": str(tmp_path / "instance"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "backend.app", "db", "upgrade"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    connection = sqlite3.connect(database)
    try:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (HEAD,)
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()
    assert {"organisations", "invoices", "chain_transactions", "audit_log"} <= tables
