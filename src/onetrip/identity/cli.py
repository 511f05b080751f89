"""`onetrip token ...`, `onetrip identity ...` and `onetrip audit ...` commands."""

from __future__ import annotations

import typer

from onetrip.cli_errors import reported
from onetrip.identity.rules import Role

app = typer.Typer(help="Bearer tokens (shown once; only their hash is stored).",
                  no_args_is_help=True)
identity_app = typer.Typer(help="Staff accounts, key rotation, the development SMS outbox.",
                           no_args_is_help=True)
audit_app = typer.Typer(help="The append-only, hash-chained audit trail.", no_args_is_help=True)


DEPARTMENT_HELP = "Department code (department_admin only): it manages this department " \
    "and the sub-departments under it."


@app.command("create")
def create(role: Role = typer.Option(..., help="Role the token acts as."),
           hospital: str | None = typer.Option(None, help="Hospital code it is scoped to."),
           department: str | None = typer.Option(None, help=DEPARTMENT_HELP),
           label: str = typer.Option("", help="Who or what holds it, e.g. 'kiosk 3 hall A'."),
           ) -> None:
    """Create a token and print it once."""
    from onetrip.db import session_scope
    from onetrip.identity import service

    with reported(), session_scope() as db:
        _row, secret = service.create_token(db, role=role, hospital_code=hospital,
                                            department_code=department, label=label)
    typer.echo(secret)


@app.command("list")
def list_tokens(hospital: str | None = typer.Option(None, help="Only this hospital's."),
                revoked: bool = typer.Option(False, "--revoked", help="Include revoked ones.")
                ) -> None:
    """List tokens (id, prefix, role, hospital, label); never the secrets."""
    from onetrip.db import session_scope
    from onetrip.identity import auth
    from onetrip.org.models import Hospital

    with reported(), session_scope() as db:
        for t in auth.list_tokens(db, hospital_code=hospital, include_revoked=revoked):
            h = db.get(Hospital, t.hospital_id) if t.hospital_id else None
            state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
            typer.echo(f"{t.id:>6}  {t.prefix:<10}  {t.role:<16} {h.code if h else '-':<10} "
                       f"{t.created_at:%Y-%m-%d}  {state:<22} {t.label}")


@app.command("revoke")
def revoke(token: str = typer.Argument(..., help="The token's id or prefix from "
                                       "`onetrip token list`, or the token itself.")) -> None:
    """Revoke a token at once (a kiosk taken out of service, a lost desk PC)."""
    from onetrip.db import session_scope
    from onetrip.identity import auth

    with reported(), session_scope() as db:
        row, now = auth.revoke_token(db, token)
        ident, label, when = row.id, row.label, row.revoked_at
    assert when is not None
    held_by = f" {label}" if label else ""
    typer.echo(f"{'revoked' if now else 'already revoked'}: token {ident}{held_by} "
               f"({when:%Y-%m-%d %H:%M} UTC)")


@identity_app.command("staff-create")
def staff_create(username: str = typer.Option(...), name: str = typer.Option(...),
                 role: Role = typer.Option(...),
                 hospital: str | None = typer.Option(None, help="Hospital code."),
                 department: str | None = typer.Option(None, help=DEPARTMENT_HELP),
                 practitioner: str | None = typer.Option(
                     None, help="Practitioner code (doctor only): the doctor this account is.")
                 ) -> None:
    """Create a staff account; prints the password and, for admins, the TOTP secret once."""
    from onetrip.db import session_scope
    from onetrip.identity import auth

    with reported(), session_scope() as db:
        new = auth.create_staff(db, username=username, name=name, role=role,
                                hospital_code=hospital, department_code=department,
                                practitioner_code=practitioner)
    typer.echo(f"username: {username}\npassword: {new.password}")
    if new.totp_secret:
        typer.echo(f"totp secret: {new.totp_secret} (add it to an authenticator app)")


@identity_app.command("staff-update")
def staff_update(username: str = typer.Option(...),
                 practitioner: str | None = typer.Option(
                     None, help="Link a doctor's account to this practitioner code; '-' "
                     "removes the link."),
                 department: str | None = typer.Option(None, help="A department admin's new "
                                                       "department code.")) -> None:
    """Change a staff account's practitioner link or department."""
    from onetrip.db import session_scope
    from onetrip.identity import staff as staff_service

    if practitioner is None and department is None:
        typer.echo("nothing to change: give --practitioner or --department", err=True)
        raise typer.Exit(2)
    with reported(), session_scope() as db:
        staff = staff_service.find_staff(db, username)
        if practitioner is not None:
            staff_service.link_practitioner(db, by=None, staff=staff,
                                            practitioner_code=None if practitioner == "-"
                                            else practitioner)
        if department is not None:
            staff_service.move_to_department(db, by=None, staff=staff,
                                             department_code=department)
    typer.echo(f"updated: {username}")


@identity_app.command("new-key")
def new_key() -> None:
    """Print a fresh random 32-byte key (for ONETRIP_DATA_KEYS or ONETRIP_INDEX_KEY)."""
    from onetrip.identity.crypto import new_key as make

    typer.echo(make())


@identity_app.command("rekey")
def rekey() -> None:
    """Re-encrypt under the current data key and recompute blind indexes (key rotation)."""
    from onetrip.db import session_scope
    from onetrip.identity import keys

    with session_scope() as db:
        counts = keys.rekey(db)
        left = keys.values_under_old_keys(db)
    typer.echo("rekeyed: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    typer.echo(f"values still under old keys: {left}")


@identity_app.command("sms-outbox")
def sms_outbox(phone: str = typer.Argument(..., help="The phone the messages went to."),
               limit: int = 5) -> None:
    """Show the latest messages of the development SMS sender to one phone."""
    from onetrip.db import session_scope
    from onetrip.identity import sms

    with reported(), session_scope() as db:
        for m in sms.outbox_messages(db, phone, limit=limit):
            typer.echo(f"{m.created_at:%Y-%m-%d %H:%M:%S} {m.body}")


@audit_app.command("verify")
def verify() -> None:
    """Recompute the audit hash chain; exit 1 and name the first broken row if tampered."""
    from onetrip.db import session_scope
    from onetrip.identity import audit

    with session_scope() as db:
        report = audit.verify_chain(db)
    if report.ok:
        typer.echo(f"审计链完整 (audit chain intact): {report.rows} rows")
        return
    typer.echo(f"审计链在第 {report.first_broken_id} 行断开 (audit chain broken at row "
               f"{report.first_broken_id}) after {report.rows} intact rows", err=True)
    raise typer.Exit(1)


def print_demo_credentials(seed: int) -> None:
    """Show the demo staff accounts and patient phones (demo data only)."""
    from onetrip.identity.demo import (
        DEMO_DEPARTMENT,
        DEMO_PATIENT_PHONE,
        DEMO_PROXY_PHONE,
        demo_staff,
    )
    from onetrip.identity.rules import ROLE_LABELS

    typer.echo("demo staff (sign in at /staff/sign-in; demo credentials, never for real use):")
    for s in demo_staff(seed):
        line = f"  {ROLE_LABELS[s.role]:<8} {s.username:<16} password {s.password}"
        if s.totp_secret:
            line += f"  totp secret {s.totp_secret}"
        if s.department_code:
            line += f"  科室 {DEMO_DEPARTMENT[1]} ({s.department_code})"
        if s.practitioner_code:
            line += f"  关联医生工号 {s.practitioner_code}"
        typer.echo(line)
    typer.echo(f"demo patient phones (sign in at /sign-in, code from `onetrip identity "
               f"sms-outbox PHONE`): 本人 {DEMO_PATIENT_PHONE}, 家属代理 {DEMO_PROXY_PHONE}")
