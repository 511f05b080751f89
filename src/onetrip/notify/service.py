"""Use cases of the reminders: queue a message, cancel the scheduled ones, deliver due ones.

Queueing happens inside the transaction of the change that caused it (see ``subscribers``);
delivery is the worker's (``drain``): it claims due rows with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several workers never send a message twice; SQLite has one writer at a time.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import insert_rows, rowcount, session_scope, utcnow
from onetrip.errors import Conflict, NotFound
from onetrip.identity import service as identity_service
from onetrip.notify import channels, rules
from onetrip.notify.channels import Outgoing
from onetrip.notify.models import Notification, WechatBinding
from onetrip.notify.templates import TEMPLATES, render

log = logging.getLogger(__name__)

#: Templates sent at a time ahead of the visit; they follow the appointment when it changes.
SCHEDULED = ("day_before", "hour_before")


def reminder_policy() -> rules.ReminderPolicy:
    s = get_settings()
    return rules.ReminderPolicy(day_before_hour=s.notify_day_before_hour,
                                quiet_start=s.notify_quiet_start, quiet_end=s.notify_quiet_end,
                                max_attempts=s.notify_max_attempts)


@dataclass(frozen=True)
class Draft:
    """A message to queue: whom, which template, with what, when, and its dedupe key."""

    patient_id: int
    template: str
    variables: dict[str, Any]
    send_at: datetime
    dedupe_key: str
    appointment_id: int | None = None
    event_day: date | None = None
    channel: str = ""  # empty: chosen from ONETRIP_NOTIFY_CHANNELS (channels.choose)
    hospital_id: int | None = None


def queue(db: Session, drafts: list[Draft]) -> None:
    """Queue the drafts whose dedupe key is new (RM-1: an event handled twice queues once).

    One insert for all rows: this runs on the booking's hot path, once for a whole batch of
    bookings.
    """
    keys = [d.dedupe_key[:120] for d in drafts]
    seen: set[str] = set()
    settings = get_settings()
    policy, tz, preferred = reminder_policy(), settings.tz, settings.notify_channels
    bound = _bound_patients(db, {d.patient_id for d in drafts if not d.channel}) \
        if "wechat" in preferred else set()
    rows = []
    for draft, key in zip(drafts, keys, strict=True):
        if draft.template not in TEMPLATES:
            raise KeyError(draft.template)
        if key in seen:
            continue
        seen.add(key)
        channel = draft.channel or channels.choose(preferred,
                                                   has_openid=draft.patient_id in bound)
        due = rules.respect_quiet_hours(draft.send_at, channel=channel,
                                        event_day=draft.event_day, policy=policy, tz=tz)
        rows.append({
            "patient_id": draft.patient_id, "appointment_id": draft.appointment_id,
            "hospital_id": draft.hospital_id, "channel": channel, "template": draft.template,
            "variables": draft.variables, "status": "queued", "attempts": 0,
            "send_at": due, "next_attempt_at": due, "dedupe_key": key, "last_error": "",
            "created_at": utcnow()})
    if rows:
        # A key already queued is skipped by the unique index (an event handled twice, or
        # by two transactions at once).
        insert_rows(db.connection(), cast(Table, Notification.__table__), rows,
                    skip_conflicts=("dedupe_key",))


def _bound_patients(db: Session, patient_ids: set[int]) -> set[int]:
    if not patient_ids:
        return set()
    return set(db.scalars(select(WechatBinding.patient_id)
                          .where(WechatBinding.patient_id.in_(patient_ids))))


def bind_wechat(db: Session, *, patient_id: int, openid: str) -> WechatBinding:
    """Record the patient's openid at the official account (from its OAuth callback)."""
    row = db.scalar(select(WechatBinding).where(WechatBinding.patient_id == patient_id))
    if row is None:
        row = WechatBinding(patient_id=patient_id, openid=openid[:64])
        db.add(row)
    else:
        row.openid = openid[:64]
    db.flush()
    return row


def cancel_queued(db: Session, *, appointment_id: int,
                  templates: tuple[str, ...] | None = None) -> int:
    """RM-1: the messages still queued about an appointment that no longer takes place (or,
    with ``templates``, only those): an unsent confirmation must not announce it."""
    where = [Notification.appointment_id == appointment_id, Notification.status == "queued"]
    if templates is not None:
        where.append(Notification.template.in_(templates))
    return rowcount(db.execute(
        update(Notification).where(*where).values(status="cancelled"),
        execution_options={"synchronize_session": False}))


def cancel_queued_by_key(db: Session, *, dedupe_keys: list[str]) -> int:
    """The messages still queued under these keys, for domains whose messages are not about
    an outpatient appointment (an exam booking's preparation, say) when they no longer apply."""
    return rowcount(db.execute(
        update(Notification).where(Notification.dedupe_key.in_([k[:120] for k in dedupe_keys]),
                                   Notification.status == "queued")
        .values(status="cancelled"), execution_options={"synchronize_session": False}))


def move_messages(db: Session, *, source: int, target: int,
                  appointment_ids: list[int] | None = None) -> int:
    """Re-point a patient's messages (only those about ``appointment_ids`` when given)."""
    where = [Notification.patient_id == source]
    if appointment_ids is not None:
        where.append(Notification.appointment_id.in_(appointment_ids))
    return rowcount(db.execute(update(Notification).where(*where).values(patient_id=target),
                               execution_options={"synchronize_session": False}))


def refresh_queued(db: Session, *, appointment_id: int, variables: dict[str, Any]) -> int:
    """RM-1: queued messages of an appointment show its changed details (e.g. the doctor)."""
    rows = list(db.scalars(select(Notification).where(
        Notification.appointment_id == appointment_id, Notification.status == "queued")))
    for row in rows:
        row.variables = {**row.variables, **{k: v for k, v in variables.items()
                                             if k in row.variables}}
    return len(rows)


def list_for_patient(db: Session, *, patient_id: int, limit: int = 200) -> list[Notification]:
    return list(db.scalars(select(Notification).where(Notification.patient_id == patient_id)
                           .order_by(Notification.send_at.desc(), Notification.id.desc())
                           .limit(limit)))


class NotificationNotFound(NotFound):
    code = "notification_not_found"
    message = "未找到该消息"


class NotResendable(Conflict):
    code = "not_resendable"
    message = "只有发送失败的消息可以重发"


@dataclass(frozen=True)
class OutboxFilter:
    """The staff outbox's filters; empty values do not filter."""

    template: str = ""
    channel: str = ""
    status: str = ""
    day: date | None = None
    patient_ids: list[int] | None = None


def search_outbox(db: Session, *, hospital_id: int, f: OutboxFilter,
                  limit: int = 200) -> list[Notification]:
    """A hospital's messages, newest due first (the staff outbox)."""
    stmt = select(Notification).where(Notification.hospital_id == hospital_id)
    for column, value in ((Notification.template, f.template),
                          (Notification.channel, f.channel), (Notification.status, f.status)):
        if value:
            stmt = stmt.where(column == value)
    if f.day is not None:
        start = datetime.combine(f.day, time(0), tzinfo=get_settings().tz)
        stmt = stmt.where(Notification.send_at >= start,
                          Notification.send_at < start + timedelta(days=1))
    if f.patient_ids is not None:
        stmt = stmt.where(Notification.patient_id.in_(f.patient_ids))
    return list(db.scalars(stmt.order_by(Notification.send_at.desc(), Notification.id.desc())
                           .limit(limit)))


def resend(db: Session, *, notification_id: int, hospital_id: int | None,
           now: datetime) -> Notification:
    """Queue a failed message again: the same row and out_id, so the provider (and the
    patient) never get a second copy of one that did go through."""
    row = db.get(Notification, notification_id)
    if row is None or (hospital_id is not None and row.hospital_id != hospital_id):
        raise NotificationNotFound(detail={"notification_id": notification_id})
    done = rowcount(db.execute(
        update(Notification).where(Notification.id == row.id, Notification.status == "failed")
        .values(status="queued", attempts=0, next_attempt_at=now,
                resends=Notification.resends + 1),
        execution_options={"synchronize_session": False}))
    if not done:
        raise NotResendable(detail={"status": row.status})
    db.refresh(row)
    return row


def inbox(db: Session, *, patient_ids: frozenset[int], limit: int = 100) -> list[Notification]:
    """Messages already sent (any channel) to these patients, newest first."""
    return list(db.scalars(select(Notification).where(
        Notification.patient_id.in_(patient_ids), Notification.status == "sent")
        .order_by(Notification.sent_at.desc(), Notification.id.desc()).limit(limit)))


def mark_read(db: Session, *, patient_ids: frozenset[int], now: datetime,
              notification_id: int | None = None) -> int:
    """Mark one message (or all) of these patients read; returns how many changed."""
    where = [Notification.patient_id.in_(patient_ids), Notification.status == "sent",
             Notification.read_at.is_(None)]
    if notification_id is not None:
        where.append(Notification.id == notification_id)
    return rowcount(db.execute(update(Notification).where(*where).values(read_at=now),
                               execution_options={"synchronize_session": False}))


def claim_due(db: Session, *, now: datetime, limit: int) -> list[Notification]:
    """Due queued rows, locked for this transaction; rows another worker holds are skipped."""
    return list(db.scalars(
        select(Notification).where(Notification.status == "queued",
                                   Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at, Notification.id).limit(limit)
        .with_for_update(skip_locked=True)))


_DIGITS = re.compile(r"\+?\d[\d -]{5,}\d")


def _safe_error(exc: Exception) -> str:
    """The failure reason without any phone or identity number in it."""
    return f"{type(exc).__name__}: {_DIGITS.sub('***', str(exc))}"[:300]


def _outgoing(db: Session, row: Notification) -> Outgoing:
    """The message as a transport sees it; a WeChat row whose patient unbound goes by SMS."""
    patient = identity_service.get_patient(db, row.patient_id)
    if patient is None:
        raise channels.PermanentFailure(f"patient {row.patient_id} not found")
    openid = ""
    if row.channel == "wechat":
        openid = db.scalar(select(WechatBinding.openid)
                           .where(WechatBinding.patient_id == row.patient_id)) or ""
        if not openid:
            row.channel = "sms"
    base = get_settings().public_url.rstrip("/")
    link = f"{base}/me/appointments/{row.appointment_id}" if row.appointment_id \
        else f"{base}/me/inbox"
    return Outgoing(out_id=f"onetrip-{row.id}", phone=identity_service.patient_phone(patient),
                    template_code=TEMPLATES[row.template].code, params=row.variables,
                    text=render(row.template, row.variables), template=row.template,
                    openid=openid, link=link)


def deliver(db: Session, row: Notification, *, now: datetime) -> None:
    """Send one claimed row through its channel; on failure back off, on a permanent
    refusal (or the last attempt) mark it failed with the reason (RM-1)."""
    policy = reminder_policy()
    row.attempts += 1
    try:
        if row.channel == "inbox":
            provider_id = f"inbox-{row.id}"
        else:
            msg = _outgoing(db, row)
            provider_id = channels.transport(row.channel)(db, msg)
        row.provider_message_id = provider_id[:100]
    except Exception as exc:  # any gateway failure: retry later, never lose the row
        row.last_error = _safe_error(exc)
        retry = None if isinstance(exc, channels.PermanentFailure) else \
            rules.next_attempt(row.attempts, now, policy)
        if retry is None:
            row.status = "failed"
        else:
            row.next_attempt_at = retry
        log.warning("notification %s attempt %s failed: %s", row.id, row.attempts,
                    row.last_error)
        return
    row.status, row.sent_at, row.last_error = "sent", now, ""


def drain_once(*, batch: int = 50, now: datetime | None = None) -> int:
    """One unit of work of the worker: claim up to ``batch`` due rows and deliver them."""
    with session_scope() as db:
        rows = claim_due(db, now=now or utcnow(), limit=batch)
        for row in rows:
            deliver(db, row, now=now or utcnow())
        return len(rows)
