"""Sign-in: SMS codes for patients, password + TOTP for staff, sessions and idle timeout."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.identity import auth, sms
from onetrip.identity.errors import (
    AccountLocked,
    InvalidCredentials,
    SessionExpired,
    SmsCodeInvalid,
    SmsDailyLimit,
    SmsTooFrequent,
)
from onetrip.identity.models import SignInSession, SmsCode
from onetrip.identity.rules import Role
from tests.factories import last_sms_code, mobile


def _age_codes(db: Session, by: timedelta) -> None:
    for row in db.scalars(select(SmsCode)):
        row.created_at -= by
        row.expires_at -= by
    db.flush()


def _idle(db: Session, by: timedelta) -> None:
    for row in db.scalars(select(SignInSession)):
        row.last_seen_at -= by
    db.flush()


def test_sms_code_signs_in_once_and_creates_the_account(db: Session) -> None:
    phone = mobile()
    sms.request_code(db, phone)
    code = last_sms_code(db, phone)
    first = sms.sign_in(db, phone, code)
    assert first.secret and first.account is not None and first.error is None
    principal = auth.authenticate_token(db, first.secret)
    assert principal.role is Role.proxy and principal.account_id == first.account.id
    assert isinstance(sms.sign_in(db, phone, code).error, SmsCodeInvalid)  # used


def test_sms_codes_are_limited_to_one_a_minute_and_ten_a_day(db: Session) -> None:
    phone = mobile()
    sms.request_code(db, phone)
    with pytest.raises(SmsTooFrequent):
        sms.request_code(db, phone)
    for _ in range(9):
        _age_codes(db, timedelta(minutes=2))
        sms.request_code(db, phone)
    _age_codes(db, timedelta(minutes=2))
    with pytest.raises(SmsDailyLimit):
        sms.request_code(db, phone)
    _age_codes(db, timedelta(days=1))
    sms.request_code(db, phone)


def test_sms_code_expires_after_five_minutes(db: Session) -> None:
    phone = mobile()
    sms.request_code(db, phone)
    code = last_sms_code(db, phone)
    _age_codes(db, timedelta(minutes=5, seconds=1))
    assert isinstance(sms.sign_in(db, phone, code).error, SmsCodeInvalid)


def test_five_wrong_tries_burn_the_code(db: Session) -> None:
    phone = mobile()
    sms.request_code(db, phone)
    code = last_sms_code(db, phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert isinstance(sms.sign_in(db, phone, wrong).error, SmsCodeInvalid)
    assert isinstance(sms.sign_in(db, phone, code).error, SmsCodeInvalid)
    stored = db.scalars(select(SmsCode.code_hash)).all()
    assert code not in stored


def test_staff_sign_in_needs_password_and_totp_for_admins(db: Session) -> None:
    new = auth.create_staff(db, username="t-admin", name="管理员", role=Role.hospital_admin,
                            hospital_code="sfsrmyy")
    assert new.totp_secret and new.staff.totp_cipher and new.totp_secret not in \
        new.staff.totp_cipher
    assert new.staff.password_hash.startswith("$argon2")
    no_totp = auth.sign_in_staff(db, username="t-admin", password=new.password)
    assert isinstance(no_totp.error, InvalidCredentials)
    ok = auth.sign_in_staff(db, username="t-admin", password=new.password,
                            totp=pyotp.TOTP(new.totp_secret).now())
    assert ok.secret is not None
    again = auth.sign_in_staff(db, username="t-admin", password=new.password,
                               totp=pyotp.TOTP(new.totp_secret).now())
    assert again.secret is not None and again.secret != ok.secret  # a new session each time
    principal = auth.authenticate_token(db, again.secret)
    assert principal.role is Role.hospital_admin and principal.staff_id == new.staff.id


def test_five_failures_lock_the_staff_account(db: Session) -> None:
    new = auth.create_staff(db, username="t-doc", name="医生", role=Role.doctor,
                            hospital_code="sfsrmyy")
    assert new.totp_secret is None
    for _ in range(4):
        assert isinstance(auth.sign_in_staff(db, username="t-doc", password="x").error,
                          InvalidCredentials)
    assert isinstance(auth.sign_in_staff(db, username="t-doc", password="x").error,
                      AccountLocked)
    locked = auth.sign_in_staff(db, username="t-doc", password=new.password)
    assert isinstance(locked.error, AccountLocked)
    assert new.staff.locked_until is not None
    new.staff.locked_until -= timedelta(minutes=31)
    assert auth.sign_in_staff(db, username="t-doc", password=new.password).secret


def test_unknown_username_looks_like_a_wrong_password(db: Session) -> None:
    out = auth.sign_in_staff(db, username="nobody", password="x")
    assert isinstance(out.error, InvalidCredentials)


def test_staff_session_expires_after_30_idle_minutes(db: Session) -> None:
    new = auth.create_staff(db, username="t-win", name="窗口", role=Role.window,
                            hospital_code="sfsrmyy")
    secret = auth.sign_in_staff(db, username="t-win", password=new.password).secret
    assert secret is not None
    _idle(db, timedelta(minutes=29))
    auth.authenticate_token(db, secret)  # activity resets the idle clock
    _idle(db, timedelta(minutes=31))
    with pytest.raises(SessionExpired):
        auth.authenticate_token(db, secret)
    auth.end_session(db, secret)
    with pytest.raises(auth.InvalidToken):
        auth.authenticate_token(db, secret)
