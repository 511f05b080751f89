"""Offers accepted at once, in real server processes against a real database.

BK-8: an accepted waitlist offer is a booking like any other, so a patient's total of
active appointments holds whichever way the bookings arrive, even all at the same moment.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from onetrip.db import utcnow
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital
from onetrip.scheduling import booking, waitlist
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.models import Appointment, Slot, WaitlistEntry
from onetrip.scheduling.rules import Channel
from tests import racekit

pytestmark = pytest.mark.slow

WAITERS = 24


def offers_to_waiters(engine: Engine, *, sessions: int = 2,
                      ) -> tuple[racekit.Seed, dict[int, list[int]]]:
    """Full sessions, each of its own department; each waiter holds an offer in every one,
    and the hospital then allows one active appointment a patient. Returns the offers by
    patient."""
    seed = racekit.seed(engine, patients=2 * WAITERS, schedules=sessions, capacity=WAITERS,
                        departments=sessions)
    holders, waiters = seed.patient_ids[:WAITERS], seed.patient_ids[WAITERS:]
    now = utcnow()
    with Session(engine) as db:
        hospital = db.scalars(select(Hospital).where(Hospital.code == seed.hospital_code)).one()
        clerk = Principal(role=Role.window, hospital_id=hospital.id, label="test")
        taken = [booking.book(db, principal=clerk, patient_id=pid, channel=Channel.window,
                              schedule_id=sid, now=now)
                 for sid in seed.schedule_ids for pid in holders]
        for sid in seed.schedule_ids:
            for pid in waiters:
                waitlist.join(db, principal=clerk, patient_id=pid, schedule_id=sid,
                              channel=Channel.window, now=now)
        for appt in taken:  # each freed slot is offered to the next waiter of its session
            booking.cancel(db, principal=clerk, appointment_id=appt.id, now=now)
        scheduling_service.set_policy(db, hospital=hospital, pools={
            "online_share": 1.0, "priority_share": 0, "clinic_share": 0,
            "max_active_appointments": 1})
        offers: dict[int, list[int]] = {}
        for entry in db.scalars(select(WaitlistEntry).where(WaitlistEntry.status == "offered")):
            offers.setdefault(entry.patient_id, []).append(entry.id)
        db.commit()
    assert sorted(offers) == sorted(waiters) and {len(o) for o in offers.values()} == {sessions}
    return seed, offers


def test_bk8_a_patient_accepting_two_offers_at_once_gets_one_at_a_limit_of_one(
        race_engine: Engine) -> None:
    seed, offers = offers_to_waiters(race_engine)
    paths = [f"/api/v1/waitlist/{entry_id}/accept" for ids in offers.values() for entry_id in ids]
    with racekit.server(str(race_engine.info["url"]), workers=2) as (base, _proc):
        results = racekit.storm(base, [{} for _ in paths], token=seed.window_token,
                                paths=paths)
    codes = Counter(code for code, _ in results)
    assert codes == {200: WAITERS, 409: WAITERS}, codes
    assert {body["code"] for code, body in results if code == 409} == {"limit_reached"}
    with Session(race_engine) as db:
        active = Counter(db.scalars(select(Appointment.patient_id).where(
            Appointment.status.in_(("held", "booked", "arrived")))))
    assert active == Counter(dict.fromkeys(offers, 1))


def test_bk6_leaving_and_accepting_the_same_offer_at_once_does_exactly_one(
        race_engine: Engine) -> None:
    """Either the patient is booked and stays off the waitlist, or they left and the slot is
    free again: never both, never neither, never a server error."""
    seed, offers = offers_to_waiters(race_engine, sessions=1)
    entry_ids = [ids[0] for ids in offers.values()]
    paths = [f"/api/v1/waitlist/{e}/{action}" for e in entry_ids
             for action in ("accept", "cancel")]
    with racekit.server(str(race_engine.info["url"]), workers=2) as (base, _proc):
        results = racekit.storm(base, [{} for _ in paths], token=seed.window_token,
                                paths=paths)
    assert Counter(code for code, _ in results) == {200: WAITERS, 409: WAITERS}
    with Session(race_engine) as db:
        entries = {e.id: e for e in db.scalars(select(WaitlistEntry))}
        booked = {a.slot_id: a for a in db.scalars(select(Appointment).where(
            Appointment.status == "booked"))}
        for (accepted, _), (left, _), entry_id in zip(
                results[0::2], results[1::2], entry_ids, strict=True):
            entry = entries[entry_id]
            assert entry.offered_slot_id is not None
            slot = db.get_one(Slot, entry.offered_slot_id)
            if accepted == 200:
                assert entry.status == "accepted" and slot.status == "booked"
                assert booked[slot.id].patient_id == entry.patient_id
            else:
                assert left == 200 and entry.status == "cancelled"
                assert slot.status == "free" and slot.id not in booked
