"""Which departments' sessions and templates a staff member works on (科室范围).

Hospital and regional admins and the window work on the whole hospital (regional admins on
any hospital). A department admin (科室管理员) works only on its department and the
sub-departments under it (a 内科 admin also keeps 心血管内科): weekly templates, generation,
the Excel import, stop-clinic and substitute; anything else is refused with
``outside_department`` and nothing is written.

A doctor whose account is linked to a practitioner works on their own sessions and the
ones they substitute for, and may also open the other sessions of their departments (a
colleague's queue when two doctors share a room, or the department's triage desk); a
session of another department is refused. An unlinked doctor account (a shared
consulting-room PC's token) works on the whole hospital, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.errors import PermissionDenied
from onetrip.identity.rules import DEPARTMENT_SCOPED, Role, may_manage_department
from onetrip.identity.service import Principal
from onetrip.org import service as org_service
from onetrip.org.models import Practitioner, practitioner_department
from onetrip.scheduling.errors import OutsideDepartment
from onetrip.scheduling.models import Schedule


def managed_departments(db: Session, by: Principal | None) -> frozenset[int] | None:
    """The departments a department admin manages (its own and those under it); None for
    roles that manage the whole hospital and for the command line (``by`` None)."""
    if by is None or by.role not in DEPARTMENT_SCOPED:
        return None
    if by.department_id is None:
        return frozenset()
    return org_service.department_subtree(db, {by.department_id})


def practitioner_departments(db: Session, practitioner_id: int) -> frozenset[int]:
    """A practitioner's departments and the ones under them."""
    own = set(db.scalars(select(practitioner_department.c.department_id).where(
        practitioner_department.c.practitioner_id == practitioner_id)))
    return org_service.department_subtree(db, own)


def authorise_department(db: Session, by: Principal, hospital_id: int,
                         department_id: int) -> None:
    """Raise unless ``by`` may change this department's schedules: PermissionDenied for a
    role or hospital that may not, OutsideDepartment for another department."""
    managed = managed_departments(db, by) or frozenset()
    if may_manage_department(by.role, by.hospital_id, managed, hospital_id, department_id):
        return
    if by.role in DEPARTMENT_SCOPED and by.hospital_id == hospital_id:
        raise OutsideDepartment(detail={"department_id": department_id})
    raise PermissionDenied()


@dataclass(frozen=True)
class WorkScope:
    """The sessions a consulting-room account works on within its hospital."""

    practitioner_id: int | None
    departments: frozenset[int] | None  # None: every department of the hospital

    def is_own(self, schedule: Schedule) -> bool:
        """The doctor's own session (not handed to a substitute) or one they substitute."""
        if self.practitioner_id is None:
            return False
        if schedule.substitute_practitioner_id is not None:
            return schedule.substitute_practitioner_id == self.practitioner_id
        return schedule.practitioner_id == self.practitioner_id

    def covers(self, schedule: Schedule) -> bool:
        if self.departments is None or schedule.department_id in self.departments:
            return True
        return self.practitioner_id is not None and self.practitioner_id in (
            schedule.practitioner_id, schedule.substitute_practitioner_id)


def work_scope(db: Session, by: Principal) -> WorkScope:
    """What a doctor's account (or an admin standing in) may open in the consulting room."""
    if by.role is Role.doctor and by.practitioner_id is not None:
        return WorkScope(by.practitioner_id, practitioner_departments(db, by.practitioner_id))
    return WorkScope(None, managed_departments(db, by))


def authorise_session(db: Session, by: Principal, schedule: Schedule) -> None:
    """Raise OutsideDepartment unless the session is within ``by``'s work scope."""
    if not work_scope(db, by).covers(schedule):
        raise OutsideDepartment("只能进入本科室的诊室" if by.role is Role.doctor else None,
                                detail={"schedule_id": schedule.id})


def linked_practitioner(db: Session, by: Principal) -> Practitioner | None:
    """The practitioner a doctor's account is linked to, if any."""
    return db.get(Practitioner, by.practitioner_id) if by.practitioner_id else None
