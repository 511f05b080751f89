"""`onetrip token|identity|audit` commands (they commit: names are unique per run)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from onetrip.cli import app
from onetrip.db import session_scope
from onetrip.identity import auth
from onetrip.identity.models import Staff
from onetrip.org.models import Hospital, Practitioner


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


def test_token_revoke_takes_a_decommissioned_kiosk_out_at_once(engine: Engine) -> None:
    label = f"拆除的自助机-{uuid.uuid4().hex[:6]}"
    secret = CliRunner().invoke(app, ["token", "create", "--role", "kiosk", "--hospital",
                                      "sfsrmyy", "--label", label]).output.strip()
    listed = CliRunner().invoke(app, ["token", "list", "--hospital", "sfsrmyy"])
    assert label in listed.output and secret not in listed.output  # never the secret
    line = next(x for x in listed.output.splitlines() if label in x)
    token_id, prefix = line.split()[:2]
    assert secret.startswith(prefix)
    result = CliRunner().invoke(app, ["token", "revoke", token_id])
    assert result.exit_code == 0 and f"revoked: token {token_id} {label}" in result.output
    with session_scope() as db, pytest.raises(auth.InvalidToken):
        auth.authenticate_token(db, secret)
    again = CliRunner().invoke(app, ["token", "revoke", prefix])
    assert again.exit_code == 0 and "already revoked" in again.output
    assert label not in CliRunner().invoke(app, ["token", "list"]).output
    unknown = CliRunner().invoke(app, ["token", "revoke", "ot_nosuch"])
    assert unknown.exit_code == 2 and "token_not_found" in unknown.output


def test_staff_create_and_update_take_the_department_and_the_practitioner(
        engine: Engine) -> None:
    tag = uuid.uuid4().hex[:6]
    dadmin = CliRunner().invoke(app, [
        "identity", "staff-create", "--username", f"cli-dadmin-{tag}", "--name", "排班员",
        "--role", "department_admin", "--hospital", "sfsrmyy", "--department", "xhnk"])
    assert dadmin.exit_code == 0 and "totp secret: " in dadmin.output, dadmin.output
    missing = CliRunner().invoke(app, [
        "identity", "staff-create", "--username", f"cli-dadmin2-{tag}", "--name", "排班员",
        "--role", "department_admin", "--hospital", "sfsrmyy"])
    assert missing.exit_code == 2 and "department_required" in missing.output
    with session_scope() as db:
        code = db.scalars(select(Practitioner.code).join(Hospital).where(
            Hospital.code == "sfsdery").order_by(Practitioner.id.desc())).first()
    doctor = f"cli-doc-{tag}"
    made = CliRunner().invoke(app, [
        "identity", "staff-create", "--username", doctor, "--name", "医生", "--role", "doctor",
        "--hospital", "sfsdery", "--practitioner", str(code)])
    assert made.exit_code == 0, made.output
    wrong = CliRunner().invoke(app, ["identity", "staff-update", "--username", doctor,
                                     "--department", "xhnk"])
    assert wrong.exit_code == 2 and "department_not_applicable" in wrong.output
    unlinked = CliRunner().invoke(app, ["identity", "staff-update", "--username", doctor,
                                        "--practitioner", "-"])
    assert unlinked.exit_code == 0, unlinked.output
    with session_scope() as db:
        staff = db.scalar(select(Staff).where(Staff.username == doctor))
        assert staff is not None and staff.practitioner_id is None
        assert db.scalar(select(Staff.department_id).where(
            Staff.username == f"cli-dadmin-{tag}")) is not None


def test_demo_prints_the_department_admin_and_the_linked_doctor(engine: Engine) -> None:
    result = CliRunner().invoke(app, ["demo"])  # already loaded: changes nothing, prints
    assert result.exit_code == 0 and "nothing changed" in result.output
    lines = {line.split()[1]: line for line in result.output.splitlines()
             if line.startswith("  ") and "demo-" in line}
    assert "totp secret" in lines["demo-dadmin"] and "心血管内科 (xxgnk)" in lines["demo-dadmin"]
    assert "关联医生工号 d0001" in lines["demo-doctor"] and "totp" not in lines["demo-doctor"]
