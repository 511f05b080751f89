"""Pure identity rules: roles and what a role may reach."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    patient = "patient"
    proxy = "proxy"
    window = "window"
    kiosk = "kiosk"
    doctor = "doctor"
    pharmacist = "pharmacist"
    exam_centre = "exam_centre"
    hospital_admin = "hospital_admin"
    regional_admin = "regional_admin"
    regulator = "regulator"


ROLE_LABELS: dict[Role, str] = {
    Role.patient: "患者",
    Role.proxy: "家属代理",
    Role.window: "窗口",
    Role.kiosk: "自助机",
    Role.doctor: "医生",
    Role.pharmacist: "药师",
    Role.exam_centre: "检查预约中心",
    Role.hospital_admin: "医院管理员",
    Role.regional_admin: "区域管理员",
    Role.regulator: "卫健委监管",
}

#: Roles that act for a whole hospital and must be scoped to one.
HOSPITAL_SCOPED = frozenset(
    {Role.window, Role.kiosk, Role.doctor, Role.pharmacist, Role.exam_centre, Role.hospital_admin}
)


def may_administer_hospital(role: Role, principal_hospital_id: int | None,
                            hospital_id: int) -> bool:
    """A hospital admin manages its own hospital; a regional admin manages every hospital."""
    if role is Role.regional_admin:
        return True
    return role is Role.hospital_admin and principal_hospital_id == hospital_id
