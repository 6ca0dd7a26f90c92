"""Alembic's environment for Anchorline, run by Flask-Migrate (`flask --app backend.app db ...`).

The database and the target metadata are the application's (backend.extensions.db). Every
migration must run on SQLite and on PostgreSQL.
"""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy.types import TypeDecorator

config = context.config
# Keep the loggers that exist already (the application's, a test run's): fileConfig would
# otherwise disable every logger it does not name.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db
config.set_main_option("sqlalchemy.url", target_db.engine.url.render_as_string(hide_password=False).replace("%", "%%"))

# Autogenerate writes batch operations on every backend (render_as_batch): SQLite can only
# alter a table by copying it, and a revision generated against PostgreSQL must run on
# SQLite too.
CONFIGURE_OPTIONS = {"render_as_batch": True, "compare_type": True}


def render_item(type_, obj, autogen_context):
    """Write Anchorline's column types (backend.models.types) as the SQLAlchemy type they
    store, so revisions do not import application code that may change after them."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def process_revision_directives(migration_context, revision, directives):
    """`flask db migrate` writes no revision when nothing changed."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_offline():
    """Write the migrations' SQL instead of running it (`flask db upgrade --sql`)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_db.metadata,
        literal_binds=True,
        render_item=render_item,
        **CONFIGURE_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    with target_db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch operation drops and recreates a table; with foreign keys enforced, that
            # would delete or refuse the rows that refer to it. They are checked afterwards.
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_db.metadata,
                render_item=render_item,
                process_revision_directives=process_revision_directives,
                **CONFIGURE_OPTIONS,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if violations:
                    raise RuntimeError(f"the migration left rows with dangling foreign keys: {violations}")
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
