"""The organisation JSON API against the demo region."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.org import service as org_service
from tests.factories import auth, make_token


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_hospitals_list_has_codes_levels_and_kinds(client: TestClient) -> None:
    body = client.get("/api/v1/hospitals").json()
    by_code = {h["code"]: h for h in body}
    assert by_code["sfsrmyy"]["level"] == "tertiary" and by_code["sfszyy"]["kind"] == "tcm"
    assert sum(h["kind"] == "primary_care" for h in body) >= 5
    assert body[0]["level"] == "tertiary"


def test_departments_of_a_hospital_include_subdepartments(client: TestClient) -> None:
    depts = client.get("/api/v1/hospitals/sfsrmyy/departments").json()
    cardio = next(d for d in depts if d["name"] == "心血管内科")
    assert cardio["parent"] == "nk" and "心内科" in cardio["aliases"]
    assert len([d for d in depts if d["is_clinical"]]) >= 20


def test_practitioners_by_department_and_by_parent_grouping(client: TestClient) -> None:
    cardio = client.get("/api/v1/practitioners",
                        params={"hospital": "sfsrmyy", "department": "xxgnk"}).json()
    assert cardio and all("xxgnk" in p["departments"] for p in cardio)
    medicine = client.get("/api/v1/practitioners",
                          params={"hospital": "sfsrmyy", "department": "nk"}).json()
    assert len(medicine) > len(cardio)


def test_unknown_codes_are_404_with_stable_codes(client: TestClient) -> None:
    r = client.get("/api/v1/hospitals/nope/departments")
    assert r.status_code == 404 and r.json()["code"] == "hospital_not_found"
    r = client.get("/api/v1/practitioners", params={"hospital": "sfsrmyy", "department": "zz"})
    assert r.status_code == 404 and r.json()["code"] == "department_not_found"


def test_invalid_query_parameters_are_422_in_chinese(client: TestClient) -> None:
    r = client.get("/api/v1/hospitals/sfsrmyy/calendar", params={"start": "2026-13-01"})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "invalid_request"
    assert body["detail"][0] == {"field": "start", "message": "日期格式应为YYYY-MM-DD",
                                 "type": "date_from_datetime_parsing"}
    r = client.get("/api/v1/practitioners")
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"


def test_search_by_pinyin_initials_finds_cardiology(client: TestClient) -> None:
    hits = client.get("/api/v1/search", params={"q": "xnk"}).json()
    names = [h["name"] for h in hits if h["type"] == "department"]
    assert "心血管内科" in names
    # Exact alias matches rank before substring matches such as 呼吸内科 (hxnk).
    assert names.index("心血管内科") < names.index("呼吸与危重症医学科")


def test_calendar_api_reports_status_and_reason(client: TestClient) -> None:
    days = client.get("/api/v1/hospitals/sfsdery/calendar",
                      params={"start": "2026-09-30", "end": "2026-10-02"}).json()
    assert [d["status"] for d in days] == ["clinic", "closed", "closed"]
    assert "国庆节" in days[1]["reason"]


def test_calendar_override_needs_an_admin_of_that_hospital(client: TestClient,
                                                           db: Session) -> None:
    url = "/api/v1/hospitals/sfsdery/calendar/2026-12-01"
    body = {"kind": "closed", "name": "设备检修"}
    assert client.put(url, json=body).status_code == 401
    other = org_service.access_hospital(db, "sfsrmyy")
    own = org_service.access_hospital(db, "sfsdery")
    assert client.put(url, json=body,
                      headers=auth(make_token(db, Role.window, own))).status_code == 403
    assert client.put(url, json=body,
                      headers=auth(make_token(db, Role.hospital_admin, other))).status_code == 403
    r = client.put(url, json=body, headers=auth(make_token(db, Role.hospital_admin, own)))
    assert r.status_code == 200 and r.json()["status"] == "closed"
    r = client.put(url, json={"kind": "maybe"},
                   headers=auth(make_token(db, Role.regional_admin)))
    assert r.status_code == 422


def test_the_calendars_last_day_can_be_read_and_ruled(client: TestClient, db: Session) -> None:
    """Reading up to 9999-12-31 stepped one day past it (an overflow, and a 500)."""
    days = client.get("/api/v1/hospitals/sfsdery/calendar",
                      params={"start": "9999-12-30", "end": "9999-12-31"})
    assert days.status_code == 200 and [d["date"] for d in days.json()] == [
        "9999-12-30", "9999-12-31"]
    own = org_service.access_hospital(db, "sfsdery")
    admin = auth(make_token(db, Role.hospital_admin, own))
    # A ruling names a day of the years the calendar page shows (2000-2100): one there
    # could not be seen or deleted.
    r = client.put("/api/v1/hospitals/sfsdery/calendar/9999-12-31",
                   json={"kind": "closed", "name": "设备检修"}, headers=admin)
    assert r.status_code == 422 and r.json()["code"] == "calendar_day_invalid"
    r = client.put("/api/v1/hospitals/sfsdery/calendar/2100-12-31",
                   json={"kind": "closed", "name": "设备检修"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "closed"
