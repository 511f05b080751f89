"""`onetrip token ...`: bearer tokens for integrations, kiosks and staff consoles."""

from __future__ import annotations

import typer

from onetrip.identity.rules import Role

app = typer.Typer(help="Bearer tokens (shown once; only their hash is stored).",
                  no_args_is_help=True)


@app.command("create")
def create(role: Role = typer.Option(..., help="Role the token acts as."),
           hospital: str | None = typer.Option(None, help="Hospital code it is scoped to."),
           label: str = typer.Option("", help="Who or what holds it, e.g. 'kiosk 3 hall A'."),
           ) -> None:
    """Create a token and print it once."""
    from onetrip.db import session_scope
    from onetrip.errors import OnetripError
    from onetrip.identity import service

    try:
        with session_scope() as db:
            _row, secret = service.create_token(db, role=role, hospital_code=hospital,
                                                label=label)
    except OnetripError as exc:
        typer.echo(f"{exc.code}: {exc.text}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(secret)
