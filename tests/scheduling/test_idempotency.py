"""Idempotency keys belong to whoever sent them: one desk's key never answers another's."""

from __future__ import annotations

from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.scheduling import groupcommit
from onetrip.scheduling.rules import Channel
from tests.scheduling.conftest import OPEN, Clinic


def test_two_staff_members_using_the_same_key_each_book_for_their_own_patient(
        db: Session, clinic: Clinic) -> None:
    # Signed-in staff carry no token or account: only who they are tells them apart.
    clerks = [Principal(role=Role.window, hospital_id=clinic.hospital.id, staff_id=staff_id,
                        session_id=staff_id, label=f"clerk{staff_id}") for staff_id in (1, 2)]
    patients = [clinic.patient(db)[0].id for _ in clerks]
    first, second = groupcommit.run_batch(db, [groupcommit.Command(
        patient_id=patient, channel=Channel.window, now=OPEN, schedule_id=clinic.schedule.id,
        principal=clerk, idempotency_key="desk-1")
        for clerk, patient in zip(clerks, patients, strict=True)], now=OPEN)
    assert (first.status_code, second.status_code) == (201, 201), (first, second)
    assert first.body["patient_id"] != second.body["patient_id"]
    assert not first.replayed and not second.replayed
