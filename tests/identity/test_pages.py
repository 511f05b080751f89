"""Identity pages in Chinese: SMS sign-in, my family, add a member, staff search, EMPI, audit."""

from __future__ import annotations

import re
from datetime import date

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity import auth
from onetrip.identity.rules import DocumentType, Role
from tests.factories import last_sms_code, make_patient, mobile, resident_id


def _sign_in_by_sms(client: TestClient, db: Session, phone: str) -> None:
    r = client.post("/sign-in", data={"phone": phone, "action": "send"},
                    headers={"HX-Request": "true"})
    assert r.status_code == 200 and "验证码已发送" in r.text and "<html" not in r.text
    r = client.post("/sign-in", data={"phone": phone, "code": last_sms_code(db, phone),
                                      "action": "sign_in", "next": "/me/family"})
    assert r.status_code == 200 and "我的家庭成员" in r.text


def test_sms_sign_in_page_shows_field_errors_in_chinese(client: TestClient,
                                                        db: Session) -> None:
    assert "手机验证码登录" in client.get("/sign-in").text
    r = client.post("/sign-in", data={"phone": "12345", "action": "send"})
    assert r.status_code == 422 and 'data-field="phone"' in r.text and "有效的手机号码" in r.text
    phone = mobile()
    client.post("/sign-in", data={"phone": phone, "action": "send"})
    r = client.post("/sign-in", data={"phone": phone, "code": "12", "action": "sign_in"})
    assert r.status_code == 401 and 'data-field="code"' in r.text and "验证码错误" in r.text


def test_sign_in_sent_empty_is_answered_beside_the_phone_field(client: TestClient) -> None:
    for action in ("sign_in", "send"):
        r = client.post("/sign-in", data={"phone": "", "code": "", "action": action})
        assert r.status_code == 422 and 'data-field="phone"' in r.text, action
        assert "请输入手机号码" in r.text and "手机验证码登录" in r.text
    no_code = client.post("/sign-in", data={"phone": mobile(), "action": "sign_in"})
    assert no_code.status_code == 422 and 'data-field="code"' in no_code.text
    assert "请输入短信验证码" in no_code.text


def test_my_family_requires_sign_in(client: TestClient) -> None:
    r = client.get("/me/family", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


def test_register_self_then_add_a_child_with_field_level_errors(client: TestClient,
                                                                db: Session) -> None:
    phone = mobile()
    _sign_in_by_sms(client, db, phone)
    assert "登记本人信息" in client.get("/me/family").text
    form = client.get("/me/family/new").text
    assert "居民电子健康卡" in form and "外国人永久居留身份证" in form
    number = resident_id(date(1986, 6, 6))
    bad = client.post("/me/family/new", data={
        "relationship": "self", "name": "冯洁", "document_type": "resident_id_card",
        "document_number": number[:-1] + ("0" if number[-1] != "0" else "1")})
    assert bad.status_code == 422
    assert 'data-field="document_number"' in bad.text and "校验位不正确" in bad.text
    assert 'value="冯洁"' in bad.text  # what was typed is kept
    ok = client.post("/me/family/new", data={
        "relationship": "self", "name": "冯洁", "document_type": "resident_id_card",
        "document_number": number})
    assert ok.status_code == 200 and "冯洁" in ok.text and "本人" in ok.text
    assert number not in ok.text and number[:6] + "********" + number[-4:] in ok.text
    kid_number = resident_id(date(date.today().year - 3, 1, 1))
    missing = client.post("/me/family/new", data={
        "relationship": "child", "name": "", "document_type": "household_register",
        "document_number": kid_number})
    assert missing.status_code == 422 and "请填写姓名" in missing.text
    kid = client.post("/me/family/new", data={
        "relationship": "child", "name": "冯小洁", "document_type": "household_register",
        "document_number": kid_number})
    assert kid.status_code == 200 and "冯小洁" in kid.text and "子女" in kid.text


def test_a_child_cannot_be_added_without_a_guardian(client: TestClient, db: Session) -> None:
    _sign_in_by_sms(client, db, mobile())
    r = client.post("/me/family/new", data={
        "relationship": "child", "name": "韩小梅", "document_type": "household_register",
        "document_number": resident_id(date(date.today().year - 5, 5, 5))})
    assert r.status_code == 422 and 'data-field="relationship"' in r.text
    assert "监护人" in r.text


def _staff_sign_in(client: TestClient, db: Session, role: Role) -> None:
    hospital = None if role is Role.regional_admin else "sfsrmyy"
    new = auth.create_staff(db, username=f"pg-{role.value}", name="测试员", role=role,
                            hospital_code=hospital)
    db.commit()
    totp = pyotp.TOTP(new.totp_secret).now() if new.totp_secret else ""
    r = client.post("/staff/sign-in", data={"username": new.staff.username,
                                            "password": new.password, "totp": totp,
                                            "next": "/staff/patients"})
    assert r.status_code == 200 and "患者查询" in r.text


def test_staff_sign_in_page_refuses_wrong_password_in_chinese(client: TestClient,
                                                             db: Session) -> None:
    auth.create_staff(db, username="pg-x", name="甲", role=Role.window, hospital_code="sfsrmyy")
    db.commit()
    r = client.post("/staff/sign-in", data={"username": "pg-x", "password": "nope"})
    assert r.status_code == 401 and "用户名、密码或动态口令错误" in r.text


def test_staff_search_by_document_phone_and_name(client: TestClient, db: Session) -> None:
    number = resident_id(date(1979, 9, 9))
    p = make_patient(db, name="蒋文", document_number=number, phone="13700009999")
    db.commit()
    _staff_sign_in(client, db, Role.window)
    r = client.post("/staff/patients", data={"by": "document", "document_type":
                                             "resident_id_card", "document_number": number})
    assert f'data-patient="{p.id}"' in r.text and number not in r.text
    r = client.post("/staff/patients", data={"by": "phone", "phone": "13700009999"})
    assert f'data-patient="{p.id}"' in r.text and "137****9999" in r.text
    r = client.post("/staff/patients", data={"by": "name", "name": "蒋文"})
    assert f'data-patient="{p.id}"' in r.text
    r = client.post("/staff/patients", data={"by": "document", "document_type":
                                             "resident_id_card", "document_number": "123"})
    assert r.status_code == 422 and 'data-field="document_number"' in r.text
    assert 'value="123"' in r.text  # the refused number stays to be corrected
    assert client.get("/staff/audit").status_code == 403  # a clerk does not read the audit


def test_admin_merges_unmerges_and_reads_the_audit(client: TestClient, db: Session) -> None:
    phone = mobile()
    a = make_patient(db, name="许静", phone=phone, birth_date=date(1969, 3, 3))
    b = make_patient(db, name="许静", phone=phone, birth_date=date(1969, 3, 3),
                     document_type=DocumentType.passport, document_number="E31313131")
    db.commit()
    _staff_sign_in(client, db, Role.regional_admin)
    page = client.get("/staff/duplicates").text
    assert f'data-patient="{a.id}"' in page and f'data-patient="{b.id}"' in page
    r = client.post("/staff/merges", data={"source": b.id, "target": a.id},
                    follow_redirects=False)
    # the link names the merge row only; the page reads the message from it
    done = re.fullmatch(r"/staff/duplicates\?flash=merged&merge=(\d+)", r.headers["location"])
    assert r.status_code == 303 and done is not None
    merge_id = int(done[1])
    r = client.get(r.headers["location"])
    assert r.status_code == 200 and f"已合并（记录{merge_id}）" in r.text and "撤销合并" in r.text
    r = client.post(f"/staff/merges/{merge_id}/unmerge", follow_redirects=False)
    assert r.headers["location"] == f"/staff/duplicates?flash=unmerged&merge={merge_id}"
    assert f"已撤销合并（记录{merge_id}）" in client.get(r.headers["location"]).text
    # a link to a merge page that does not match the record's state says nothing
    assert "已合并（" not in client.get("/staff/duplicates",
                                       params={"flash": "merged", "merge": merge_id}).text
    r = client.get("/staff/audit", params={"patient_id": a.id})
    assert r.status_code == 200 and "empi.merge" in r.text and "empi.unmerge" in r.text
    r = client.get("/staff/audit", params={"staff": "pg-regional_admin"})
    assert r.status_code == 200 and r.text.count('data-outcome="allowed"') >= 4
    r = client.get("/staff/audit", params={"staff": "nobody"})
    assert r.status_code == 422 and "未找到该工作人员" in r.text
    for typed in ("²", "１２", "2147483648"):  # no row's id
        r = client.get("/staff/audit", params={"patient_id": typed})
        assert r.status_code == 422 and "就诊人编号应为数字" in r.text, typed
        r = client.get("/staff/audit", params={"staff": typed})
        assert r.status_code == 422 and "未找到该工作人员" in r.text, typed


def test_window_registers_a_patient_at_the_desk(client: TestClient, db: Session) -> None:
    _staff_sign_in(client, db, Role.window)
    form = client.get("/staff/patients/new").text
    assert "实名登记" in form and 'name="relationship"' not in form
    number = resident_id(date(1958, 8, 8))
    bad = client.post("/staff/patients/new", data={
        "name": "曹刚", "document_type": "resident_id_card", "document_number": number,
        "phone": "12345"})
    assert bad.status_code == 422 and 'data-field="phone"' in bad.text
    ok = client.post("/staff/patients/new", data={
        "name": "曹刚", "document_type": "resident_id_card", "document_number": number,
        "phone": "13600007777"})
    assert ok.status_code == 201 and "已登记：曹刚" in ok.text and number not in ok.text
    again = client.post("/staff/patients/new", data={
        "name": "曹刚", "document_type": "social_security_card", "document_number": number,
        "phone": "13600007777"})
    assert again.status_code == 200 and "已有档案" in again.text


FORGED = "您的账号存在风险，请立即拨打4008001234核实"


def test_the_duplicates_page_shows_no_text_a_link_brings(client: TestClient,
                                                        db: Session) -> None:
    """A link anyone can send must not make the console say something OneTrip did not."""
    _staff_sign_in(client, db, Role.regional_admin)
    for query in ({"flash": FORGED}, {"flash": "merged", "merge": FORGED},
                  {"flash": "merged", "merge": "99999999999999999999"},
                  {"flash": "merged", "merge": "999999"}, {"flash": "unmerged"}):
        r = client.get("/staff/duplicates", params=query)
        assert r.status_code == 200 and FORGED not in r.text, query
        assert 'class="flash' not in r.text, query
