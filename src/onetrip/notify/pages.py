"""Notify pages: the patient's inbox (本人 and family) and the staff outbox with resend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from onetrip.deps import DbSession, Now, OptionalPrincipal
from onetrip.errors import NotAuthenticated, PermissionDenied
from onetrip.identity import service as identity_service
from onetrip.identity.models import Patient
from onetrip.identity.principal import Principal
from onetrip.identity.rules import ACCOUNT_ROLES, RELATIONSHIP_LABELS, Relationship, Role
from onetrip.notify import service
from onetrip.notify.channels import ALL_CHANNELS, CHANNEL_LABELS
from onetrip.notify.models import Notification
from onetrip.notify.slip import mask_name
from onetrip.notify.templates import LABELS, SIGNATURE, TEMPLATES, render
from onetrip.numbers import parse_id
from onetrip.web import render_page

router = APIRouter(include_in_schema=False)
STATUS_LABELS = {"queued": "待发送", "sent": "已发送", "failed": "发送失败", "cancelled": "已取消"}
OUTBOX_ROLES = frozenset({Role.window, Role.hospital_admin})
FILTERS = ("template", "channel", "status", "day", "patient")


def _text(n: Notification) -> str:
    return render(n.template, n.variables).removeprefix(SIGNATURE)


# --- the patient's inbox ----------------------------------------------------------------------


def _account(principal: Principal | None) -> Principal | None:
    if principal is None or principal.role not in ACCOUNT_ROLES or principal.account_id is None:
        return None
    return principal


@router.get("/me/inbox")
def my_inbox(request: Request, db: DbSession, principal: OptionalPrincipal) -> Response:
    """RM-1: every message sent to the account's patients, whichever channel carried it."""
    me = _account(principal)
    if me is None or me.account_id is None:
        return RedirectResponse("/sign-in?next=/me/inbox", status_code=303)
    members = identity_service.family_of(db, me.account_id)
    who = {m.patient_id: f"{RELATIONSHIP_LABELS[Relationship(m.relation)]} {m.patient.name}"
           for m in members}
    rows = service.inbox(db, patient_ids=frozenset(who))
    return render_page(request, "my_inbox.html", {
        "rows": rows, "who": who, "text": _text, "labels": LABELS,
        "unread": sum(1 for n in rows if n.read_at is None)})


@router.post("/me/inbox/read")
def mark_inbox_read(request: Request, db: DbSession, principal: OptionalPrincipal, now: Now,
                    notification_id: Annotated[int | None, Query()] = None) -> Response:
    """Mark one message (``notification_id``) or all of them read."""
    me = _account(principal)
    if me is None:
        raise NotAuthenticated()
    service.mark_read(db, patient_ids=me.patient_ids, now=now, notification_id=notification_id)
    return RedirectResponse("/me/inbox", status_code=303)


# --- the staff outbox -------------------------------------------------------------------------


def _outbox_staff(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise NotAuthenticated()
    if principal.role not in OUTBOX_ROLES or principal.hospital_id is None:
        raise PermissionDenied()
    return principal


OutboxStaff = Annotated[Principal, Depends(_outbox_staff)]


@dataclass(frozen=True)
class Shown:
    """A patient as the outbox shows them: masked name and phone."""

    name: str
    phone: str


def _patient_ids(db: DbSession, query: str) -> list[int] | None:
    """The filter's patients: an id number, else a name prefix; None when it is empty."""
    query = query.strip()
    if not query:
        return None
    if (patient_id := parse_id(query)) is not None:
        return [patient_id]
    return [p.id for p in identity_service.find_by_name(db, query)]


def _day(value: str) -> tuple[date | None, str]:
    """The day filter of the form (empty: none); a malformed one is reported, not applied."""
    if not value:
        return None, ""
    try:
        return date.fromisoformat(value), ""
    except ValueError:
        return None, "日期格式应为YYYY-MM-DD"


@router.get("/staff/notifications")
def outbox_page(request: Request, db: DbSession, principal: OutboxStaff,
                template: Annotated[str, Query(max_length=40)] = "",
                channel: Annotated[str, Query(max_length=16)] = "",
                status: Annotated[str, Query(max_length=16)] = "",
                day: Annotated[str, Query(max_length=10)] = "",
                patient: Annotated[str, Query(max_length=50)] = "",
                flash: str = "") -> Response:
    """RM-1: the hospital's outbox, filtered; failure reasons and resend of failed messages."""
    assert principal.hospital_id is not None
    on_day, error = _day(day)
    f = service.OutboxFilter(template=template if template in TEMPLATES else "",
                             channel=channel if channel in ALL_CHANNELS else "",
                             status=status if status in STATUS_LABELS else "", day=on_day,
                             patient_ids=_patient_ids(db, patient))
    rows = service.search_outbox(db, hospital_id=principal.hospital_id, f=f)
    shown: dict[int, Shown] = {}
    for pid in dict.fromkeys(n.patient_id for n in rows):
        p: Patient = identity_service.access_patient(db, principal, pid,
                                                     action="notification.list")
        shown[pid] = Shown(mask_name(p.name), identity_service.masked_phone(p))
    values = {"template": f.template, "channel": f.channel, "status": f.status,
              "day": day, "patient": patient}
    return render_page(request, "staff_notifications.html", {
        "rows": rows, "shown": shown, "text": _text, "values": values,
        "labels": LABELS, "channels": CHANNEL_LABELS, "statuses": STATUS_LABELS,
        "query": urlencode({k: v for k, v in values.items() if v}),
        "flash": error or {"resent": "已重新排队发送（同一条消息，不会重复发送）"}.get(flash),
        "flash_kind": "error" if error else "ok"})


@router.post("/staff/notifications/{notification_id}/resend")
def resend(notification_id: int, db: DbSession, principal: OutboxStaff, now: Now,
           back: Annotated[str, Query(max_length=400)] = "") -> Response:
    """Queue a failed message again (the same row: no duplicate); audited."""
    row = service.resend(db, notification_id=notification_id,
                         hospital_id=principal.hospital_id, now=now)
    identity_service.access_patient(db, principal, row.patient_id, action="notification.resend")
    kept = {k: v for k, v in parse_qsl(back) if k in FILTERS}
    return RedirectResponse(f"/staff/notifications?{urlencode({**kept, 'flash': 'resent'})}",
                            status_code=303)
