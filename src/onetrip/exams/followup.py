"""The outpatient follow-up of an exam plan: a real appointment, booked by the booking engine.

When the doctor names the outpatient session for the follow-up (a department, and a doctor
if wanted), the planner may put the follow-up only at the start of a free slot there, and
booking the plan books that slot through ``scheduling.booking.book`` in the same
transaction as the exam slots: all of it or none of it. If the slot went in the meantime,
the next free one in the window that keeps every rule (the results ready before it, clear
of the exams) is taken; if none is left, nothing is booked and the centre is told so
(``followup_unavailable``), to plan again. Without a named session the follow-up is a
return visit under the day's registration (回诊): a planned time, no appointment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.exams import rules as R
from onetrip.exams.errors import FollowupUnavailable, ResourceInvalid
from onetrip.exams.models import ExamBooking, ExamOrder
from onetrip.identity.service import Principal
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.scheduling import booking as scheduling_booking
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.errors import SlotTaken
from onetrip.scheduling.models import Appointment, Slot
from onetrip.scheduling.rules import ACTIVE_STATUSES, BOOKABLE_SCHEDULE_STATUSES, Channel

#: The booking engine's channel for a follow-up booked by each role (scheduling/rules.py
#: ROLE_CHANNELS): the doctor's and the booking centre's in the clinic pool, as a follow-up
#: the doctor asked for; a kiosk as a kiosk; a patient online, under the no-show rule.
ROLE_FOLLOWUP_CHANNEL = {"doctor": Channel.clinic, "exam_centre": Channel.clinic,
                         "hospital_admin": Channel.window, "window": Channel.window,
                         "kiosk": Channel.kiosk, "patient": Channel.web, "proxy": Channel.web}


def channel_for(principal: Principal | None) -> Channel:
    if principal is None:
        return Channel.clinic
    return ROLE_FOLLOWUP_CHANNEL.get(principal.role.value, Channel.clinic)


def check_session(db: Session, *, hospital_id: int, department_id: int | None,
                  practitioner_id: int | None) -> None:
    """The follow-up's department belongs to the hospital, its doctor to the department."""
    if department_id is None:
        if practitioner_id is not None:
            raise ResourceInvalid("指定复诊医生时须同时指定复诊科室")
        return
    department = db.get(Department, department_id)
    if department is None or department.hospital_id != hospital_id:
        raise ResourceInvalid("复诊科室不属于本院", detail={"department_id": department_id})
    if practitioner_id is not None:
        doctor = db.get(Practitioner, practitioner_id)
        if doctor is None or department not in doctor.departments:
            raise ResourceInvalid("复诊医生不在该科室出诊",
                                  detail={"practitioner_id": practitioner_id})


def session_order(orders: Sequence[ExamOrder]) -> ExamOrder | None:
    """The order that names the follow-up's outpatient session, if one does."""
    return next((o for o in orders if o.followup_department_id is not None
                 and o.followup_opens is not None), None)


def session_label(db: Session, order: ExamOrder) -> str:
    """The follow-up's outpatient session as staff and patients read it: 科室 医生."""
    department = db.get(Department, order.followup_department_id)
    doctor = (db.get(Practitioner, order.followup_practitioner_id)
              if order.followup_practitioner_id else None)
    return " ".join(x for x in (department.name if department else "",
                                doctor.name if doctor else "") if x)


def free_slots(db: Session, order: ExamOrder, *, channel: Channel, now: datetime
               ) -> list[Slot]:
    """Free outpatient slots in the follow-up's window and session, earliest first."""
    assert order.followup_opens is not None and order.followup_closes is not None
    tz = get_settings().tz
    hospital = db.get_one(Hospital, order.hospital_id)
    department = db.get_one(Department, order.followup_department_id)
    out: list[Slot] = []
    opens, closes = order.followup_opens, order.followup_closes
    for schedule in scheduling_service.list_schedules(
            db, hospital=hospital, day=opens.astimezone(tz).date(), department=department):
        if schedule.status not in BOOKABLE_SCHEDULE_STATUSES or (
                order.followup_practitioner_id is not None
                and order.followup_practitioner_id not in (
                    schedule.practitioner_id, schedule.substitute_practitioner_id)):
            continue
        out += [s for s in scheduling_service.free_slots(db, schedule=schedule,
                                                         channel=channel, now=now)
                if opens <= s.start_at <= closes]
    return sorted(out, key=lambda s: (s.start_at, s.id))


def booked(db: Session, *, patient_id: int, opens: datetime, closes: datetime
           ) -> tuple[datetime, int | None] | None:
    """The follow-up the patient's exams booked earlier already have in this window (the
    kiosk books one exam at a time): its time, and its appointment while that is still
    active. Exams booked later keep it: one follow-up, and no second appointment for the
    booking engine to refuse."""
    rows = db.execute(select(ExamBooking.followup_at, ExamBooking.followup_appointment_id)
                      .where(ExamBooking.patient_id == patient_id,
                             ExamBooking.status.in_(("booked", "arrived")),
                             ExamBooking.followup_at >= opens, ExamBooking.followup_at <= closes)
                      .order_by(ExamBooking.id)).all()
    if not rows:
        return None
    active = {a.id for a in scheduling_booking.list_appointments(
        db, patient_id=patient_id, statuses=[s.value for s in ACTIVE_STATUSES])}
    for at, appointment_id in rows:
        if at is not None and (appointment_id is None or appointment_id in active):
            return at, appointment_id
    return None


def book(db: Session, *, principal: Principal, order: ExamOrder, patient_id: int,
         itinerary: R.Itinerary, now: datetime,
         keeps_rules: Callable[[datetime], bool]) -> tuple[Appointment, datetime]:
    """Book the plan's follow-up: the slot at its time, else the next one in the window
    that ``keeps_rules``; raises FollowupUnavailable when none is left (the caller's
    transaction then books nothing)."""
    assert itinerary.followup_at is not None
    channel = channel_for(principal)
    for slot in free_slots(db, order, channel=channel, now=now):
        if slot.start_at < itinerary.followup_at or not keeps_rules(slot.start_at):
            continue
        try:
            appt = scheduling_booking.book(db, principal=principal, patient_id=patient_id,
                                           channel=channel, now=now, slot_id=slot.id)
        except SlotTaken:
            continue
        return appt, slot.start_at
    raise FollowupUnavailable(detail={"followup_at": itinerary.followup_at.isoformat()})
