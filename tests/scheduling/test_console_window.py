"""The window desk in the console: find, book (BK-5), check in, mark a no-show (BK-6)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.scheduling import booking
from onetrip.scheduling.models import Appointment
from onetrip.scheduling.rules import Channel, SessionOfDay
from tests.factories import resident_id
from tests.scheduling.conftest import DAY, OPEN, Clinic, chinese_name, local
from tests.scheduling.console_kit import as_staff, at

MORNING = local(DAY, 7, 30)  # the window pool of DAY is open, the session starts at 08:00


def _slot_ids(html: str) -> list[tuple[int, str]]:
    return [(int(a), b) for a, b in re.findall(r'data-slot="(\d+)" data-pool="(\w+)"', html)]


def test_bk5_clerk_finds_the_patient_by_document_books_a_window_slot_and_checks_in(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    number = resident_id(date(1946, 5, 5))
    patient, _ = clinic.patient(db, document_number=number)
    afternoon = clinic.session(db, capacity=20, session=SessionOfDay.pm)  # one priority slot
    as_staff(client, db, Role.window, clinic.hospital, OPEN)  # two days ahead

    desk = client.get("/console/window", params={"day": DAY.isoformat()})
    assert desk.status_code == 200 and f'data-schedule="{afternoon.id}"' in desk.text
    found = client.post("/console/window/find", data={
        "by": "document", "document_type": "resident_id_card", "document_number": number,
        "day": DAY.isoformat()}, headers={"HX-Request": "true"})
    assert found.status_code == 200 and "<html" not in found.text
    assert f'data-patient="{patient.id}"' in found.text and number not in found.text
    assert number[:6] + "********" + number[-4:] in found.text

    session = client.get(f"/console/window/schedules/{afternoon.id}",
                         params={"patient": patient.id})
    slots = _slot_ids(session.text)
    # BK-5: ahead of the day the window reaches the priority quota (and online slots);
    # window slots open on the day, referral slots are never the window's
    assert {p for _, p in slots} == {"priority", "online"}
    priority = next(s for s, p in slots if p == "priority")
    r = client.post("/console/window/book", data={
        "schedule_id": afternoon.id, "patient_id": patient.id, "slot_id": priority},
        follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "预约成功" in page.text and "优先号" in page.text
    appt = db.query(Appointment).filter_by(patient_id=patient.id).one()
    assert (appt.channel, appt.pool, appt.status) == ("window", "priority", "booked")
    assert f'/appointments/{appt.id}/check-in' not in page.text  # not on the day yet

    again = client.post("/console/window/book", data={
        "schedule_id": afternoon.id, "patient_id": patient.id, "slot_id": slots[0][0]})
    assert again.status_code == 409 and "已预约过该出诊" in again.text

    at(client, local(DAY, 12, 0))  # check-in opens two hours before the slot
    desk = client.get("/console/window", params={"patient": patient.id})
    assert f'action="/console/window/appointments/{appt.id}/check-in"' in desk.text
    checked = client.post(f"/console/window/appointments/{appt.id}/check-in",
                          data={"patient_id": patient.id}, follow_redirects=False)
    assert checked.headers["location"] == (
        f"/console/window?patient={patient.id}&flash=checked_in&appointment={appt.id}")
    checked = client.get(checked.headers["location"])
    assert checked.status_code == 200 and "已报到，前面还有0人" in checked.text
    db.refresh(appt)
    assert appt.status == "arrived" and appt.checked_in_at == local(DAY, 12, 0)


def test_bk8_check_in_refuses_a_person_other_than_the_booked_patient(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    owner, pp = clinic.patient(db)
    stranger, _ = clinic.patient(db)
    appt = booking.book(db, principal=pp, patient_id=owner.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    as_staff(client, db, Role.window, clinic.hospital, MORNING)
    r = client.post(f"/console/window/appointments/{appt.id}/check-in",
                    data={"patient_id": stranger.id})
    assert r.status_code == 409 and "预约不可转让" in r.text
    db.refresh(appt)
    assert appt.status == "booked"


def test_bk5_a_slot_taken_meanwhile_is_refused_with_the_page_kept(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    first, _ = clinic.patient(db)
    second, _ = clinic.patient(db)
    as_staff(client, db, Role.window, clinic.hospital, MORNING)
    slot = _slot_ids(client.get(f"/console/window/schedules/{clinic.schedule.id}",
                                params={"patient": first.id}).text)[0][0]
    ok = client.post("/console/window/book", data={
        "schedule_id": clinic.schedule.id, "patient_id": first.id, "slot_id": slot},
        follow_redirects=False)
    assert ok.status_code == 303
    taken = client.post("/console/window/book", data={
        "schedule_id": clinic.schedule.id, "patient_id": second.id, "slot_id": slot})
    assert taken.status_code == 409 and "该号源已被预约" in taken.text
    assert "可预约号源" in taken.text  # the desk stays on the session to pick another


def test_find_form_shows_each_problem_beside_its_field(client: TestClient, db: Session,
                                                       clinic: Clinic) -> None:
    as_staff(client, db, Role.window, clinic.hospital, MORNING)
    empty = client.post("/console/window/find", data={"by": "document"})
    assert empty.status_code == 422 and 'data-field="document_number"' in empty.text
    typo = resident_id(date(1950, 1, 1))[:-1] + "Y"  # one wrong key of eighteen
    bad = client.post("/console/window/find", data={
        "by": "document", "document_type": "resident_id_card", "document_number": typo})
    assert bad.status_code == 422 and 'data-field="document_number"' in bad.text
    assert f'value="{typo}"' in bad.text  # corrected in place, not typed again
    phone = client.post("/console/window/find", data={"by": "phone", "phone": "12"})
    assert phone.status_code == 422 and 'data-field="phone"' in phone.text
    assert 'value="12"' in phone.text
    number = resident_id(date(1951, 2, 2))
    clinic.patient(db, document_number=number)
    found = client.post("/console/window/find", data={
        "by": "document", "document_type": "resident_id_card", "document_number": number})
    assert found.status_code == 200 and number not in found.text  # found: masked only
    none = client.post("/console/window/find", data={"by": "name", "name": chinese_name()})
    assert none.status_code == 200 and 'data-empty="found"' in none.text
    day = client.get("/console/window", params={"day": "2026-13-40"})
    assert day.status_code == 422 and 'data-field="day"' in day.text and "日期格式" in day.text
    hx = {"HX-Request": "true", "HX-Target": "sessions"}
    part = client.get("/console/window", params={"day": DAY.isoformat()}, headers=hx)
    assert part.status_code == 200 and "<html" not in part.text
    assert f'data-schedule="{clinic.schedule.id}"' in part.text
    shown = client.get("/console/window", params={"day": "昨天"}, headers=hx)
    # a real 422 that htmx still swaps in place (responseHandling in the base template)
    assert shown.status_code == 422 and 'data-field="day"' in shown.text
    assert "<html" not in shown.text


def test_bk6_clerk_marks_a_no_show_only_after_the_late_allowance(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    patient, pp = clinic.patient(db)
    appt = booking.book(db, principal=pp, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    # BK-11: a late patient checks in (queued behind) until 30 minutes after the session
    closes = clinic.schedule.end_at + timedelta(minutes=30)
    as_staff(client, db, Role.window, clinic.hospital, appt.start_at + timedelta(minutes=31))
    early = client.post(f"/console/window/appointments/{appt.id}/noshow")
    assert early.status_code == 409 and "出诊结束30分钟后仍未报到" in early.text
    db.refresh(appt)
    assert appt.status == "booked"
    roster = client.get(f"/console/window/schedules/{clinic.schedule.id}").text
    assert f'action="/console/window/appointments/{appt.id}/noshow"' not in roster
    at(client, closes)
    roster = client.get(f"/console/window/schedules/{clinic.schedule.id}").text
    assert f'action="/console/window/appointments/{appt.id}/noshow"' in roster
    done = client.post(f"/console/window/appointments/{appt.id}/noshow",
                       follow_redirects=False)
    assert done.headers["location"] == (
        f"/console/window/schedules/{clinic.schedule.id}?flash=noshow")
    done = client.get(done.headers["location"])
    assert done.status_code == 200 and "已登记爽约" in done.text
    db.refresh(appt)
    assert appt.status == "noshow" and appt.penalty_event == "noshow"
    twice = client.post(f"/console/window/appointments/{appt.id}/noshow")
    assert twice.status_code == 409
    desk = client.get("/console/window", params={"patient": patient.id})
    assert "data-restriction" in desk.text and "不能线上预约" in desk.text


def test_bk6_clerk_cancels_at_the_window_free_before_the_deadline_counted_after(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    patient, pp = clinic.patient(db)
    other, _ = clinic.patient(db)
    wednesday = local(DAY - timedelta(days=5), 10)  # before Friday 16:00, the free deadline
    early = booking.book(db, principal=pp, patient_id=patient.id, channel=Channel.app,
                         schedule_id=clinic.schedule.id, now=wednesday)
    as_staff(client, db, Role.window, clinic.hospital, wednesday)
    desk = client.get("/console/window", params={"patient": patient.id})
    assert f'action="/console/window/appointments/{early.id}/cancel"' in desk.text
    wrong = client.post(f"/console/window/appointments/{early.id}/cancel",
                        data={"patient_id": other.id})
    assert wrong.status_code == 409 and "证件与预约人不符" in wrong.text
    db.refresh(early)
    assert early.status == "booked"
    ok = client.post(f"/console/window/appointments/{early.id}/cancel",
                     data={"patient_id": patient.id})
    assert ok.status_code == 200 and "已退号" in ok.text and "计入失约" not in ok.text
    db.refresh(early)
    assert (early.status, early.penalty_event) == ("cancelled", None)
    assert early.slot.status == "free"

    late = booking.book(db, principal=pp, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    at(client, MORNING)  # past 16:00 of the working day before
    counted = client.post(f"/console/window/appointments/{late.id}/cancel",
                          data={"patient_id": patient.id})
    assert counted.status_code == 200 and "计入失约记录" in counted.text
    db.refresh(late)
    assert late.penalty_event == "same_day_refund"


def test_before_the_same_day_opening_the_window_is_told_when_booking_opens(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    patient, _ = clinic.patient(db)
    as_staff(client, db, Role.window, clinic.hospital, local(DAY, 6, 40))
    path = f"/console/window/schedules/{clinic.schedule.id}"
    page = client.get(path, params={"patient": patient.id})
    assert page.status_code == 200 and not _slot_ids(page.text)
    assert "07:00" in page.text and "已无可预约号源" not in page.text
    at(client, local(DAY, 7))
    assert _slot_ids(client.get(path, params={"patient": patient.id}).text)


FORGED = "您的医保账户异常，请拨打4008001234"


def test_the_desk_shows_no_text_a_link_brings(client: TestClient, db: Session,
                                              clinic: Clinic) -> None:
    """Only messages OneTrip builds from the appointment the link names, and only when that
    appointment is the patient's at the desk and in the state the message tells."""
    patient, pp = clinic.patient(db)
    other, op = clinic.patient(db)
    mine = booking.book(db, principal=pp, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    wednesday = local(DAY - timedelta(days=5), 10)  # free cancellation still open
    theirs = booking.book(db, principal=op, patient_id=other.id, channel=Channel.app,
                          schedule_id=clinic.schedule.id, now=wednesday)
    as_staff(client, db, Role.window, clinic.hospital, MORNING)
    for query in ({"flash": FORGED}, {"flash": FORGED, "patient": patient.id},
                  {"flash": "checked_in", "patient": patient.id, "appointment": FORGED},
                  {"flash": "checked_in", "patient": patient.id, "appointment": mine.id},
                  {"flash": "cancelled", "patient": patient.id, "appointment": mine.id},
                  {"flash": "cancelled", "patient": patient.id,
                   "appointment": "99999999999999999999"}):
        r = client.get("/console/window", params=query)
        assert r.status_code == 200 and FORGED not in r.text, query
        assert "已报到" not in r.text and "已退号" not in r.text, query
    booking.cancel(db, principal=op, appointment_id=theirs.id, now=wednesday, reason="不去了")
    db.commit()
    r = client.get("/console/window", params={"flash": "cancelled", "patient": patient.id,
                                              "appointment": theirs.id})
    assert r.status_code == 200 and "已退号" not in r.text
    for flash in (FORGED, "checked_in"):
        r = client.get(f"/console/window/schedules/{clinic.schedule.id}",
                       params={"flash": flash})
        assert r.status_code == 200 and FORGED not in r.text and 'class="flash ok"' not in r.text
