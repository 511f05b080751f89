"""Kiosk mode at ``/kiosk`` (BK-10, ID-4): one layout for every hospital of the region.

The device signs in once with a kiosk token (``onetrip token create --role kiosk``) and stays
signed in. A patient identifies with a resident ID card or an e-health card, typed or read
into one field (a card reader is a keyboard wedge); the kiosk then acts for that patient
alone, through a signed cookie that lapses after ``kiosk_idle_seconds`` without a tap and is
dropped when the transaction ends, so the next person never sees the previous one's data.
Same-day registration and booking (window and online pools, ``rules.CHANNEL_POOLS``), ticket
pickup with check-in (取号), and a printable ticket with a QR code. Single exams are booked
at the kiosk by the exams domain (``exams/kiosk_pages.py``), on the same identified patient.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.config import get_settings
from onetrip.deps import TOKEN_COOKIE, DbSession, Now, OptionalPrincipal
from onetrip.errors import NotAuthenticated, OnetripError
from onetrip.identity import service as identity_service
from onetrip.identity.models import Patient
from onetrip.identity.rules import DocumentType, Role, mask_name
from onetrip.identity.service import Principal
from onetrip.numbers import parse_digits
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.scheduling import booking, page_booking, queue, service
from onetrip.scheduling.errors import AppointmentNotFound, CheckInRefused, SlotNotFound
from onetrip.scheduling.models import Appointment, Schedule, Slot
from onetrip.scheduling.rules import (
    BOOKABLE_SCHEDULE_STATUSES,
    CHANNEL_POOLS,
    SESSION_LABELS,
    Channel,
)
from onetrip.web import render_page
from onetrip.web.pages import FONT_COOKIE

router = APIRouter(include_in_schema=False)

PATIENT_COOKIE = "onetrip_kiosk_patient"
_TEN_YEARS = 10 * 365 * 24 * 3600
_CHANNEL = Channel.kiosk
_BOOK_DAYS = 7
_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")
_HEALTH_CARD = re.compile(r"^[0-9A-F]{64}$")


def card_type(value: str) -> DocumentType | None:
    """What a typed or swiped number is: an 18-character resident ID or an e-health card."""
    if _RESIDENT_ID.match(value):
        return DocumentType.resident_id_card
    if _HEALTH_CARD.match(value):
        return DocumentType.health_card
    return None


# --- who is at the kiosk -------------------------------------------------------------------


def _mac(payload: str) -> str:
    key = hashlib.sha256(f"kiosk-patient:{get_settings().secret_key}".encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:32]


def patient_cookie(patient_id: int, kiosk: Principal, now: datetime) -> str:
    """A value naming the identified patient, bound to this kiosk and valid for the idle time."""
    expires = int((now + timedelta(seconds=get_settings().kiosk_idle_seconds)).timestamp())
    payload = f"{patient_id}.{expires}.{kiosk.token_id or 0}.{kiosk.staff_id or 0}"
    return f"{payload}.{_mac(payload)}"


def patient_from_cookie(value: str, kiosk: Principal, now: datetime) -> int | None:
    """The patient a valid, unexpired cookie of this kiosk names, else None."""
    parts = value.split(".")
    numbers = [parse_digits(p) for p in parts[:4]]
    if len(parts) != 5 or None in numbers:
        return None
    payload = ".".join(parts[:4])
    if not hmac.compare_digest(_mac(payload), parts[4]):
        return None
    patient_id, expires, token_id, staff_id = (n or 0 for n in numbers)
    if expires < now.timestamp() or token_id != (kiosk.token_id or 0) or \
            staff_id != (kiosk.staff_id or 0):
        return None
    return patient_id


def _kiosk_of(principal: OptionalPrincipal) -> Principal:
    if principal is None or principal.role is not Role.kiosk or principal.hospital_id is None:
        raise KioskSignInRequired()
    return principal


class KioskSignInRequired(NotAuthenticated):
    code = "kiosk_sign_in_required"
    message = "本机尚未启用自助服务，请联系信息科"


class KioskPatientGone(NotAuthenticated):
    code = "kiosk_patient_gone"
    message = "操作超时或已结束，请重新刷卡"


Kiosk = Annotated[Principal, Depends(_kiosk_of)]


@dataclasses.dataclass(frozen=True)
class AtKiosk:
    """The kiosk acting for the one patient whose card was presented."""

    principal: Principal
    patient: Patient
    hospital: Hospital


def at_kiosk(request: Request, db: Session, kiosk: Principal, now: datetime) -> AtKiosk:
    pid = patient_from_cookie(request.cookies.get(PATIENT_COOKIE, ""), kiosk, now)
    patient = identity_service.get_patient(db, pid) if pid is not None else None
    if patient is None:
        raise KioskPatientGone()
    acting = dataclasses.replace(kiosk, patient_ids=frozenset({patient.id}))
    assert kiosk.hospital_id is not None
    return AtKiosk(acting, patient, db.get_one(Hospital, kiosk.hospital_id))


def patient_page(request: Request, here: AtKiosk, now: datetime, name: str,
                 ctx: dict[str, Any], status_code: int = 200) -> Response:
    """A page for the identified patient: the idle timer restarts with every page shown."""
    response = render_page(request, name, {
        **ctx, "hospital": here.hospital, "who": mask_name(here.patient.name),
        "idle": get_settings().kiosk_idle_seconds}, status_code=status_code)
    return _remember(response, request, here, now)


def _remember(response: Response, request: Request, here: AtKiosk, now: datetime) -> Response:
    response.set_cookie(PATIENT_COOKIE, patient_cookie(here.patient.id, here.principal, now),
                        max_age=get_settings().kiosk_idle_seconds, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


def _start(request: Request, db: Session, kiosk: Principal, values: dict[str, str],
           errors: dict[str, str], status_code: int = 200) -> Response:
    assert kiosk.hospital_id is not None
    response = render_page(request, "kiosk_home.html", {
        "hospital": db.get_one(Hospital, kiosk.hospital_id), "values": values,
        "errors": errors}, status_code=status_code)
    response.delete_cookie(PATIENT_COOKIE)
    return response


# --- setting up the device, identifying a patient, ending a transaction ----------------------


@router.get("/kiosk")
def kiosk_home(request: Request, db: DbSession, principal: OptionalPrincipal) -> Response:
    """The start screen; it always forgets the previous patient."""
    if principal is None or principal.role is not Role.kiosk:
        return render_page(request, "kiosk_setup.html", {"errors": {}})
    return _start(request, db, _kiosk_of(principal), {}, {})


@router.post("/kiosk/setup")
def kiosk_setup(request: Request, db: DbSession,
                token: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Sign the device in once with a kiosk token; the cookie lasts until it is revoked."""
    secret = token.strip()
    try:
        principal = identity_service.authenticate_token(db, secret) if secret else None
    except NotAuthenticated as exc:
        return render_page(request, "kiosk_setup.html", {"errors": {"token": exc.text}},
                           status_code=401)
    if principal is None or principal.role is not Role.kiosk or principal.hospital_id is None:
        return render_page(request, "kiosk_setup.html",
                           {"errors": {"token": "请输入自助机令牌（角色为自助机）"}},
                           status_code=422)
    response = RedirectResponse("/kiosk", status_code=303)
    response.set_cookie(TOKEN_COOKIE, secret, max_age=_TEN_YEARS, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/kiosk/identify")
def identify(request: Request, db: DbSession, kiosk: Kiosk, now: Now,
             card: Annotated[str, Form(max_length=120)] = "") -> Response:
    """ID-4: a resident ID or e-health card, swiped or typed, finds the patient."""
    value = re.sub(r"\s+", "", card).upper()
    kind = card_type(value)
    if not value:
        return _start(request, db, kiosk, {"card": card}, {"card": "请刷卡或输入证件号码"}, 422)
    if kind is None:
        return _start(request, db, kiosk, {"card": card},
                      {"card": "无法识别：请刷身份证、电子健康卡，或输入18位身份证号码"}, 422)
    try:
        with db.begin_nested():
            patient = identity_service.access_patient_by_document(db, kiosk, kind, value)
    except OnetripError as exc:
        if exc.http_status in (401, 403):
            raise
        text = ("未找到该证件的就诊档案，请到人工窗口实名建档" if exc.code == "patient_not_found"
                else exc.text)
        return _start(request, db, kiosk, {"card": card}, {"card": text}, exc.http_status)
    assert kiosk.hospital_id is not None
    here = AtKiosk(dataclasses.replace(kiosk, patient_ids=frozenset({patient.id})), patient,
                   db.get_one(Hospital, kiosk.hospital_id))
    return _remember(RedirectResponse("/kiosk/menu", status_code=303), request, here, now)


@router.get("/kiosk/done")
def done() -> Response:
    """End of a transaction (or the idle timer): forget the patient and the font choice."""
    response = RedirectResponse("/kiosk", status_code=303)
    response.delete_cookie(PATIENT_COOKIE)
    response.delete_cookie(FONT_COOKIE)
    return response


@router.get("/kiosk/menu")
def menu(request: Request, db: DbSession, kiosk: Kiosk, now: Now) -> Response:
    return patient_page(request, at_kiosk(request, db, kiosk, now), now, "kiosk_menu.html", {})


# --- registration and booking ---------------------------------------------------------------


def _days(today: date) -> list[date]:
    return [today + timedelta(days=i) for i in range(_BOOK_DAYS + 1)]


def _left(available: dict[str, int]) -> int:
    return sum(n for pool, n in available.items() if pool in CHANNEL_POOLS[_CHANNEL])


@router.get("/kiosk/register")
def register(request: Request, db: DbSession, kiosk: Kiosk, now: Now,
             day: str | None = None, dept: str | None = None, ahead: int = 0) -> Response:
    """Departments (then a department's doctors) with slots left for the kiosk on a day;
    today is same-day registration (挂号), a later day is booking ahead (预约)."""
    here = at_kiosk(request, db, kiosk, now)
    today = page_booking.local_day(now)
    days = _days(today)
    chosen = next((d for d in days if d.isoformat() == day), days[1] if ahead else today)
    schedules = [s for s in service.list_schedules(db, hospital=here.hospital, day=chosen)
                 if s.status in BOOKABLE_SCHEDULE_STATUSES and s.end_at > now]
    reopens = _reopens(db, here, chosen, now)
    avail = service.availability(db, [s.id for s in schedules], now)
    departments: dict[int, dict[str, Any]] = {}
    for s in schedules:
        left = 0 if reopens else _left(avail[s.id])
        row = departments.setdefault(s.department_id, {
            "dept": db.get_one(Department, s.department_id), "left": 0, "schedules": []})
        row["left"] += left
        doc_id = s.substitute_practitioner_id or s.practitioner_id
        row["schedules"].append({"schedule": s, "left": left,
                                 "doctor": db.get(Practitioner, doc_id) if doc_id else None})
    # The hospital's department order, so that a tile is where it was on another day.
    tiles = sorted(departments.values(), key=lambda r: (r["dept"].sort_order, r["dept"].id))
    picked = next((r for r in tiles if r["dept"].code == dept), None)
    return patient_page(request, here, now, "kiosk_register.html", {
        "days": days, "day": chosen, "today": today, "departments": tiles,
        "picked": picked, "sessions": SESSION_LABELS, "reopens": reopens})


def _reopens(db: Session, here: AtKiosk, day: date, now: datetime) -> datetime | None:
    policy, _rule = service.policy_for(db, here.hospital.id)
    return service.reopens_at(policy, day, now)


def _slot_ctx(db: Session, schedule: Schedule) -> dict[str, Any]:
    doc_id = schedule.substitute_practitioner_id or schedule.practitioner_id
    return {"schedule": schedule, "dept": db.get_one(Department, schedule.department_id),
            "doctor": db.get(Practitioner, doc_id) if doc_id else None,
            "place": page_booking.place_of(db, schedule), "sessions": SESSION_LABELS}


def _own_schedule(db: Session, here: AtKiosk, schedule_id: int) -> Schedule:
    schedule = service.access_schedule(db, schedule_id)
    if schedule.hospital_id != here.hospital.id:
        raise SlotNotFound("本机只能办理本院号源")
    return schedule


@router.get("/kiosk/schedules/{schedule_id}")
def times(schedule_id: int, request: Request, db: DbSession, kiosk: Kiosk,
          now: Now) -> Response:
    here = at_kiosk(request, db, kiosk, now)
    schedule = _own_schedule(db, here, schedule_id)
    reopens = _reopens(db, here, schedule.day, now)
    slots = [] if reopens else service.free_slots(db, schedule=schedule, channel=_CHANNEL,
                                                  now=now)
    return patient_page(request, here, now, "kiosk_times.html", {
        **_slot_ctx(db, schedule), "groups": page_booking.time_groups(slots),
        "reopens": reopens})


def _confirm(request: Request, db: Session, here: AtKiosk, now: datetime, slot_id: int,
             errors: dict[str, str], status_code: int = 200) -> Response:
    slot = db.get(Slot, slot_id)
    if slot is None:
        raise SlotNotFound(detail={"slot_id": slot_id})
    _own_schedule(db, here, slot.schedule_id)
    return patient_page(request, here, now, "kiosk_confirm.html", {
        **_slot_ctx(db, slot.schedule), "slot": slot, "errors": errors,
        "form_token": page_booking.new_form_token(),
        "today": page_booking.local_day(now)}, status_code)


@router.get("/kiosk/slots/{slot_id}")
def confirm_page(slot_id: int, request: Request, db: DbSession, kiosk: Kiosk,
                 now: Now) -> Response:
    return _confirm(request, db, at_kiosk(request, db, kiosk, now), now, slot_id, {})


KioskGate = Annotated[None, Depends(page_booking.booking_gate(lambda _request: _CHANNEL))]


@router.post("/kiosk/slots/{slot_id}")
def book(slot_id: int, _gate: KioskGate, request: Request, db: DbSession, kiosk: Kiosk,
         now: Now, form_token: Annotated[str, Form(max_length=80)] = "") -> Response:
    """Register (today) or book (a later day) for the identified patient; a same-day
    registration checks the patient in at once, who is standing in the hall."""
    here = at_kiosk(request, db, kiosk, now)
    try:
        appt = page_booking.book_once(db, principal=here.principal, form_token=form_token,
                         patient_id=here.patient.id, slot_id=slot_id, channel=_CHANNEL, now=now)
    except OnetripError as exc:
        if exc.http_status in (401, 403):
            raise
        return _confirm(request, db, here, now, slot_id, page_booking.form_error(exc, {}),
                        exc.http_status)
    if appt.status == "booked" and page_booking.visit_of(db, appt, now).check_in_open:
        try:
            with db.begin_nested():
                queue.check_in(db, principal=here.principal, appointment_id=appt.id, now=now,
                               patient_id=here.patient.id)
        except CheckInRefused:
            pass  # the booking stands; the ticket says when to check in
    return RedirectResponse(f"/kiosk/tickets/{appt.id}", status_code=303)


# --- ticket pickup and check-in (取号), the ticket -------------------------------------------


def _own_appointment(db: Session, here: AtKiosk, appointment_id: int) -> Appointment:
    appt = booking.access_appointment(db, here.principal, appointment_id)
    if appt.patient_id != here.patient.id:
        raise AppointmentNotFound(detail={"appointment_id": appointment_id})
    return appt


@router.get("/kiosk/appointments")
def appointments(request: Request, db: DbSession, kiosk: Kiosk, now: Now) -> Response:
    """The patient's coming visits at this hospital; today's can be checked in here."""
    return _appointments_page(request, db, kiosk, now)


def _appointments_page(request: Request, db: Session, kiosk: Principal, now: datetime,
                       error: str | None = None) -> Response:
    """The visits page, with a refused check-in's reason on top (never from the address,
    where anyone could write a message onto the hall's screen)."""
    here = at_kiosk(request, db, kiosk, now)
    identity_service.access_patient(db, here.principal, here.patient.id,
                                    action="appointment.read")
    today = page_booking.local_day(now)
    visits = [page_booking.visit_of(db, a, now) for a in sorted(
        booking.list_appointments(db, patient_id=here.patient.id,
                                  statuses=["held", "booked", "arrived"]),
        key=lambda a: a.start_at)
        if a.hospital_id == here.hospital.id and a.day >= today]
    return patient_page(request, here, now, "kiosk_appointments.html",
                        {"visits": visits, "today": today, "error": error},
                        status_code=409 if error else 200)


@router.post("/kiosk/appointments/{appointment_id}/check-in")
def check_in(appointment_id: int, request: Request, db: DbSession, kiosk: Kiosk,
             now: Now) -> Response:
    """取号: the presented card proves the booking is this patient's (BK-8)."""
    here = at_kiosk(request, db, kiosk, now)
    _own_appointment(db, here, appointment_id)
    try:
        with db.begin_nested():
            queue.check_in(db, principal=here.principal, appointment_id=appointment_id,
                           now=now, patient_id=here.patient.id)
    except OnetripError as exc:
        if exc.http_status in (401, 403, 404):
            raise
        return _appointments_page(request, db, kiosk, now, error=exc.text)
    return RedirectResponse(f"/kiosk/tickets/{appointment_id}", status_code=303)


def qr_svg(text: str) -> Markup:
    """A QR code as inline SVG (no image file, prints sharp on thermal printers)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return Markup(image.to_string(encoding="unicode"))


@router.get("/kiosk/tickets/{appointment_id}")
def ticket(appointment_id: int, request: Request, db: DbSession, kiosk: Kiosk,
           now: Now) -> Response:
    """The printable ticket: masked name, department, doctor, room, number, QR code."""
    here = at_kiosk(request, db, kiosk, now)
    appt = _own_appointment(db, here, appointment_id)
    entry = queue.position_of(db, appointment=appt, now=now) \
        if appt.status == "arrived" else None
    return patient_page(request, here, now, "kiosk_ticket.html", {
        "v": page_booking.visit_of(db, appt, now), "entry": entry,
        "wait_minutes": int(entry.wait.total_seconds() // 60) if entry else 0,
        "qr": qr_svg(f"onetrip:appointment:{appt.id}"), "printed_at": now})
