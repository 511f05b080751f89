"""The history the penalty rule weighs (BK-6): the appointments' own events, and those other
domains record for the booking engine's rule (EX-4).

An outpatient appointment carries its own penalty event. A no-show elsewhere (an exam, EX-4)
is recorded here by the domain it happened in, through :func:`record`, so the booking
engine weighs it under the same rule, for exams and outpatient visits alike, without
scheduling knowing anything of exams. The table holds one row per source event: recording
it again changes nothing, so nothing is counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import cast

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from onetrip.config import get_settings
from onetrip.db import Base, UTCDateTime, among, utcnow
from onetrip.org.models import Hospital
from onetrip.scheduling.models import Appointment
from onetrip.scheduling.rules import PenaltyEvent, PenaltyRule, Restriction, restriction_for

_KINDS = ", ".join(f"'{k.value}'" for k in PenaltyEvent)


class PenaltyRecord(Base):
    """One penalty event of a patient at a hospital, recorded by another domain."""

    __tablename__ = "penalty_event"
    __table_args__ = (
        UniqueConstraint("source", "source_id", "kind"),
        CheckConstraint(f"kind IN ({_KINDS})", name="kind"),
        Index("ix_penalty_event_patient_hospital", "patient_id", "hospital_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    hospital_id: Mapped[int] = mapped_column(ForeignKey("hospital.id"))
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Where it happened ("exam") and that domain's id for it (the exam booking).
    source: Mapped[str] = mapped_column(String(24))
    source_id: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def record(db: Session, *, patient_id: int, hospital_id: int, kind: PenaltyEvent,
           at: datetime, source: str, source_id: int) -> bool:
    """Record one penalty event of another domain; False when it was recorded already."""
    if db.scalar(select(PenaltyRecord.id).where(
            PenaltyRecord.source == source, PenaltyRecord.source_id == source_id,
            PenaltyRecord.kind == kind.value)) is not None:
        return False
    db.add(PenaltyRecord(patient_id=patient_id, hospital_id=hospital_id, kind=kind.value,
                         at=at, source=source, source_id=source_id))
    db.flush()
    return True


def recorded(db: Session, patient_ids: set[int],
             ) -> list[tuple[int, PenaltyEvent, datetime, int]]:
    """These patients' events recorded by other domains: (patient, kind, when, hospital)."""
    rows = db.execute(select(PenaltyRecord.patient_id, PenaltyRecord.kind, PenaltyRecord.at,
                             PenaltyRecord.hospital_id)
                      .where(among(db, PenaltyRecord.patient_id, patient_ids)))
    return [(pid, PenaltyEvent(kind), at, hospital_id) for pid, kind, at, hospital_id in rows]


#: A patient's penalty events: (kind, when, at which hospital).
History = list[tuple[PenaltyEvent, datetime, int]]


def penalty_histories(db: Session, patient_ids: set[int]) -> dict[int, History]:
    """Every penalty-counted event of these patients, wherever it happened (BK-6): their
    appointments' own, and those other domains recorded (exam no-shows, EX-4)."""
    t = cast(Table, Appointment.__table__).c
    out: dict[int, History] = defaultdict(list)
    for pid, hospital_id, kind, cancelled_at, noshow_at in db.connection().execute(
            select(t.patient_id, t.hospital_id, t.penalty_event, t.cancelled_at, t.noshow_at)
            .where(among(db, t.patient_id, patient_ids), t.penalty_event.is_not(None))):
        at = noshow_at or cancelled_at
        if kind is not None and at is not None:
            out[pid].append((PenaltyEvent(kind), at, hospital_id))
    for pid, kind, at, hospital_id in recorded(db, patient_ids):
        out[pid].append((kind, at, hospital_id))
    return out


def in_scope(db: Session, region_hospitals: dict[int, set[int]], history: History, *,
             hospital_id: int, rule: PenaltyRule) -> list[tuple[PenaltyEvent, datetime]]:
    """The events a hospital's rule weighs: its own, or every hospital's of its region."""
    scope = {hospital_id} if rule.scope == "hospital" else \
        _region_of(db, region_hospitals, hospital_id)
    return [(kind, at) for kind, at, h in history if h in scope]


def hospitals_weighing(db: Session, region_hospitals: dict[int, set[int]],
                       history: History) -> set[int]:
    """The hospitals whose rule may weigh any of these events: where each happened, and
    every hospital of its region (a region-scope rule, BK-6). No other can restrict."""
    out: set[int] = set()
    for hospital_id in {h for _kind, _at, h in history}:
        if hospital_id not in out:
            out |= _region_of(db, region_hospitals, hospital_id)
    return out


def _region_of(db: Session, region_hospitals: dict[int, set[int]],
               hospital_id: int) -> set[int]:
    """Every hospital of this hospital's region (kept in ``region_hospitals``)."""
    if hospital_id not in region_hospitals:
        region_id = db.get_one(Hospital, hospital_id).region_id
        region_hospitals[hospital_id] = set(db.scalars(
            select(Hospital.id).where(Hospital.region_id == region_id)))
    return region_hospitals[hospital_id]


def restriction_in(db: Session, region_hospitals: dict[int, set[int]], history: History, *,
                   hospital_id: int, rule: PenaltyRule, now: datetime) -> Restriction | None:
    """The restriction in force at a hospital from a patient's history (BK-6)."""
    if not history:
        return None
    return restriction_for(in_scope(db, region_hospitals, history, hospital_id=hospital_id,
                                    rule=rule), rule, now, get_settings().tz)
