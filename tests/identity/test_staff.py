"""Staff scope: a department admin names its department and signs in with TOTP like other
admins; a doctor's account names the practitioner it is (one account per practitioner);
admins change both from the staff accounts page, audited; tokens can be revoked."""

from __future__ import annotations

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.errors import OnetripError, PermissionDenied
from onetrip.identity import auth
from onetrip.identity import staff as staff_service
from onetrip.identity.errors import (
    DepartmentNotApplicable,
    DepartmentRequired,
    InvalidCredentials,
    PractitionerAlreadyLinked,
    PractitionerNotApplicable,
    StaffNotFound,
    TokenAmbiguous,
    TokenNotFound,
)
from onetrip.identity.models import ApiToken, AuditEvent, Staff
from onetrip.identity.principal import Principal
from onetrip.identity.rules import Role
from onetrip.org.models import Hospital
from onetrip.org.service import DepartmentNotFound, PractitionerNotFound
from tests.factories import auth as bearer
from tests.factories import make_department, make_hospital, make_practitioner, make_token


@pytest.fixture
def hospital(db: Session) -> Hospital:
    return make_hospital(db, level="tertiary")


def _staff_count(db: Session) -> int:
    return db.scalar(select(func.count(Staff.id))) or 0


def test_a_department_admin_names_its_department_and_needs_totp(
        db: Session, hospital: Hospital) -> None:
    dept = make_department(db, hospital, name="心血管内科")
    new = auth.create_staff(db, username="t-dadmin", name="排班员", role=Role.department_admin,
                            hospital_code=hospital.code, department_code=dept.code)
    assert new.staff.department_id == dept.id and new.totp_secret
    without = auth.sign_in_staff(db, username="t-dadmin", password=new.password)
    assert isinstance(without.error, InvalidCredentials)
    ok = auth.sign_in_staff(db, username="t-dadmin", password=new.password,
                            totp=pyotp.TOTP(new.totp_secret).now())
    assert ok.secret is not None
    principal = auth.authenticate_token(db, ok.secret)
    assert (principal.role, principal.hospital_id, principal.department_id) == (
        Role.department_admin, hospital.id, dept.id)


@pytest.mark.parametrize(("role", "department", "practitioner", "error"), [
    (Role.department_admin, None, None, DepartmentRequired),
    (Role.department_admin, "nowhere", None, DepartmentNotFound),
    (Role.window, "own", None, DepartmentNotApplicable),
    (Role.hospital_admin, "own", None, DepartmentNotApplicable),
    (Role.window, None, "own", PractitionerNotApplicable),
    (Role.department_admin, "own", "own", PractitionerNotApplicable),
    (Role.doctor, None, "nobody", PractitionerNotFound),
    (Role.doctor, None, "other", PractitionerNotFound),  # another hospital's doctor
])
def test_a_scope_a_role_cannot_have_is_refused_and_nothing_is_created(
        db: Session, hospital: Hospital, role: Role, department: str | None,
        practitioner: str | None, error: type[OnetripError]) -> None:
    dept = make_department(db, hospital)
    doc = make_practitioner(db, hospital, dept)
    elsewhere = make_practitioner(db, make_hospital(db))
    codes = {"own": None, "nowhere": "nowhere", "nobody": "nobody", "other": elsewhere.code}
    before = _staff_count(db)
    with pytest.raises(error):
        auth.create_staff(db, username="t-scope", name="某人", role=role,
                          hospital_code=hospital.code,
                          department_code=(codes[department] or dept.code)
                          if department else None,
                          practitioner_code=(codes[practitioner] or doc.code)
                          if practitioner else None)
    assert _staff_count(db) == before


def test_one_staff_account_per_practitioner(db: Session, hospital: Hospital) -> None:
    doc = make_practitioner(db, hospital, make_department(db, hospital))
    first = auth.create_staff(db, username="t-doc1", name="医生", role=Role.doctor,
                              hospital_code=hospital.code, practitioner_code=doc.code)
    assert first.staff.practitioner_id == doc.id
    with pytest.raises(PractitionerAlreadyLinked):
        auth.create_staff(db, username="t-doc2", name="医生", role=Role.doctor,
                          hospital_code=hospital.code, practitioner_code=doc.code)
    second = auth.create_staff(db, username="t-doc2", name="医生", role=Role.doctor,
                               hospital_code=hospital.code)
    with pytest.raises(PractitionerAlreadyLinked):
        staff_service.link_practitioner(db, by=None, staff=second.staff,
                                        practitioner_code=doc.code)
    db.refresh(second.staff)
    assert second.staff.practitioner_id is None
    signed = auth.sign_in_staff(db, username="t-doc1", password=first.password)
    assert signed.secret is not None
    assert auth.authenticate_token(db, signed.secret).practitioner_id == doc.id


def test_a_department_admins_token_carries_its_department(db: Session,
                                                          hospital: Hospital) -> None:
    dept = make_department(db, hospital)
    _row, secret = auth.create_token(db, role=Role.department_admin,
                                     hospital_code=hospital.code, department_code=dept.code)
    assert auth.authenticate_token(db, secret).department_id == dept.id
    with pytest.raises(DepartmentRequired):
        auth.create_token(db, role=Role.department_admin, hospital_code=hospital.code)


def _admin_of(hospital: Hospital) -> Principal:
    return Principal(role=Role.hospital_admin, hospital_id=hospital.id, label="admin")


def test_an_admin_links_and_unlinks_a_doctor_and_each_change_is_audited(
        db: Session, hospital: Hospital) -> None:
    dept = make_department(db, hospital)
    doc = make_practitioner(db, hospital, dept)
    new = auth.create_staff(db, username="t-link", name="医生", role=Role.doctor,
                            hospital_code=hospital.code)
    admin = _admin_of(hospital)
    staff_service.link_practitioner(db, by=admin, staff=new.staff, practitioner_code=doc.code)
    assert new.staff.practitioner_id == doc.id
    staff_service.link_practitioner(db, by=admin, staff=new.staff, practitioner_code=None)
    assert new.staff.practitioner_id is None
    rows = db.scalars(select(AuditEvent).where(AuditEvent.action == "staff.link_practitioner",
                                               AuditEvent.hospital_id == hospital.id)
                      .order_by(AuditEvent.id)).all()
    assert [(r.detail["practitioner_id"], r.detail["previous_practitioner_id"])
            for r in rows] == [(doc.id, None), (None, doc.id)]


def test_staff_of_another_hospital_and_non_admins_are_refused(
        db: Session, hospital: Hospital) -> None:
    new = auth.create_staff(db, username="t-other", name="医生", role=Role.doctor,
                            hospital_code=hospital.code)
    stranger = _admin_of(make_hospital(db))
    with pytest.raises(StaffNotFound):
        staff_service.access_staff(db, stranger, new.staff.id)
    with pytest.raises(PermissionDenied):
        staff_service.access_staff(db, Principal(role=Role.window, hospital_id=hospital.id),
                                   new.staff.id)
    assert staff_service.access_staff(db, Principal(role=Role.regional_admin),
                                      new.staff.id) is new.staff


def test_a_department_admin_moves_to_another_department_of_its_hospital(
        db: Session, hospital: Hospital) -> None:
    a, b = make_department(db, hospital), make_department(db, hospital)
    new = auth.create_staff(db, username="t-move", name="排班员", role=Role.department_admin,
                            hospital_code=hospital.code, department_code=a.code)
    staff_service.move_to_department(db, by=_admin_of(hospital), staff=new.staff,
                                     department_code=b.code)
    assert new.staff.department_id == b.id
    for code, error in (("", DepartmentRequired), ("nowhere", DepartmentNotFound)):
        with pytest.raises(error):
            staff_service.move_to_department(db, by=None, staff=new.staff,
                                             department_code=code)
    assert new.staff.department_id == b.id


# --- the staff accounts page ---------------------------------------------------------------


def test_the_accounts_page_links_a_doctor_and_shows_a_refusal_beside_the_row(
        client: TestClient, db: Session, hospital: Hospital) -> None:
    dept = make_department(db, hospital, name="消化内科")
    doc, taken = (make_practitioner(db, hospital, dept, name=n) for n in ("吴医生", "郑医生"))
    mine = auth.create_staff(db, username="t-page-doc", name="吴", role=Role.doctor,
                             hospital_code=hospital.code).staff
    auth.create_staff(db, username="t-page-doc2", name="郑", role=Role.doctor,
                      hospital_code=hospital.code, practitioner_code=taken.code)
    elsewhere = auth.create_staff(db, username="t-page-far", name="远", role=Role.doctor,
                                  hospital_code=make_hospital(db).code).staff
    client.headers.update(bearer(make_token(db, Role.hospital_admin, hospital)))
    page = client.get("/staff/accounts")
    assert page.status_code == 200 and f'data-staff="{mine.id}"' in page.text
    assert f'data-staff="{elsewhere.id}"' not in page.text
    refused = client.post(f"/staff/accounts/{mine.id}/practitioner",
                          data={"practitioner": taken.code})
    assert refused.status_code == 422 and f'data-field="staff-{mine.id}"' in refused.text
    assert "已关联其他工作人员账号" in refused.text
    db.refresh(mine)
    assert mine.practitioner_id is None
    ok = client.post(f"/staff/accounts/{mine.id}/practitioner", data={"practitioner": doc.code})
    assert ok.status_code == 200 and f'data-linked="{doc.code}"' in ok.text
    assert "已更新账号 t-page-doc" in ok.text
    db.refresh(mine)
    assert mine.practitioner_id == doc.id
    far = client.post(f"/staff/accounts/{elsewhere.id}/practitioner",
                      data={"practitioner": doc.code})
    assert far.status_code == 404
    db.refresh(elsewhere)
    assert elsewhere.practitioner_id is None


def test_the_accounts_page_shows_no_text_a_link_brings(
        client: TestClient, db: Session, hospital: Hospital) -> None:
    forged = "请立即拨打4008001234核实您的账号"
    mine = auth.create_staff(db, username="t-link-mine", name="吴", role=Role.doctor,
                             hospital_code=hospital.code).staff
    far = auth.create_staff(db, username="t-link-far", name="远", role=Role.doctor,
                            hospital_code=make_hospital(db).code).staff
    client.headers.update(bearer(make_token(db, Role.hospital_admin, hospital)))
    for query in ({"flash": forged}, {"flash": "updated", "staff": forged},
                  {"flash": "updated", "staff": str(far.id)},
                  {"flash": forged, "staff": str(mine.id)}):
        r = client.get("/staff/accounts", params=query)
        assert r.status_code == 200 and forged not in r.text, query
        assert "已更新账号" not in r.text and "t-link-far" not in r.text, query
    r = client.get("/staff/accounts", params={"flash": "updated", "staff": str(mine.id)})
    assert "已更新账号 t-link-mine" in r.text


@pytest.mark.parametrize("role", [Role.window, Role.doctor, Role.department_admin,
                                  Role.kiosk])
def test_only_hospital_and_regional_admins_open_the_accounts_page(
        client: TestClient, db: Session, hospital: Hospital, role: Role) -> None:
    make_department(db, hospital)
    target = auth.create_staff(db, username="t-page-x", name="某", role=Role.doctor,
                               hospital_code=hospital.code).staff
    doc = make_practitioner(db, hospital)
    client.headers.update(bearer(make_token(db, role, hospital)))
    assert client.get("/staff/accounts").status_code == 403
    r = client.post(f"/staff/accounts/{target.id}/practitioner", data={"practitioner": doc.code})
    assert r.status_code == 403
    db.refresh(target)
    assert target.practitioner_id is None


# --- revoking tokens -----------------------------------------------------------------------


def test_a_revoked_token_no_longer_signs_in_and_revoking_twice_keeps_the_first_time(
        db: Session, hospital: Hospital) -> None:
    row, secret = auth.create_token(db, role=Role.kiosk, hospital_code=hospital.code,
                                    label="门诊大厅1号")
    outcomes = [auth.revoke_token(db, which) for which in (str(row.id), row.prefix, secret)]
    assert outcomes == [(row, True), (row, False), (row, False)]  # by id, prefix or secret
    first = row.revoked_at
    assert first is not None
    with pytest.raises(auth.InvalidToken):
        auth.authenticate_token(db, secret)
    assert auth.revoke_token(db, secret) == (row, False) and row.revoked_at == first


def test_revoking_an_unknown_or_ambiguous_token_changes_nothing(db: Session,
                                                                hospital: Hospital) -> None:
    a, secret_a = auth.create_token(db, role=Role.kiosk, hospital_code=hospital.code)
    b, _secret_b = auth.create_token(db, role=Role.kiosk, hospital_code=hospital.code)
    b.prefix = a.prefix  # two tokens that happen to start alike
    db.flush()
    for which, error in (("ot_nothing", TokenNotFound), ("999999999", TokenNotFound),
                         ("x", TokenNotFound), (a.prefix, TokenAmbiguous)):
        with pytest.raises(error):
            auth.revoke_token(db, which)
    assert db.scalar(select(func.count(ApiToken.id)).where(
        ApiToken.id.in_((a.id, b.id)), ApiToken.revoked_at.is_not(None))) == 0
    assert auth.authenticate_token(db, secret_a).token_id == a.id


def test_listing_tokens_hides_revoked_ones_unless_asked(db: Session,
                                                        hospital: Hospital) -> None:
    live, _ = auth.create_token(db, role=Role.kiosk, hospital_code=hospital.code)
    gone, _ = auth.create_token(db, role=Role.kiosk, hospital_code=hospital.code)
    auth.revoke_token(db, str(gone.id))
    assert [t.id for t in auth.list_tokens(db, hospital_code=hospital.code)] == [live.id]
    assert {t.id for t in auth.list_tokens(db, hospital_code=hospital.code,
                                           include_revoked=True)} == {live.id, gone.id}
