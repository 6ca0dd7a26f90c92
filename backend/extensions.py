"""The Flask extensions, made once here and bound to an application by `create_app`.

Models import `db` from this module; the application factory calls each extension's `init_app`.
"""
from __future__ import annotations

import sqlite3
from typing import Any

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

# Every constraint and index gets a name derived from its table and columns, so Alembic
# produces the same names on SQLite and PostgreSQL and a later migration can drop or alter
# them by name (SQLite would otherwise leave them unnamed, PostgreSQL would invent names).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# How long an SQLite connection waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 5000


class Model(DeclarativeBase):
    """Base class of every Anchorline table (through `db.Model`)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Model)
migrate = Migrate()
limiter = Limiter(key_func=get_remote_address)
api = Api()
# The portal's (backend/portal): who is signed in, CSRF tokens on its forms, its languages.
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


@event.listens_for(Engine, "connect")
def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    """SQLite leaves foreign keys unenforced unless asked on each connection. The web server and
    the workers share one database file: WAL lets readers go on while one process writes, and
    the busy timeout makes a writer wait for the lock instead of failing at once."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
