"""Two gaps between what the booking engine enforces and what the waitlist and the patient's
pages do with it: a freed slot is not held for a waiting patient who already holds that
session (BK-6, BK-8), and the restriction notice names every restriction the engine refuses
an online booking for, wherever the no-show happened (BK-6, EX-4)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.org.models import Hospital
from onetrip.scheduling import booking, penalties, service, waitlist
from onetrip.scheduling.errors import LimitReached, PatientRestricted
from onetrip.scheduling.models import Schedule
from onetrip.scheduling.rules import Channel, PenaltyEvent, SessionOfDay
from tests.factories import make_department, make_hospital, make_practitioner
from tests.scheduling.conftest import CREATED, DAY, OPEN, Clinic, Clock, local
from tests.scheduling.test_portal_pages import sign_in_family
from tests.scheduling.test_waitlist import ONLINE_ONLY, full_session, join_online

# --- the waitlist and the per-patient limits (BK-8) ------------------------------------------


def test_bk8_a_freed_slot_passes_over_a_patient_who_booked_the_session_another_way(
        db: Session, clinic: Clinic) -> None:
    taken = full_session(db, clinic)
    (w, pw), (w2, pw2) = clinic.patient(db), clinic.patient(db)
    first = join_online(db, clinic, w, pw)
    second = join_online(db, clinic, w2, pw2, now=ONLINE_ONLY + timedelta(minutes=1))
    # On the day, when the window pool opens, W registers for that same session there.
    on_the_day = local(DAY, 7, 5)
    mine = clinic.book(db, w.id, now=on_the_day)
    assert mine.schedule_id == first.schedule_id
    booking.cancel(db, principal=clinic.window, appointment_id=taken[0].id,
                   now=on_the_day + timedelta(minutes=5))
    db.refresh(first)
    db.refresh(second)
    # Not held 15 minutes for W, who could not take a second slot of a session they hold:
    # the next in line is offered it at once, and takes it.
    assert second.status == "offered" and second.offered_slot_id == taken[0].slot_id
    got = waitlist.accept(db, principal=pw2, entry_id=second.id,
                          now=on_the_day + timedelta(minutes=6))
    assert got.patient_id == w2.id and got.slot_id == taken[0].slot_id
    # W's wait has been met by the appointment W holds: it ends, nobody is behind it.
    assert first.status == "cancelled" and first.offered_slot_id is None
    assert waitlist.position(db, first) is None


def test_bk8_a_patient_holding_the_session_cannot_join_its_waitlist(
        db: Session, clinic: Clinic) -> None:
    full_session(db, clinic)
    w, pw = clinic.patient(db)
    clinic.book(db, w.id, now=local(DAY, 7, 5))
    with pytest.raises(LimitReached):
        join_online(db, clinic, w, pw, now=local(DAY, 7, 6))
    assert waitlist.entries_for(db, patient_id=w.id) == []


# --- the restriction notice of 我的预约 (BK-6, EX-4) -----------------------------------------

NOSHOW = OPEN - timedelta(days=3)
_NOTICE = re.compile(r'data-restriction="(\d+)">\s*<strong>[^<]*</strong> 在(.+?)暂停线上预约至 '
                     r'<strong>([\d-]+)</strong>')


def a_session_at(db: Session, hospital: Hospital) -> Schedule:
    dept = make_department(db, hospital, name="心血管内科")
    doc = make_practitioner(db, hospital, dept)
    return service.create_schedule(db, hospital=hospital, department=dept, day=DAY,
                                   session=SessionOfDay.am, practitioner=doc, capacity=10,
                                   slot_minutes=6, now=CREATED)


def engine_refusals(db: Session, clinic: Clinic, patient_id: int, schedules: list[Schedule],
                    now: datetime) -> dict[str, str]:
    """Where the engine refuses this patient an online booking: hospital name -> the local
    date the restriction ends."""
    out = {}
    for schedule in schedules:
        attempt = db.begin_nested()  # only asked: whatever it books is undone
        try:
            booking.book(db, principal=clinic.patient_principal(patient_id),
                         patient_id=patient_id, channel=Channel.web, schedule_id=schedule.id,
                         now=now)
        except PatientRestricted as refused:
            until = datetime.fromisoformat(refused.detail["until"])
            out[db.get_one(Hospital, schedule.hospital_id).name] = \
                until.astimezone(get_settings().tz).date().isoformat()
        finally:
            attempt.rollback()
    return out


def test_bk6_the_notice_names_every_restriction_the_engine_enforces(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    region = clinic.hospital.region
    regional = make_hospital(db, region=region, level="tertiary",
                             clinic_weekdays=[1, 2, 3, 4, 5, 6, 7])
    service.set_policy(db, hospital=regional, pools={}, penalty={"scope": "region"})
    own_only = make_hospital(db, region=region, level="tertiary",
                             clinic_weekdays=[1, 2, 3, 4, 5, 6, 7])
    schedules = [clinic.schedule, a_session_at(db, regional), a_session_at(db, own_only)]
    # A missed exam (EX-4), recorded by the exams domain, not an outpatient appointment.
    penalties.record(db, patient_id=fam.me.id, hospital_id=clinic.hospital.id,
                     kind=PenaltyEvent.noshow, at=NOSHOW, source="exam", source_id=fam.me.id)
    refused = engine_refusals(db, clinic, fam.me.id, schedules, clock.now)
    # The engine refuses at the hospital of the no-show and at the one weighing its region.
    assert set(refused) == {clinic.hospital.name, regional.name}
    page = client.get("/me/appointments")
    assert page.status_code == 200
    shown = {(int(pid), hospital): until for pid, hospital, until in _NOTICE.findall(page.text)}
    # Every refusal is on the page, with its end; nothing the engine does not enforce is.
    assert shown == {(fam.me.id, name): until for name, until in refused.items()}
    assert f'data-restriction="{fam.kid.id}"' not in page.text

