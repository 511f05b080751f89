"""How an `onetrip` command reports a refusal: the error's code and Chinese text on stderr,
each itemised problem below it (a bad line of a file), and exit status 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from onetrip.errors import OnetripError


@contextmanager
def reported(item: str = "line") -> Iterator[None]:
    """Turn an OnetripError raised inside into its report and exit status 2; ``item``
    names what a problem's number counts (a file's lines, a sheet's rows)."""
    try:
        yield
    except OnetripError as exc:
        typer.echo(f"{exc.code}: {exc.text}", err=True)
        for problem in exc.detail if isinstance(exc.detail, list) else []:
            if isinstance(problem, dict):
                typer.echo(f"  {item} {problem.get('line')}: {problem.get('error')}", err=True)
        raise typer.Exit(2) from exc
