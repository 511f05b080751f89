"""Penalty events that other domains record for the booking engine's rule (BK-6, EX-4).

An outpatient appointment carries its own penalty event. A no-show elsewhere (an exam, EX-4)
is recorded here by the domain it happened in, through :func:`record`, so the booking
engine weighs it under the same rule, for exams and outpatient visits alike, without
scheduling knowing anything of exams. The table holds one row per source event: recording
it again changes nothing, so nothing is counted twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from onetrip.db import Base, UTCDateTime, utcnow
from onetrip.scheduling.rules import PenaltyEvent

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
                      .where(PenaltyRecord.patient_id.in_(patient_ids)))
    return [(pid, PenaltyEvent(kind), at, hospital_id) for pid, kind, at, hospital_id in rows]
