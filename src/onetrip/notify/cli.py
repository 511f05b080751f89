"""`onetrip notify ...`: the outbox worker."""

from __future__ import annotations

import logging
import time

import typer

from onetrip.config import get_settings

app = typer.Typer(help="Reminders: deliver the outbox.", no_args_is_help=True)


@app.command()
def worker(batch: int = typer.Option(50, min=1, help="Rows claimed per transaction."),
           poll: float = typer.Option(1.0, help="Seconds to wait when nothing is due."),
           stop_when_idle: float = typer.Option(
               0.0, help="Exit after this many seconds with nothing due (0: run for ever).")
           ) -> None:
    """Deliver due messages with retries; run several, on several machines (PostgreSQL)."""
    from onetrip.notify import service

    logging.basicConfig(level=get_settings().log_level)
    sent = 0
    idle_since = time.monotonic()
    while True:
        done = service.drain_once(batch=batch)
        sent += done
        if done:
            idle_since = time.monotonic()
            continue
        if stop_when_idle and time.monotonic() - idle_since >= stop_when_idle:
            break
        time.sleep(poll)
    typer.echo(f"worker done: {sent} handled")
