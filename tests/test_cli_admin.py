"""`anchorline admin create-operator` and `create-user` (backend/commands/admin.py), run with
click's CliRunner against a migrated SQLite database named by DATABASE_URL."""
from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import select

from backend.cli import main
from backend.extensions import db
from backend.models import KycStatus, Organisation, Role, SigningKey, User
from backend.security.passwords import verify_password
from tests import domain_factories as factories

PASSWORD = "correct horse battery staple"
OPERATOR = ["--name", "Anchorline Operations", "--legal-identifier", "0088:7300010000099",
            "--email", "ops@example.com"]


@pytest.fixture
def database(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The migrated test database, named to the CLI through DATABASE_URL; `app` reads it back."""
    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    return app


def admin(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["admin", *args], input=stdin)


def users(app: Flask) -> dict[str, dict[str, Any]]:
    with app.app_context():
        return {user.email: {"organisation_id": user.organisation_id, "display_name": user.display_name,
                             "password_hash": user.password_hash}
                for user in db.session.scalars(select(User))}


def test_create_operator_bootstraps_the_operator_and_its_first_user(database):
    result = admin("create-operator", *OPERATOR, "--password-stdin", stdin=PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    assert "created the operator organisation 'Anchorline Operations'" in result.output
    with database.app_context():
        (operator,) = db.session.scalars(select(Organisation)).all()
        assert (operator.roles, operator.kyc_status, operator.chain_address) == (
            Role.OPERATOR, KycStatus.APPROVED, None)
        assert db.session.scalar(select(SigningKey)) is None
        operator_id = operator.id
    user = users(database)["ops@example.com"]
    assert (user["organisation_id"], user["display_name"]) == (operator_id, "ops@example.com")
    assert verify_password(user["password_hash"], PASSWORD)


def test_the_password_prompt_hides_and_confirms_it(database):
    result = admin("create-operator", *OPERATOR, "--display-name", "First Operator",
                   stdin=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert verify_password(users(database)["ops@example.com"]["password_hash"], PASSWORD)


def test_a_second_operator_is_refused_with_a_clear_message(database):
    admin("create-operator", *OPERATOR, "--password-stdin", stdin=PASSWORD + "\n")

    result = admin("create-operator", "--name", "Another", "--legal-identifier", "0088:1", "--email",
                   "other@example.com", "--password-stdin", stdin=PASSWORD + "\n")

    assert result.exit_code == 1
    assert "Error: the operator organisation exists already: Anchorline Operations" in result.output
    assert "Traceback" not in result.output
    assert set(users(database)) == {"ops@example.com"}


def test_invalid_details_are_named(database):
    result = admin("create-operator", "--name", "Ops", "--legal-identifier", "nonsense", "--email", "ops@example.com",
                   "--password-stdin", stdin="short\n")

    assert result.exit_code == 1
    assert "legal_identifier: expected scheme:value" in result.output
    with database.app_context():
        assert db.session.scalars(select(Organisation)).all() == []


def test_create_user_adds_a_user_to_an_organisation_found_by_its_identifier(database):
    admin("create-operator", *OPERATOR, "--password-stdin", stdin=PASSWORD + "\n")
    with database.app_context():
        supplier = factories.organisation(Role.SUPPLIER)
        db.session.commit()
        supplier_id, identifier = supplier.id, supplier.legal_identifier

    by_identifier = admin("create-user", "--organisation", identifier, "--email", "li@example.com",
                          "--display-name", "Li Wei", "--password-stdin", stdin=PASSWORD + "\n")
    by_id = admin("create-user", "--organisation", str(supplier_id), "--email", "wang@example.com",
                  "--display-name", "Wang Fang", "--password-stdin", stdin=PASSWORD + "\n")

    assert (by_identifier.exit_code, by_id.exit_code) == (0, 0), by_identifier.output + by_id.output
    assert "created the user li@example.com" in by_identifier.output
    created = users(database)
    assert created["li@example.com"]["organisation_id"] == created["wang@example.com"]["organisation_id"] == supplier_id


def test_create_user_refusals(database):
    no_operator = admin("create-user", "--organisation", "1", "--email", "a@example.com", "--display-name", "A",
                        "--password-stdin", stdin=PASSWORD + "\n")
    assert no_operator.exit_code == 1 and "create-operator" in no_operator.output

    admin("create-operator", *OPERATOR, "--password-stdin", stdin=PASSWORD + "\n")
    unknown = admin("create-user", "--organisation", "0088:404", "--email", "a@example.com", "--display-name", "A",
                    "--password-stdin", stdin=PASSWORD + "\n")
    assert unknown.exit_code == 1 and "no organisation '0088:404'" in unknown.output
    taken = admin("create-user", "--organisation", "0088:7300010000099", "--email", "OPS@example.com",
                  "--display-name", "A", "--password-stdin", stdin=PASSWORD + "\n")
    assert taken.exit_code == 1 and "exists already" in taken.output
    assert set(users(database)) == {"ops@example.com"}
