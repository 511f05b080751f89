"""Patient sign-in by phone and one-time SMS code, through a pluggable SMS sender.

Rules (issue 3): at most 1 code a minute and 10 a day per phone; a code expires after 5
minutes; 5 wrong tries burn it. Codes are stored as keyed hashes. The default sender
(``ONETRIP_SMS_SENDER=outbox``) writes the message to the ``sms_outbox`` table, the only
place the code is visible; production registers a sender for its SMS gateway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.identity import auth
from onetrip.identity.crypto import keyring
from onetrip.identity.errors import SmsCodeInvalid, SmsDailyLimit, SmsTooFrequent
from onetrip.identity.models import Account, SmsCode, SmsOutbox
from onetrip.identity.service import check_phone, phone_index

CODE_TTL = timedelta(minutes=5)
MIN_INTERVAL = timedelta(minutes=1)
DAILY_LIMIT = 10
MAX_TRIES = 5

#: A sender takes the session, the phone (E.164) and the text.
SmsSender = Callable[[Session, str, str], None]


def outbox_sender(db: Session, phone: str, body: str) -> None:
    """Development sender: keep the message in the local outbox (phone encrypted)."""
    db.add(SmsOutbox(phone_cipher=keyring().encrypt(phone, purpose="phone"),
                     phone_index=phone_index(phone), body=body))


SENDERS: dict[str, SmsSender] = {"outbox": outbox_sender}


def register_sender(name: str, sender: SmsSender) -> None:
    """Plug in a gateway; select it with ``ONETRIP_SMS_SENDER=name``."""
    SENDERS[name] = sender


def _code_hash(index: str, code: str) -> str:
    return hmac.new(keyring().index_key, f"sms:{index}:{code}".encode(),
                    hashlib.sha256).hexdigest()


def request_code(db: Session, phone: str) -> None:
    """Send a 6-digit sign-in code; raises InvalidPhone, SmsTooFrequent, SmsDailyLimit."""
    e164 = check_phone(phone)
    index = phone_index(e164)
    now = utcnow()
    recent = db.scalar(select(func.max(SmsCode.created_at)).where(SmsCode.phone_index == index))
    if recent is not None and now - recent < MIN_INTERVAL:
        raise SmsTooFrequent()
    today = db.scalar(select(func.count(SmsCode.id)).where(
        SmsCode.phone_index == index, SmsCode.created_at > now - timedelta(days=1)))
    if (today or 0) >= DAILY_LIMIT:
        raise SmsDailyLimit()
    code = f"{secrets.randbelow(1_000_000):06d}"
    db.add(SmsCode(phone_index=index, code_hash=_code_hash(index, code), created_at=now,
                   expires_at=now + CODE_TTL))
    SENDERS[get_settings().sms_sender](db, e164, f"【最多跑一次】您的登录验证码为{code}，"
                                               "5分钟内有效。请勿告诉他人。")
    db.flush()


@dataclass(frozen=True)
class SmsSignIn:
    """The session secret, or the error to show (after a wrong try has been counted)."""

    secret: str | None = None
    account: Account | None = None
    error: SmsCodeInvalid | None = None


def sign_in(db: Session, phone: str, code: str, *, client_ip: str = "") -> SmsSignIn:
    """Check the latest code of the phone; open a session for its account (created on first
    sign-in). Raises InvalidPhone; returns an error outcome for a wrong or spent code."""
    e164 = check_phone(phone)
    index = phone_index(e164)
    now = utcnow()
    row = db.scalar(select(SmsCode).where(SmsCode.phone_index == index)
                    .order_by(SmsCode.id.desc()).limit(1))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return SmsSignIn(error=SmsCodeInvalid())
    if not hmac.compare_digest(row.code_hash, _code_hash(index, code.strip())):
        row.attempts += 1
        if row.attempts >= MAX_TRIES:
            row.used_at = now  # burnt: a new code is needed
        db.flush()
        return SmsSignIn(error=SmsCodeInvalid())
    row.used_at = now
    account = db.scalar(select(Account).where(Account.phone_index == index))
    if account is None:
        account = Account(phone_cipher=keyring().encrypt(e164, purpose="phone"),
                          phone_index=index)
        db.add(account)
        db.flush()
    account.last_sign_in_at = now
    return SmsSignIn(secret=auth.start_session(db, account=account, client_ip=client_ip),
                     account=account)


def outbox_messages(db: Session, phone: str, limit: int = 10) -> list[SmsOutbox]:
    """The latest outbox messages to a phone (development and tests)."""
    index = phone_index(check_phone(phone))
    return list(db.scalars(select(SmsOutbox).where(SmsOutbox.phone_index == index)
                           .order_by(SmsOutbox.id.desc()).limit(limit)))
