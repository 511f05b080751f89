"""Signing out of the patient portal and the staff console ends the session for good; an
admin gives a department admin another department of its own hospital (audited)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.deps import TOKEN_COOKIE
from onetrip.identity import auth
from onetrip.identity.models import AuditEvent, SignInSession, Staff
from onetrip.identity.rules import Role
from onetrip.org.models import Department, Hospital
from tests.factories import auth as bearer
from tests.factories import last_sms_code, make_department, make_hospital, make_token, mobile


def _session_row(db: Session, secret: str) -> SignInSession:
    db.expire_all()
    return db.scalars(select(SignInSession).where(
        SignInSession.token_hash == auth._hash(secret))).one()


def _cleared(r: Response) -> bool:
    """The response deletes the session cookie (empty value, expired at once)."""
    header = r.headers.get("set-cookie", "")
    return header.startswith(f'{TOKEN_COOKIE}=""') and "Max-Age=0" in header


def _patient_signed_in(client: TestClient, db: Session) -> tuple[str, str]:
    """Sign in through the SMS page as a browser does; the phone and the session cookie."""
    phone = mobile()
    client.post("/sign-in", data={"phone": phone, "action": "send"})
    r = client.post("/sign-in", data={"phone": phone, "code": last_sms_code(db, phone),
                                      "action": "sign_in", "next": "/me/family"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/me/family"
    secret = client.cookies.get(TOKEN_COOKIE)
    assert secret and secret.startswith(auth.SESSION_PREFIX)
    assert client.get("/api/v1/me/family").status_code == 200
    assert phone not in r.text
    return phone, secret


def test_patient_sign_out_redirects_home_and_clears_the_cookie(client: TestClient,
                                                              db: Session) -> None:
    phone, _secret = _patient_signed_in(client, db)
    r = client.get("/sign-out", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert _cleared(r) and phone not in r.text
    assert client.cookies.get(TOKEN_COOKIE) is None
    after = client.get("/me/family", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/sign-in")


def test_after_patient_sign_out_the_old_cookie_no_longer_signs_in(client: TestClient,
                                                                  db: Session) -> None:
    _phone, secret = _patient_signed_in(client, db)
    assert client.get("/sign-out", follow_redirects=False).status_code == 303
    replayed = client.get("/api/v1/me/family", headers=bearer(secret))
    assert replayed.status_code == 401 and replayed.json()["code"] == "invalid_token"
    assert _session_row(db, secret).revoked_at is not None


def test_staff_sign_out_ends_the_session_on_the_server(client: TestClient,
                                                      db: Session) -> None:
    new = auth.create_staff(db, username="so-window", name="窗口员", role=Role.window,
                            hospital_code=make_hospital(db).code)
    db.commit()
    r = client.post("/staff/sign-in", data={"username": new.staff.username,
                                            "password": new.password, "next": "/staff/patients"},
                    follow_redirects=False)
    assert r.status_code == 303
    secret = client.cookies.get(TOKEN_COOKIE)
    assert secret and _session_row(db, secret).revoked_at is None
    assert client.get("/staff/patients").status_code == 200
    out = client.get("/staff/sign-out", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/" and _cleared(out)
    assert client.cookies.get(TOKEN_COOKIE) is None
    assert _session_row(db, secret).revoked_at is not None
    client.cookies.set(TOKEN_COOKIE, secret)  # a copy of the cookie kept from before
    assert client.get("/staff/patients").status_code == 401
    client.cookies.clear()
    replayed = client.get("/api/v1/appointments", params={"patient_id": 1},
                          headers=bearer(secret))
    assert replayed.status_code == 401 and replayed.json()["code"] == "invalid_token"


def test_staff_sign_out_without_a_session_just_redirects(client: TestClient,
                                                        db: Session) -> None:
    token = make_token(db, Role.window, make_hospital(db))
    client.cookies.set(TOKEN_COOKIE, token)  # a bearer token is revoked elsewhere, not here
    r = client.get("/staff/sign-out", follow_redirects=False)
    assert r.status_code == 303 and _cleared(r)
    assert client.get("/staff/patients", headers=bearer(token)).status_code == 200


# --- a department admin's department -----------------------------------------------------


def _dept_admin(db: Session, hospital: Hospital, dept: Department, name: str) -> Staff:
    return auth.create_staff(db, username=name, name="排班员", role=Role.department_admin,
                             hospital_code=hospital.code, department_code=dept.code).staff


def _department_of(db: Session, staff: Staff) -> int | None:
    db.expire_all()
    return db.get_one(Staff, staff.id).department_id


def test_an_admin_moves_a_department_admin_and_it_is_audited(client: TestClient,
                                                             db: Session) -> None:
    hospital = make_hospital(db, level="tertiary")
    a, b = make_department(db, hospital), make_department(db, hospital)
    staff = _dept_admin(db, hospital, a, "so-dadmin")
    client.headers.update(bearer(make_token(db, Role.hospital_admin, hospital)))
    r = client.post(f"/staff/accounts/{staff.id}/department", data={"department": b.code},
                    follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == (f"/staff/accounts?hospital={hospital.code}"
                                     f"&flash=updated&staff={staff.id}")
    assert _department_of(db, staff) == b.id
    row = db.scalars(select(AuditEvent).where(AuditEvent.action == "staff.set_department")
                     .order_by(AuditEvent.id.desc())).first()
    assert row is not None and row.detail == {
        "staff_id": staff.id, "department_id": b.id, "previous_department_id": a.id}
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and f"已更新账号 {staff.username}" in page.text


def test_another_hospitals_department_is_refused_beside_the_row(client: TestClient,
                                                                db: Session) -> None:
    hospital = make_hospital(db, level="tertiary")
    own = make_department(db, hospital)
    far = make_department(db, make_hospital(db), name="远方科")
    staff = _dept_admin(db, hospital, own, "so-dadmin-far")
    client.headers.update(bearer(make_token(db, Role.hospital_admin, hospital)))
    r = client.post(f"/staff/accounts/{staff.id}/department", data={"department": far.code})
    assert r.status_code == 422 and f'data-field="staff-{staff.id}"' in r.text
    assert "未找到该科室" in r.text
    assert _department_of(db, staff) == own.id
    assert db.scalar(select(AuditEvent.id).where(
        AuditEvent.action == "staff.set_department",
        AuditEvent.hospital_id == hospital.id)) is None


@pytest.mark.parametrize("role", [Role.window, Role.doctor, Role.department_admin])
def test_non_admins_cannot_move_a_department_admin(client: TestClient, db: Session,
                                                   role: Role) -> None:
    hospital = make_hospital(db, level="tertiary")
    a, b = make_department(db, hospital), make_department(db, hospital)
    staff = _dept_admin(db, hospital, a, f"so-dadmin-{role.value}")
    client.headers.update(bearer(make_token(db, role, hospital)))
    r = client.post(f"/staff/accounts/{staff.id}/department", data={"department": b.code})
    assert r.status_code == 403
    assert _department_of(db, staff) == a.id


def test_another_hospitals_admin_is_told_the_account_does_not_exist(client: TestClient,
                                                                    db: Session) -> None:
    hospital = make_hospital(db, level="tertiary")
    a, b = make_department(db, hospital), make_department(db, hospital)
    staff = _dept_admin(db, hospital, a, "so-dadmin-stranger")
    client.headers.update(bearer(make_token(db, Role.hospital_admin, make_hospital(db))))
    r = client.post(f"/staff/accounts/{staff.id}/department", data={"department": b.code})
    assert r.status_code == 404 and "未找到该工作人员账号" in r.text
    assert client.post("/staff/accounts/999999999/department",
                       data={"department": b.code}).status_code == 404
    assert _department_of(db, staff) == a.id
