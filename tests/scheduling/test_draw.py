"""BK-8: the API bookings of a pool opening's fair window are booked in the order of their
random draw, exactly, whatever the order they arrived in."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.scheduling import groupcommit
from onetrip.scheduling.models import Appointment, OpeningTicket
from onetrip.scheduling.rules import Channel
from tests.factories import auth, make_token
from tests.scheduling.conftest import DAY, OPEN, Clinic, Clock, local


def test_bk8_the_draw_is_booked_lowest_draw_first_whatever_the_arrival(
        db: Session, clinic: Clinic) -> None:
    patients = [clinic.patient(db)[0].id for _ in range(12)]
    draws = random.Random(7).sample(range(1_000, 1_000_000), len(patients))
    for patient, draw in zip(patients, draws, strict=True):  # arrival order: the list's
        command = groupcommit.Command(patient_id=patient, channel=Channel.window, now=OPEN,
                                      schedule_id=clinic.schedule.id, principal=clinic.window)
        db.add(OpeningTicket(opening="h:online:07:00", draw=draw, created_at=OPEN,
                             command=command.to_json()))
    db.flush()
    groupcommit.book_drawn(db, "h:online:07:00", now=OPEN)
    tickets = list(db.scalars(select(OpeningTicket).order_by(OpeningTicket.draw)))
    codes = [t.status_code for t in tickets]
    # The nine online slots go to the nine lowest draws, the earliest slot to the lowest;
    # the tenth slot is the window's, open on the day only.
    assert codes == [201] * 9 + [409] * 3
    assert {t.answer["body"]["code"] for t in tickets[9:] if t.answer} == {"pool_closed"}
    starts = [t.answer["body"]["start"] for t in tickets[:9] if t.answer]
    assert starts == sorted(starts)
    mine = select(Appointment).where(Appointment.schedule_id == clinic.schedule.id)
    booked = {a.patient_id for a in db.scalars(mine)}
    assert booked == {t.command["patient_id"] for t in tickets[:9] if t.command}
    # Booking the draw again books nothing more and changes no answer.
    groupcommit.book_drawn(db, "h:online:07:00", now=OPEN + timedelta(seconds=1))
    db.expire_all()
    assert [t.status_code for t in db.scalars(
        select(OpeningTicket).order_by(OpeningTicket.draw))] == codes
    assert len(db.scalars(mine).all()) == 9


def test_an_api_booking_in_the_fair_window_is_answered_from_the_draw(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    # The online pool of DAY opens at 07:00 seven days before; 2 seconds are drawn.
    clock.now = local(DAY - timedelta(days=7), 7) + timedelta(seconds=0.5)
    window = auth(make_token(db, Role.window, clinic.hospital))
    patient, _ = clinic.patient(db)
    body = {"schedule_id": clinic.schedule.id, "patient_id": patient.id, "channel": "window"}
    headers = {**window, "Idempotency-Key": "rush-1"}
    first = client.post("/api/v1/appointments", json=body, headers=headers)
    assert first.status_code == 201, first.text
    ticket = db.scalars(select(OpeningTicket).where(OpeningTicket.command.is_not(None))).one()
    assert ticket.status_code == 201 and ticket.answer == {"body": first.json(),
                                                           "replayed": False}
    assert ticket.command is not None and "secret" not in ticket.command
    # A retry in the same window is drawn too, and gets the first answer, not a booking.
    again = client.post("/api/v1/appointments", json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(db.scalars(select(Appointment).where(
        Appointment.schedule_id == clinic.schedule.id)).all()) == 1


def test_a_page_booking_in_the_same_opening_leaves_the_api_draw_alone(
        db: Session, clinic: Clinic) -> None:
    from onetrip.scheduling import fairness

    opening = fairness.Opening("h:online:07:00", OPEN + timedelta(seconds=2))
    fairness.take_ticket(db, opening, OPEN)  # a portal or FHIR booking: no request kept
    patient, _ = clinic.patient(db)
    command = groupcommit.Command(patient_id=patient.id, channel=Channel.window, now=OPEN,
                                  schedule_id=clinic.schedule.id, principal=clinic.window)
    kept = fairness.take_ticket(db, opening, OPEN, command=command.to_json())
    groupcommit.book_drawn(db, opening.key, now=OPEN)
    db.refresh(kept)
    assert kept.status_code == 201, kept.answer


def test_bk8_more_requests_buy_no_more_chances_and_late_ones_queue_behind_the_draw() -> None:
    from onetrip.scheduling import fairness

    opening = fairness.Opening("h:online:07:00", OPEN + timedelta(seconds=2))
    # One draw per patient and opening, however many requests (and accounts) they send.
    mine = {fairness.draw_of(opening, OPEN + timedelta(seconds=s), patient_id=7)
            for s in (0, 0.5, 1.9)}
    assert len(mine) == 1
    others = {fairness.draw_of(opening, OPEN, patient_id=p) for p in range(100, 200)}
    assert len(others) == 100 and len(mine & others) == 0
    # Another opening draws afresh.
    later = fairness.Opening("h:online:07:00+1d", OPEN + timedelta(days=1, seconds=2))
    assert fairness.draw_of(later, OPEN + timedelta(days=1), patient_id=7) not in mine
    # After the window: behind every draw, in order of arrival.
    late = [fairness.draw_of(opening, opening.closes_at + timedelta(milliseconds=ms),
                             patient_id=7) for ms in (1, 5, 900)]
    assert late == sorted(late) and min(late) > max(others | mine)


def test_bk8_the_draw_follows_the_slots_own_opening_after_a_policy_change(
        db: Session, clinic: Clinic) -> None:
    """A session generated under 07:00 keeps its slots' timers when the hospital moves its
    online opening to 08:00: the rush of its 07:00 opening is drawn, and 08:00 is no opening
    of it (existing slots keep their timers, docs/booking.md)."""
    from onetrip.scheduling import fairness, service

    service.set_policy(db, hospital=clinic.hospital, pools={"online_release_time": "08:00"})
    db.flush()
    seven = local(DAY - timedelta(days=7), 7)

    def opening(now: datetime) -> fairness.Opening | None:
        return fairness.opening_for(db, schedule_id=clinic.schedule.id, slot_id=None,
                                    channel=Channel.web, now=now)

    drawn = opening(seven + timedelta(seconds=1))
    assert drawn is not None and drawn.closes_at == seven + timedelta(seconds=2)
    assert seven.isoformat() in drawn.key
    assert opening(seven - timedelta(seconds=1)) is None
    assert opening(local(DAY - timedelta(days=7), 8)) is None
