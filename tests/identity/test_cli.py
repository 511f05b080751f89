"""`onetrip token|identity|audit` commands (they commit: names are unique per run)."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from typer.testing import CliRunner

from onetrip.cli import app
from onetrip.db import session_scope
from onetrip.identity import auth


def test_token_create_prints_a_token_that_authenticates(engine: Engine) -> None:
    result = CliRunner().invoke(app, ["token", "create", "--role", "kiosk", "--hospital",
                                      "sfsrmyy", "--label", "大厅3号自助机"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip()
    with session_scope() as db:
        principal = auth.authenticate_token(db, secret)
    assert principal.role.value == "kiosk" and principal.label == "大厅3号自助机"
    refused = CliRunner().invoke(app, ["token", "create", "--role", "window"])
    assert refused.exit_code == 2 and "hospital_required" in refused.output


def test_staff_create_prints_password_and_totp_for_admins(engine: Engine) -> None:
    username = f"cli-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(app, ["identity", "staff-create", "--username", username,
                                      "--name", "信息科", "--role", "hospital_admin",
                                      "--hospital", "sfsrmyy"])
    assert result.exit_code == 0, result.output
    assert "password: " in result.output and "totp secret: " in result.output
    again = CliRunner().invoke(app, ["identity", "staff-create", "--username", username,
                                     "--name", "信息科", "--role", "doctor",
                                     "--hospital", "sfsrmyy"])
    assert again.exit_code == 2 and "username_taken" in again.output


def test_new_key_and_rekey_commands(engine: Engine) -> None:
    key = CliRunner().invoke(app, ["identity", "new-key"]).output.strip()
    assert len(key) == 44
    result = CliRunner().invoke(app, ["identity", "rekey"])
    assert result.exit_code == 0 and "values still under old keys: 0" in result.output
