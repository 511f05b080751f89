"""Scheduling's answers to other domains' events, run inside their transaction.

ID-3: when the master patient index merges two records, the source's appointments, waitlist
entries and rebooking offers, and its no-show history (the appointments' and the penalty
events other domains recorded) move to the surviving record; an unmerge moves back exactly
what that merge moved.
"""

from __future__ import annotations

from datetime import date
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from onetrip.errors import Conflict
from onetrip.events import on_commit
from onetrip.identity.empi import PatientsMerged, PatientsUnmerged
from onetrip.scheduling.models import (
    Appointment,
    MergeMove,
    RebookingOffer,
    WaitlistEntry,
)
from onetrip.scheduling.penalties import PenaltyRecord
from onetrip.scheduling.rules import ACTIVE_STATUSES

_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_MOVABLE: list[tuple[str, type]] = [("appointment", Appointment),
                                    ("waitlist_entry", WaitlistEntry),
                                    ("rebooking_offer", RebookingOffer),
                                    ("penalty_event", PenaltyRecord)]


class MergeBlockedByAppointments(Conflict):
    code = "merge_blocked_by_appointments"
    message = "两条记录在同一科室同一天都有有效预约，请先取消其中一个再合并"


def _move(db: Session, *, merge_id: int, source: int, target: int, back: bool) -> None:
    for kind, model in _MOVABLE:
        table = cast(Table, model.__table__)  # type: ignore[attr-defined]
        if back:
            ids = list(db.scalars(select(MergeMove.row_id).where(
                MergeMove.merge_id == merge_id, MergeMove.kind == kind)))
        else:
            ids = list(db.scalars(select(table.c.id).where(table.c.patient_id == source)))
            db.add_all(MergeMove(merge_id=merge_id, kind=kind, row_id=i) for i in ids)
        if ids:
            db.execute(update(table).where(table.c.id.in_(ids))
                       .values(patient_id=source if back else target))
    db.flush()


@on_commit(PatientsMerged)
def carry_appointments_to_survivor(db: Session, event: PatientsMerged) -> None:
    # One person cannot hold two active appointments in a department on a day (BK-8); if
    # the two records do, the merge is refused until staff cancel one of them.
    seen: set[tuple[int, date]] = set()
    for department_id, day in db.execute(
            select(Appointment.department_id, Appointment.day).where(
                Appointment.patient_id.in_((event.source_patient_id,
                                            event.target_patient_id)),
                Appointment.status.in_(_ACTIVE))):
        if (department_id, day) in seen:
            raise MergeBlockedByAppointments(detail={"department_id": department_id,
                                                     "day": day.isoformat()})
        seen.add((department_id, day))
    _move(db, merge_id=event.merge_id, source=event.source_patient_id,
          target=event.target_patient_id, back=False)


@on_commit(PatientsUnmerged)
def return_appointments_to_source(db: Session, event: PatientsUnmerged) -> None:
    _move(db, merge_id=event.merge_id, source=event.source_patient_id,
          target=event.target_patient_id, back=True)
