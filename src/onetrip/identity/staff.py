"""Staff accounts as their hospital's admins keep them: the list, a doctor's link to the
practitioner it is (医生账号关联医生), a department admin's department.

Every change leaves an audit row naming the admin (from the CLI, none: the operator acts
on the server itself, as ``onetrip identity staff-create`` does).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.errors import PermissionDenied
from onetrip.identity import audit
from onetrip.identity.auth import check_practitioner_free, resolve_scope
from onetrip.identity.errors import PractitionerAlreadyLinked, StaffNotFound
from onetrip.identity.models import Staff
from onetrip.identity.principal import Principal
from onetrip.identity.rules import STAFF_ADMINS, Role, may_administer_hospital
from onetrip.org import service as org_service
from onetrip.org.models import Hospital


def working_hospital(db: Session, principal: Principal, code: str | None = None) -> Hospital:
    """The hospital a staff page works on: the principal's own (another one named is
    refused); a regional admin picks one, the region's first when none is named."""
    if principal.role is Role.regional_admin:
        if code:
            return org_service.access_hospital(db, code)
        hospitals = org_service.list_hospitals(db)
        if not hospitals:
            raise org_service.HospitalNotFound("尚无医院")
        return hospitals[0]
    if principal.hospital_id is None:
        raise PermissionDenied("该账号未绑定医院")
    hospital = db.get_one(Hospital, principal.hospital_id)
    if code and code != hospital.code:
        raise PermissionDenied("只能管理本院")
    return hospital


def list_staff(db: Session, hospital: Hospital) -> list[Staff]:
    """The staff accounts of a hospital, by role then username."""
    return list(db.scalars(select(Staff).where(Staff.hospital_id == hospital.id)
                           .order_by(Staff.role, Staff.username)))


def access_staff(db: Session, by: Principal | None, staff_id: int) -> Staff:
    """A staff account the admin may manage (its own hospital's; any for a regional admin);
    another hospital's answers StaffNotFound as if it did not exist."""
    staff = db.get(Staff, staff_id)
    if by is not None and by.role not in STAFF_ADMINS:
        raise PermissionDenied()
    if staff is None or staff.hospital_id is None or (by is not None and not (
            may_administer_hospital(by.role, by.hospital_id, staff.hospital_id))):
        raise StaffNotFound(detail={"staff_id": staff_id})
    return staff


def find_staff(db: Session, username: str) -> Staff:
    """A staff account by username; raises StaffNotFound."""
    staff = db.scalar(select(Staff).where(Staff.username == username.strip()))
    if staff is None:
        raise StaffNotFound(detail={"username": username})
    return staff


def _hospital_code(db: Session, staff: Staff) -> str:
    hospital = db.get(Hospital, staff.hospital_id) if staff.hospital_id else None
    if hospital is None:
        raise StaffNotFound("该账号未绑定医院，不能关联科室或医生",
                            detail={"username": staff.username})
    return hospital.code


def link_practitioner(db: Session, *, by: Principal | None, staff: Staff,
                      practitioner_code: str | None) -> Staff:
    """Name (or, with None, clear) the practitioner a doctor's account is; one account per
    practitioner. Raises PractitionerNotApplicable, PractitionerNotFound,
    PractitionerAlreadyLinked."""
    scope = resolve_scope(db, Role(staff.role), _hospital_code(db, staff),
                          practitioner_code=practitioner_code or None)
    if scope.practitioner_id == staff.practitioner_id:
        return staff
    if scope.practitioner_id is not None:
        check_practitioner_free(db, scope.practitioner_id, staff.id)
    previous = staff.practitioner_id
    try:
        with db.begin_nested():
            staff.practitioner_id = scope.practitioner_id
            db.flush()
    except IntegrityError as exc:  # another admin linked the same doctor meanwhile
        raise PractitionerAlreadyLinked() from exc
    if by is not None:
        audit.record(db, by, action="staff.link_practitioner", patient_id=None, detail={
            "staff_id": staff.id, "practitioner_id": scope.practitioner_id,
            "previous_practitioner_id": previous})
    return staff


def move_to_department(db: Session, *, by: Principal | None, staff: Staff,
                       department_code: str) -> Staff:
    """Give a department admin another department of its hospital. Raises
    DepartmentNotApplicable, DepartmentRequired, DepartmentNotFound."""
    scope = resolve_scope(db, Role(staff.role), _hospital_code(db, staff),
                          department_code=department_code or None)
    if scope.department_id == staff.department_id:
        return staff
    previous = staff.department_id
    staff.department_id = scope.department_id
    db.flush()
    if by is not None:
        audit.record(db, by, action="staff.set_department", patient_id=None, detail={
            "staff_id": staff.id, "department_id": scope.department_id,
            "previous_department_id": previous})
    return staff


def linked_practitioner_ids(db: Session, hospital_id: int) -> frozenset[int]:
    """The practitioners of a hospital that have a staff account."""
    return frozenset(db.scalars(select(Staff.practitioner_id).where(
        Staff.hospital_id == hospital_id, Staff.practitioner_id.is_not(None))))
