"""Penalty events other domains record (an exam no-show, EX-4) restrict outpatient booking
under the booking engine's own rule (BK-6): counted once, in the rule's scope, following a
patient merge (ID-3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity import empi
from onetrip.identity.rules import DocumentType, Role
from onetrip.identity.service import Principal
from onetrip.scheduling import booking, penalties, service
from onetrip.scheduling.errors import PatientRestricted
from onetrip.scheduling.rules import Channel, PenaltyEvent
from tests.factories import make_hospital
from tests.scheduling.conftest import OPEN, Clinic

NOSHOW = OPEN - timedelta(days=3)


def exam_noshow(db: Session, clinic: Clinic, patient_id: int, source_id: int = 1,
                hospital_id: int | None = None) -> bool:
    return penalties.record(db, patient_id=patient_id,
                            hospital_id=hospital_id or clinic.hospital.id,
                            kind=PenaltyEvent.noshow, at=NOSHOW, source="exam",
                            source_id=source_id)


def test_bk6_a_no_show_recorded_by_another_domain_restricts_online_booking(
        db: Session, clinic: Clinic) -> None:
    p, me = clinic.patient(db)
    exam_noshow(db, clinic, p.id)
    with pytest.raises(PatientRestricted):
        booking.book(db, principal=me, patient_id=p.id, channel=Channel.app,
                     schedule_id=clinic.schedule.id, now=OPEN)
    # The restriction stops online channels only: the window still books (BK-6).
    assert clinic.book(db, p.id).status == "booked"


def test_the_same_event_recorded_twice_counts_once(db: Session, clinic: Clinic) -> None:
    """Two no-shows would restrict for 60 days under the default 30/60/90 rule; the same
    no-show recorded twice restricts for 30."""
    p, _ = clinic.patient(db)
    assert exam_noshow(db, clinic, p.id) is True
    assert exam_noshow(db, clinic, p.id) is False
    assert db.scalar(select(func.count(penalties.PenaltyRecord.id)).where(
        penalties.PenaltyRecord.patient_id == p.id)) == 1
    _policy, rule = service.policy_for(db, clinic.hospital.id)
    found = booking.restriction_of(db, patient_id=p.id, hospital_id=clinic.hospital.id,
                                   rule=rule, now=OPEN)
    assert found is not None and found.count == 1
    assert found.until.date() == (NOSHOW + timedelta(days=30)).date()


def test_an_event_at_another_hospital_counts_only_under_a_regional_rule(
        db: Session, clinic: Clinic) -> None:
    other = make_hospital(db, region=clinic.hospital.region)
    p, _ = clinic.patient(db)
    exam_noshow(db, clinic, p.id, hospital_id=other.id)
    _policy, rule = service.policy_for(db, clinic.hospital.id)
    assert booking.restriction_of(db, patient_id=p.id, hospital_id=clinic.hospital.id,
                                  rule=rule, now=OPEN) is None
    regional = rule.model_copy(update={"scope": "region"})
    assert booking.restriction_of(db, patient_id=p.id, hospital_id=clinic.hospital.id,
                                  rule=regional, now=OPEN) is not None


def test_id3_recorded_events_follow_a_merge_and_come_back_on_unmerge(
        db: Session, clinic: Clinic) -> None:
    p, _ = clinic.patient(db)
    survivor, _ = clinic.patient(db, document_type=DocumentType.passport,
                                 document_number="E20261124")
    exam_noshow(db, clinic, p.id)
    admin = Principal(role=Role.regional_admin, label="empi")
    merge = empi.merge_patients(db, admin, source_id=p.id, target_id=survivor.id)
    db.commit()
    _policy, rule = service.policy_for(db, clinic.hospital.id)

    def restricted(pid: int) -> bool:
        return booking.restriction_of(db, patient_id=pid, hospital_id=clinic.hospital.id,
                                      rule=rule, now=OPEN) is not None

    assert restricted(survivor.id)
    empi.unmerge_patients(db, admin, merge_id=merge.id)
    db.commit()
    assert restricted(p.id) and not restricted(survivor.id)
