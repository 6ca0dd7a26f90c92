"""`anchorline admin`: the platform operator's work from the shell.

`create-operator` is the bootstrap: the operator's organisation (KYC approved; its ledger key is
the deployer's, so it gets no signing key) and its first user. `create-user` adds a user to any
organisation, acting as the operator organisation. Both run in `create_app()`'s context, on the
database DATABASE_URL names; a password is asked for twice without echo, or read from the first
line of standard input with --password-stdin.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import click

from backend.app import create_app
from backend.services import accounts, organisations
from backend.services.actors import Actor
from backend.services.errors import ServiceError

P = ParamSpec("P")
R = TypeVar("R")

password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)


@click.group()
def admin() -> None:
    """Create the operator, and users of any organisation."""


def in_app_context(command: Callable[P, R]) -> Callable[P, R]:
    """Runs `command` in a new application's context and turns a refusal by the services into a
    one-line error (exit status 1) instead of a traceback."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with create_app().app_context():
            try:
                return command(*args, **kwargs)
            except ServiceError as exc:
                raise click.ClickException(_describe(exc)) from exc

    return run


@admin.command("create-operator")
@click.option("--name", required=True, help="The operator organisation's name.")
@click.option("--legal-identifier", required=True, help="Its scheme:value identifier or LEI.")
@click.option("--email", required=True, help="The first operator user's e-mail address (the login).")
@click.option("--display-name", help="The first user's name (default: the e-mail address).")
@password_stdin_option
@in_app_context
def create_operator(name: str, legal_identifier: str, email: str, display_name: str | None,
                    password_stdin: bool) -> None:
    """Create the platform operator's organisation and its first user (once)."""
    operator, user = organisations.create_operator(
        name=name, legal_identifier=legal_identifier, email=email, display_name=display_name or email,
        password=_read_password(password_stdin))
    click.echo(f"created the operator organisation {operator.name!r} (id {operator.id}) "
               f"and its user {user.email} (id {user.id})")


@admin.command("create-user")
@click.option("--organisation", "organisation_reference", required=True,
              help="The organisation: its id, ledger address or legal identifier.")
@click.option("--email", required=True, help="The user's e-mail address (the login).")
@click.option("--display-name", required=True, help="The user's name.")
@password_stdin_option
@in_app_context
def create_user(organisation_reference: str, email: str, display_name: str, password_stdin: bool) -> None:
    """Add a user to an organisation, as the operator."""
    operator = organisations.operator_organisation()
    if operator is None:
        raise click.ClickException("there is no operator yet: run `anchorline admin create-operator` first")
    organisation = organisations.find_organisation(organisation_reference)
    if organisation is None:
        raise click.ClickException(f"no organisation {organisation_reference!r}: give its id, ledger address "
                                   "or legal identifier")
    user = accounts.create_user(Actor(organisation=operator), organisation, email=email, display_name=display_name,
                                password=_read_password(password_stdin))
    click.echo(f"created the user {user.email} (id {user.id}) of {organisation.name!r}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _describe(error: ServiceError) -> str:
    """A refusal in one line: what went wrong, then each field's problems."""
    fields = "; ".join(f"{field}: {', '.join(messages)}" for field, messages in error.errors.items())
    return f"{error.detail} ({fields})" if fields else error.detail
