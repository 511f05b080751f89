"""Check-in, the queue and no-shows as review found them wanting (BK-6, BK-8, BK-11).

A patient late for a late slot is queued behind, not refused, until the session's end plus
the late-arrival allowance, and nobody is marked a no-show while they may still check in;
every staff member checks a patient in with that patient's document; a no-show counts on
the day of the visit, not the day it was marked; the doctor passes over (过号) a called
patient who did not come in, who checks in again and queues behind.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.scheduling import booking, page_booking, queue, service
from onetrip.scheduling.errors import CheckInRefused, NoShowRefused
from onetrip.scheduling.models import Appointment
from onetrip.scheduling.rules import Channel, PenaltyRule, SessionOfDay
from tests.factories import auth, make_token, resident_id
from tests.scheduling.conftest import DAY, OPEN, Clinic, Clock, local
from tests.scheduling.console_kit import as_staff, at
from tests.scheduling.test_console_doctor import _sign_in_linked
from tests.scheduling.test_flows import fill

#: On the clinic day, before the 08:00-09:00 session: the window pool is out.
MORNING = local(DAY, 7, 30)


def _book_last_slot(db: Session, clinic: Clinic) -> Appointment:
    """The window books the session's last slot (08:54) for a new patient."""
    p, _ = clinic.patient(db)
    last = service.free_slots(db, schedule=clinic.schedule, channel=Channel.window,
                              now=MORNING)[-1]
    return booking.book(db, principal=clinic.window, patient_id=p.id, channel=Channel.window,
                        slot_id=last.id, now=MORNING)


def _arrive(db: Session, clinic: Clinic, appt: Appointment, hour: int, minute: int) -> None:
    """Checked in at the window with the patient's own document."""
    queue.check_in(db, principal=clinic.window, appointment_id=appt.id,
                   patient_id=appt.patient_id, now=local(DAY, hour, minute))


def _noshows(db: Session, clinic: Clinic, hour: int, minute: int) -> int:
    """What the sweeper marks at that moment (this clinic only, not the demo region)."""
    return queue.mark_noshows(db, now=local(DAY, hour, minute), hospital_id=clinic.hospital.id)


# --- 1. late for a late slot: queued behind until the session's end plus the allowance ------


def test_bk11_a_patient_late_for_the_last_slot_checks_in_after_the_planned_end(
        db: Session, clinic: Clinic) -> None:
    assert clinic.schedule.end_at == local(DAY, 9)
    last = _book_last_slot(db, clinic)
    early, absent = fill(db, clinic, 2)
    assert last.start_at == local(DAY, 8, 54) and early.start_at == local(DAY, 8)
    _arrive(db, clinic, early, 9, 2)  # over 30 minutes late: behind everyone on time
    _arrive(db, clinic, last, 9, 4)  # 10 minutes late, after the planned end: still on time
    order = queue.queue_for(db, schedule_id=clinic.schedule.id, now=local(DAY, 9, 5))
    assert [(e.appointment.id, e.late) for e in order] == [(last.id, False), (early.id, True)]
    assert _noshows(db, clinic, 9, 29) == 0  # still allowed to check in: not a no-show
    with pytest.raises(CheckInRefused) as over:
        _arrive(db, clinic, absent, 9, 30)
    assert over.value.detail == {"reason": "session_over"}
    assert _noshows(db, clinic, 9, 30) == 1
    db.refresh(absent)
    assert absent.status == "noshow"


def test_bk11_the_kiosk_and_the_phone_offer_check_in_until_it_closes(
        db: Session, clinic: Clinic) -> None:
    """The pages offer the 报到 button exactly while check-in is taken: after the planned
    end too, for a patient late for one of the last slots."""
    last = _book_last_slot(db, clinic)
    assert page_booking.visit_of(db, last, local(DAY, 9, 4)).check_in_open
    assert page_booking.visit_of(db, last, local(DAY, 9, 29)).check_in_open
    assert not page_booking.visit_of(db, last, local(DAY, 9, 30)).check_in_open


def test_bk6_check_in_and_noshow_marking_follow_the_hospitals_late_allowance(
        db: Session, clinic: Clinic) -> None:
    service.set_policy(db, hospital=clinic.hospital, pools={"late_after_minutes": 45})
    late, absent = fill(db, clinic, 2)
    _arrive(db, clinic, late, 9, 40)
    assert _noshows(db, clinic, 9, 44) == 0
    assert _noshows(db, clinic, 9, 45) == 1
    with pytest.raises(CheckInRefused):
        _arrive(db, clinic, absent, 9, 45)
    db.refresh(late)
    assert late.status == "arrived"


def test_bk11_the_consulting_room_stays_on_a_session_while_patients_wait_in_it(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    afternoon = clinic.session(db, session=SessionOfDay.pm)
    for a in fill(db, clinic, 3):
        _arrive(db, clinic, a, 7, 55)
    queue.call_next(db, principal=clinic.doctor_principal, schedule_id=clinic.schedule.id,
                    now=local(DAY, 8, 40))
    _sign_in_linked(client, db, clinic, clinic.doctor)
    at(client, local(DAY, 9, 5))  # the morning ran over: two still wait
    r = client.get("/console/queue", follow_redirects=False)
    assert r.headers["location"] == f"/console/queue/{clinic.schedule.id}"
    for _ in range(2):
        assert client.post(f"/console/queue/{clinic.schedule.id}/call-next",
                           headers={"HX-Request": "true"}).status_code == 200
    r = client.get("/console/queue", follow_redirects=False)  # nobody waits: the afternoon
    assert r.headers["location"] == f"/console/queue/{afternoon.id}"


def test_bk11_a_patient_who_checked_in_and_left_does_not_hold_the_room_all_day(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    afternoon = clinic.session(db, session=SessionOfDay.pm)
    (gone,) = fill(db, clinic, 1)
    _arrive(db, clinic, gone, 7, 55)  # checked in, never called: still "waiting"
    _sign_in_linked(client, db, clinic, clinic.doctor)
    at(client, local(DAY, 9, 29))
    r = client.get("/console/queue", follow_redirects=False)
    assert r.headers["location"] == f"/console/queue/{clinic.schedule.id}"
    at(client, local(DAY, 9, 30))  # check-in has closed: the room moves on
    r = client.get("/console/queue", follow_redirects=False)
    assert r.headers["location"] == f"/console/queue/{afternoon.id}"


# --- 2. BK-8: every staff member checks in with the patient's document ----------------------


@pytest.mark.parametrize("role", [Role.doctor, Role.hospital_admin, Role.department_admin,
                                  Role.regional_admin, Role.pharmacist, Role.window,
                                  Role.kiosk])
def test_bk8_every_staff_member_checks_in_only_with_the_patients_document(
        db: Session, clinic: Clinic, role: Role) -> None:
    appt, other = fill(db, clinic, 2)
    staff = Principal(role=role, hospital_id=clinic.hospital.id, label=role.value)
    for presented in (None, other.patient_id):
        with pytest.raises(CheckInRefused) as refused:
            queue.check_in(db, principal=staff, appointment_id=appt.id, now=MORNING,
                           patient_id=presented)
        assert refused.value.detail == {"reason": "not_owner"}
    db.refresh(appt)
    assert appt.status == "booked"
    done = queue.check_in(db, principal=staff, appointment_id=appt.id, now=MORNING,
                          patient_id=appt.patient_id)
    assert done.status == "arrived"


def test_bk8_the_patient_or_their_proxy_checks_in_from_the_phone_without_a_document(
        db: Session, clinic: Clinic) -> None:
    mine, theirs = fill(db, clinic, 2)
    me = clinic.patient_principal(mine.patient_id)
    proxy = Principal(role=Role.proxy, account_id=10**6,
                      patient_ids=frozenset({theirs.patient_id}))
    assert queue.check_in(db, principal=me, appointment_id=mine.id, now=MORNING).status \
        == "arrived"
    assert queue.check_in(db, principal=proxy, appointment_id=theirs.id, now=MORNING).status \
        == "arrived"


def test_bk8_a_doctors_token_checks_in_over_the_api_only_with_the_document(
        client: TestClient, clock: Clock, db: Session, clinic: Clinic) -> None:
    number = resident_id(date(1960, 6, 6))
    p, _ = clinic.patient(db, document_number=number)
    appt = clinic.book(db, p.id)
    doctor = auth(make_token(db, Role.doctor, clinic.hospital))
    clock.now = MORNING
    url = f"/api/v1/appointments/{appt.id}/check-in"
    bare = client.post(url, headers=doctor)
    assert bare.status_code == 409 and bare.json()["detail"] == {"reason": "not_owner"}
    ok = client.post(url, headers=doctor, json={"document_type": "resident_id_card",
                                                "document_number": number})
    assert ok.status_code == 200 and ok.json()["status"] == "arrived"


# --- 3. BK-6: a no-show counts on the day of the visit --------------------------------------


def test_bk6_a_noshow_marked_after_new_year_counts_in_the_year_of_the_visit(
        db: Session, clinic: Clinic) -> None:
    p, _ = clinic.patient(db)
    first = clinic.book(db, p.id)
    assert _noshows(db, clinic, 12, 0) == 1
    new_years_eve = date(2026, 12, 31)
    evening = clinic.session(db, day=new_years_eve, session=SessionOfDay.pm)
    second = booking.book(db, principal=clinic.window, patient_id=p.id, channel=Channel.window,
                          schedule_id=evening.id, now=local(new_years_eve, 9))
    # The sweeper was not running over the holiday: the no-show is marked on 2 January.
    marked = local(date(2027, 1, 2), 9)
    assert queue.mark_noshows(db, now=marked, hospital_id=clinic.hospital.id) == 1
    for appt in (first, second):
        db.refresh(appt)
        assert appt.noshow_at == appt.start_at
    # Beijing rule: the 2nd no-show of 2026, 60 days from the visit (BK-6)
    restriction = booking.restriction_of(db, patient_id=p.id, hospital_id=clinic.hospital.id,
                                         rule=PenaltyRule(), now=marked)
    assert restriction is not None and restriction.count == 2
    assert restriction.until == second.start_at + timedelta(days=60)


# --- 4. BK-6: the window marks a no-show only once check-in has closed ----------------------


def test_bk6_the_window_marks_a_noshow_only_once_the_late_patient_can_no_longer_come(
        db: Session, clinic: Clinic) -> None:
    late, absent = fill(db, clinic, 2)
    for minute in (31, 59):
        with pytest.raises(NoShowRefused) as early:
            queue.mark_noshow(db, principal=clinic.window, appointment_id=late.id,
                              now=local(DAY, 8, minute))
        assert early.value.detail == {"due_at": local(DAY, 9, 30).isoformat()}
    _arrive(db, clinic, late, 8, 35)  # 35 minutes late: queued behind, not a no-show
    db.refresh(late)
    assert late.status == "arrived"
    with pytest.raises(NoShowRefused):
        queue.mark_noshow(db, principal=clinic.window, appointment_id=absent.id,
                          now=local(DAY, 9, 29))
    marked = queue.mark_noshow(db, principal=clinic.window, appointment_id=absent.id,
                               now=local(DAY, 9, 30))
    assert marked.status == "noshow" and marked.noshow_at == absent.start_at


# --- 5. BK-11: the doctor passes over (过号) a called patient who did not come in --------


def _three_waiting(db: Session, clinic: Clinic) -> list[Appointment]:
    appts = sorted(fill(db, clinic, 3), key=lambda a: a.start_at)
    for a in appts:
        _arrive(db, clinic, a, 7, 50)
    return appts


def test_bk11_a_passed_over_patient_checks_in_again_and_queues_behind(
        db: Session, clinic: Clinic) -> None:
    away, second, third = _three_waiting(db, clinic)
    doctor = clinic.doctor_principal
    called = queue.call_next(db, principal=doctor, schedule_id=clinic.schedule.id,
                             now=local(DAY, 8))
    assert called is not None and called.id == away.id
    passed = queue.pass_over(db, principal=doctor, schedule_id=clinic.schedule.id,
                             now=local(DAY, 8, 1), appointment_id=away.id)
    assert (passed.status, passed.called_at, passed.checked_in_at) == ("booked", None, None)
    assert queue.in_room(db, schedule_id=clinic.schedule.id) is None
    with pytest.raises(CheckInRefused):  # nobody is called now: nothing to pass over
        queue.pass_over(db, principal=doctor, schedule_id=clinic.schedule.id,
                        now=local(DAY, 8, 1))
    nxt = queue.call_next(db, principal=doctor, schedule_id=clinic.schedule.id,
                          now=local(DAY, 8, 2))
    assert nxt is not None and nxt.id == second.id
    db.refresh(away)
    assert away.status == "booked"  # not recorded as seen
    _arrive(db, clinic, away, 8, 40)  # back at the kiosk, 40 minutes late: behind
    order = queue.queue_for(db, schedule_id=clinic.schedule.id)
    assert [(e.appointment.id, e.late) for e in order] == [(third.id, False), (away.id, True)]


def test_bk6_a_passed_over_patient_who_never_returns_is_a_noshow(
        db: Session, clinic: Clinic) -> None:
    away, *_ = _three_waiting(db, clinic)
    queue.call_next(db, principal=clinic.doctor_principal, schedule_id=clinic.schedule.id,
                    now=local(DAY, 8))
    queue.pass_over(db, principal=clinic.doctor_principal, schedule_id=clinic.schedule.id,
                    now=local(DAY, 8, 1))
    assert _noshows(db, clinic, 9, 30) == 1
    db.refresh(away)
    assert away.status == "noshow"


def test_bk11_passing_over_an_appointment_not_in_the_room_is_refused(
        db: Session, clinic: Clinic) -> None:
    first, second, _ = _three_waiting(db, clinic)
    queue.call_next(db, principal=clinic.doctor_principal, schedule_id=clinic.schedule.id,
                    now=local(DAY, 8))
    with pytest.raises(CheckInRefused) as refused:  # a stale page names someone else
        queue.pass_over(db, principal=clinic.doctor_principal,
                        schedule_id=clinic.schedule.id, now=local(DAY, 8, 1),
                        appointment_id=second.id)
    assert refused.value.detail == {"reason": "not_called"}
    db.refresh(first)
    db.refresh(second)
    assert (first.status, second.status) == ("arrived", "arrived")
    assert first.called_at is not None and second.called_at is None


def test_bk11_the_doctors_console_has_a_pass_over_button_beside_the_called_patient(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    away, second, _ = _three_waiting(db, clinic)
    as_staff(client, db, Role.doctor, clinic.hospital, local(DAY, 8))
    hx = {"HX-Request": "true"}
    page = client.get(f"/console/queue/{clinic.schedule.id}")
    assert "过号</button>" not in page.text  # nobody called yet
    called = client.post(f"/console/queue/{clinic.schedule.id}/call-next", headers=hx)
    assert f'data-current="{away.id}"' in called.text
    url = f"/console/queue/{clinic.schedule.id}/pass-over"
    assert f'hx-post="{url}"' in called.text and "过号</button>" in called.text
    assert f'name="appointment_id" value="{away.id}"' in called.text
    r = client.post(url, data={"appointment_id": away.id}, headers=hx)
    assert r.status_code == 200 and "<html" not in r.text and "已过号" in r.text
    assert 'data-current=""' in r.text and f'data-appointment="{away.id}"' not in r.text
    db.refresh(away)
    assert away.status == "booked" and away.called_at is None
    again = client.post(url, data={"appointment_id": away.id}, headers=hx)
    assert again.status_code == 409 and "没有" in again.text
    client.post(f"/console/queue/{clinic.schedule.id}/call-next", headers=hx)
    plain = client.post(url, data={"appointment_id": second.id}, follow_redirects=False)
    assert plain.status_code == 303
    assert plain.headers["location"] == f"/console/queue/{clinic.schedule.id}"
    db.refresh(second)
    assert second.status == "booked"


def test_bk11_the_api_passes_over_the_called_patient_beside_call_next(
        client: TestClient, clock: Clock, db: Session, clinic: Clinic) -> None:
    away, _second, _ = _three_waiting(db, clinic)
    doctor = auth(make_token(db, Role.doctor, clinic.hospital))
    clock.now = local(DAY, 8)
    base = f"/api/v1/schedules/{clinic.schedule.id}"
    assert client.post(f"{base}/call-next", headers=doctor).json()["id"] == away.id
    r = client.post(f"{base}/pass-over", headers=doctor, json={"appointment_id": away.id})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == away.id and r.json()["status"] == "booked"
    assert r.json()["checked_in_at"] is None
    none = client.post(f"{base}/pass-over", headers=doctor)
    assert none.status_code == 409 and none.json()["code"] == "check_in_refused"
    assert none.json()["detail"] == {"reason": "not_called"}
    kiosk = client.post(f"{base}/pass-over",
                        headers=auth(make_token(db, Role.kiosk, clinic.hospital)))
    assert kiosk.status_code == 403
    clock.now = OPEN
    assert client.post(f"{base}/pass-over").status_code == 401


def test_bk11_a_patient_passed_over_comes_back_within_minutes_and_still_queues_behind(
        db: Session, clinic: Clinic) -> None:
    """Back at 08:03 for an 08:00 slot is on time by the slot, but they had their turn."""
    away, second, third = _three_waiting(db, clinic)
    doctor = clinic.doctor_principal
    queue.call_next(db, principal=doctor, schedule_id=clinic.schedule.id, now=local(DAY, 8))
    queue.pass_over(db, principal=doctor, schedule_id=clinic.schedule.id,
                    now=local(DAY, 8, 1))
    _arrive(db, clinic, away, 8, 3)
    order = queue.queue_for(db, schedule_id=clinic.schedule.id, now=local(DAY, 8, 4))
    assert [(e.appointment.id, e.late) for e in order] == [
        (second.id, False), (third.id, False), (away.id, True)]


def _passed_over_at_945(db: Session, clinic: Clinic) -> Appointment:
    """The doctor, running late, calls the first of three at 09:45 and passes them over."""
    away, *_ = _three_waiting(db, clinic)
    for step in (queue.call_next, queue.pass_over):
        step(db, principal=clinic.doctor_principal, schedule_id=clinic.schedule.id,
             now=local(DAY, 9, 45))
    return away


def test_bk11_a_doctor_running_late_passes_over_a_patient_who_may_still_come_back(
        db: Session, clinic: Clinic) -> None:
    """Called at 09:45, after check-in closed (09:30): passing over is no no-show within
    seconds; they may check in again for the allowance after being passed over."""
    away = _passed_over_at_945(db, clinic)
    assert _noshows(db, clinic, 9, 46) == 0
    assert page_booking.visit_of(db, away, local(DAY, 9, 50)).check_in_open
    _arrive(db, clinic, away, 9, 50)
    db.refresh(away)
    assert away.status == "arrived"


def test_bk6_a_patient_passed_over_late_who_never_returns_is_a_noshow_after_the_allowance(
        db: Session, clinic: Clinic) -> None:
    away = _passed_over_at_945(db, clinic)
    assert _noshows(db, clinic, 10, 14) == 0
    assert _noshows(db, clinic, 10, 15) == 1
    with pytest.raises(CheckInRefused):
        _arrive(db, clinic, away, 10, 16)


def test_rm1_a_patient_called_again_after_being_passed_over_is_told_again(
        db: Session, clinic: Clinic) -> None:
    from sqlalchemy import select

    from onetrip.notify.models import Notification

    away, *_ = _three_waiting(db, clinic)
    doctor = clinic.doctor_principal
    queue.call_next(db, principal=doctor, schedule_id=clinic.schedule.id, now=local(DAY, 8))
    db.commit()  # each press of the doctor's is a request of its own
    queue.pass_over(db, principal=doctor, schedule_id=clinic.schedule.id, now=local(DAY, 8, 1))
    _arrive(db, clinic, away, 8, 40)
    for minute in (2, 8, 14):  # the two on time first, then the one passed over
        queue.call_next(db, principal=doctor, schedule_id=clinic.schedule.id,
                        now=local(DAY, 8, minute + 30))
    db.commit()
    turns = db.scalars(select(Notification).where(Notification.appointment_id == away.id,
                                                  Notification.template == "your_turn"))
    assert len(list(turns)) == 2
