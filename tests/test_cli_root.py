"""`onetrip migrate` and `onetrip identity sms-outbox PHONE`: bringing a hospital's database
up to date, and reading the development SMS outbox for a sign-in code (ID-1: real-name
booking with a reachable phone)."""

from __future__ import annotations

import re
import uuid

import pytest
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from typer.testing import CliRunner

from onetrip import migrate
from onetrip.cli import app
from onetrip.config import get_settings
from onetrip.db import make_engine, session_scope
from onetrip.identity import sms
from tests import racekit

OLD = "0015_waitlist_closed"


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_migrate_brings_an_old_database_to_a_revision_then_to_head(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a database of its own at an old revision, not the test database."""
    url, drop = racekit.fresh_database("climigrate", revision=OLD)
    settings = get_settings().model_copy(update={"database_url": url})
    monkeypatch.setattr("onetrip.cli.get_settings", lambda: settings)
    scripts = ScriptDirectory.from_config(migrate.alembic_config(url))
    head = scripts.get_current_head()
    step = scripts.get_revision(head).down_revision if head else None
    assert isinstance(step, str) and step != OLD
    try:
        assert _revision(url) == OLD
        one = CliRunner().invoke(app, ["migrate", "--revision", step])
        assert one.exit_code == 0 and f"database at {step}" in one.output, one.output
        assert _revision(url) == step
        up = CliRunner().invoke(app, ["migrate"])
        assert up.exit_code == 0 and "database at head" in up.output, up.output
        assert _revision(url) == head
        again = CliRunner().invoke(app, ["migrate"])
        assert again.exit_code == 0 and _revision(url) == head
    finally:
        drop()


def _phone() -> str:
    """A mobile number no other test uses (the messages commit)."""
    return f"137{uuid.uuid4().int % 10**8:08d}"


def _outbox(phone: str, *args: str) -> list[str]:
    result = CliRunner().invoke(app, ["identity", "sms-outbox", phone, *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_sms_outbox_shows_the_sign_in_code_that_then_signs_in(cli_engine: Engine) -> None:
    phone = _phone()
    assert _outbox(phone) == []
    with session_scope() as db:
        sms.request_code(db, phone)
    [line] = _outbox(phone)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d 【最多跑一次】", line), line
    code = re.search(r"验证码为(\d{6})", line)
    assert code is not None
    with session_scope() as db:
        signed = sms.sign_in(db, phone, code.group(1))
    assert signed.error is None and signed.secret


def test_sms_outbox_lists_the_newest_messages_to_that_phone_only(cli_engine: Engine) -> None:
    phone, other = _phone(), _phone()
    with session_scope() as db:
        for n in range(7):
            sms.outbox_sender(db, "+86" + phone, f"第{n}条")
            db.flush()
        sms.outbox_sender(db, "+86" + other, "别人的")

    def bodies(*args: str) -> list[str]:
        return [line.split(" ", 2)[2] for line in _outbox(*args)]

    assert bodies(phone) == [f"第{n}条" for n in (6, 5, 4, 3, 2)]  # five, newest first
    assert bodies(phone, "--limit", "2") == ["第6条", "第5条"]
    assert bodies(f"+86 {phone[:3]} {phone[3:]}", "--limit", "1") == ["第6条"]


def test_sms_outbox_refuses_a_number_that_is_not_a_mobile(cli_engine: Engine) -> None:
    result = CliRunner().invoke(app, ["identity", "sms-outbox", "12345"])
    assert result.exit_code == 2 and "invalid_phone" in result.output
