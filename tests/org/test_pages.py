"""Organisation pages, rendered by the app (Chinese, no stack traces)."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.org import calendar
from onetrip.org import service as org_service
from onetrip.org.rules import OverrideKind
from tests.factories import auth, make_hospital, make_token


def test_home_lists_the_regions_hospitals(client: TestClient) -> None:
    html = client.get("/").text
    assert 'lang="zh-CN"' in html and "示范市人民医院" in html and "三级医院" in html
    assert "/static/vendor/htmx/htmx.min.js" in html


def test_search_partial_for_htmx_and_full_page_without_js(client: TestClient) -> None:
    partial = client.get("/search", params={"q": "xnk"}, headers={"HX-Request": "true"}).text
    assert "心血管内科" in partial and "<html" not in partial
    page = client.get("/search", params={"q": "xnk"}).text
    assert "<html" in page and "心血管内科" in page
    empty = client.get("/search", params={"q": "zzzzqq"}).text
    assert "没有找到" in empty


def test_hospital_page_shows_introduction_departments_and_experts(client: TestClient) -> None:
    html = client.get("/hospitals/sfsrmyy").text
    assert "三级甲等" in html and "科室导航" in html and "专家团队" in html
    assert "主任医师" in html and "挂号费" in html


def test_department_page_lists_its_doctors(client: TestClient) -> None:
    html = client.get("/hospitals/sfsrmyy/departments/xxgnk").text
    assert "心血管内科" in html and "出诊医生" in html and "擅长" in html


def test_unknown_pages_are_chinese_404_without_traceback(client: TestClient) -> None:
    r = client.get("/hospitals/nope")
    assert r.status_code == 404 and "未找到该医院" in r.text and "Traceback" not in r.text
    r = client.get("/no/such/page")
    assert r.status_code == 404 and "页面或资源不存在" in r.text


def test_calendar_admin_requires_sign_in_and_an_admin_role(client: TestClient,
                                                          db: Session) -> None:
    r = client.get("/admin/calendar")
    assert r.status_code == 401 and "去登录" in r.text
    clerk = make_token(db, Role.window, org_service.access_hospital(db, "sfsdery"))
    client.post("/staff/sign-in", data={"token": clerk, "next": "/"})
    assert client.get("/admin/calendar").status_code == 403


def test_admin_sets_imports_and_deletes_rulings_from_the_page(client: TestClient,
                                                              db: Session) -> None:
    h = org_service.access_hospital(db, "sfsdery")
    admin = make_token(db, Role.hospital_admin, h)
    r = client.post("/staff/sign-in", data={"token": admin, "next": "/admin/calendar"})
    assert r.status_code == 200 and "门诊日历" in r.text and "2027年的法定节假日安排尚无数据" in (
        client.get("/admin/calendar", params={"year": 2026, "month": 12}).text)
    r = client.post("/admin/calendar/overrides",
                    data={"hospital": "sfsdery", "day": "2026-12-07", "kind": "closed",
                          "name": "院庆"}, follow_redirects=False)
    row = next(o for o in calendar.list_overrides(db, hospital=h) if o.name == "院庆")
    assert r.headers["location"] == ("/admin/calendar?hospital=sfsdery&year=2026&month=12"
                                     f"&flash=set&override={row.id}")
    r = client.get(r.headers["location"])
    assert r.status_code == 200 and "已设定 2026-12-07：停诊" in r.text
    assert 'data-date="2026-12-07" data-status="closed"' in r.text
    csv = "日期,类型,说明\n2027-01-01,休,元旦\n2027-01-02,休,元旦\n".encode()
    r = client.post("/admin/calendar/import", data={"hospital": "sfsdery"},
                    files={"file": ("2027.csv", csv, "text/csv")})
    assert "已导入 2 个日期" in r.text and 'data-date="2027-01-01" data-status="closed"' in r.text
    bad = client.post("/admin/calendar/import", data={"hospital": "sfsdery"},
                      files={"file": ("bad.csv", b"2027-01-03,maybe,\n", "text/csv")})
    assert bad.status_code == 422 and "第1行" in bad.text
    r = client.post(f"/admin/calendar/overrides/{row.id}/delete", data={"hospital": "sfsdery"})
    assert "已删除" in r.text and 'data-date="2026-12-07" data-status="clinic"' in r.text


def test_admin_of_one_hospital_cannot_manage_another(client: TestClient, db: Session) -> None:
    admin = make_token(db, Role.hospital_admin, org_service.access_hospital(db, "sfsdery"))
    client.post("/staff/sign-in", data={"token": admin, "next": "/"})
    r = client.post("/admin/calendar/overrides",
                    data={"hospital": "sfsrmyy", "day": "2026-12-07", "kind": "closed"})
    assert r.status_code == 403
    r = client.post("/admin/calendar/overrides",
                    data={"hospital": "sfsdery", "day": "2026-12-07", "kind": "closed",
                          "scope": "region"})
    assert r.status_code == 403


def test_bad_sign_in_token_is_refused_in_chinese(client: TestClient) -> None:
    r = client.post("/staff/sign-in", data={"token": "ot_wrong"})
    assert r.status_code == 401 and "令牌无效" in r.text


FORGED = "门诊系统故障，请拨打4008001234预约"


def test_the_calendar_page_shows_no_text_a_link_brings(client: TestClient,
                                                       db: Session) -> None:
    h = org_service.access_hospital(db, "sfsdery")
    far = make_hospital(db)
    theirs = calendar.set_override(db, day=date(2026, 12, 8), kind=OverrideKind.closed,
                                   name="别院", hospital=far)
    client.headers.update(auth(make_token(db, Role.hospital_admin, h)))
    for query in ({"flash": FORGED}, {"flash": "set", "override": FORGED},
                  {"flash": "set", "override": str(theirs.id)},
                  {"flash": "set", "override": "99999999999999999999"},
                  {"flash": "imported", "count": FORGED}, {"flash": "imported"}):
        r = client.get("/admin/calendar", params={**query, "year": 2026, "month": 12})
        assert r.status_code == 200 and FORGED not in r.text, query
        assert "已设定" not in r.text and "已导入" not in r.text, query
        assert 'class="flash ok"' not in r.text, query


def test_a_calendar_file_too_large_is_refused_whole_not_cut(client: TestClient,
                                                            db: Session) -> None:
    """A file past the page's limit was read up to it and the rest silently dropped."""
    h = org_service.access_hospital(db, "sfsdery")
    admin = make_token(db, Role.hospital_admin, h)
    client.post("/staff/sign-in", data={"token": admin, "next": "/admin/calendar"})
    csv = ("日期,类型,说明\n2027-03-01,休,院庆\n" + "\n" * 1_000_000
           + "2027-03-02,休,院庆\n").encode()
    r = client.post("/admin/calendar/import", data={"hospital": "sfsdery"},
                    files={"file": ("2027.csv", csv, "text/csv")})
    assert r.status_code == 422 and "文件过大" in r.text, r.text[-300:]
    assert not [o for o in calendar.list_overrides(db, hospital=h)
                if o.day.isoformat() in ("2027-03-01", "2027-03-02")]


def test_a_ruling_only_for_a_day_the_calendar_shows(client: TestClient, db: Session) -> None:
    """A day is written YYYY-MM-DD in the page's years (2000-2100): a number was read as a
    Unix time (0 is 1970-01-01) and any year was stored, where the page could not show or
    delete it. Nothing is stored for such a day, by the form or by a file."""
    h = org_service.access_hospital(db, "sfsdery")
    admin = make_token(db, Role.hospital_admin, h)
    client.post("/staff/sign-in", data={"token": admin, "next": "/admin/calendar"})
    before = len(calendar.list_overrides(db, hospital=h))
    for day in ("0", "86400", "1999-12-31", "2101-01-01", "9999-12-31", "20270101",
                "2027-W01-1", "２０２７-01-01"):
        r = client.post("/admin/calendar/overrides",
                        data={"hospital": "sfsdery", "day": day, "kind": "closed"})
        assert r.status_code == 422 and "日期" in r.text, day
        csv = f"日期,类型,说明\n{day},休,x\n".encode()
        r = client.post("/admin/calendar/import", data={"hospital": "sfsdery"},
                        files={"file": ("bad.csv", csv, "text/csv")})
        assert r.status_code == 422 and "第2行" in r.text, day
    for text in ("2027-01-01,休," + "长" * 140_000 + "\n",  # a field past the csv module's
                 "2027-01-01,休,元\x00旦\n"):  # limit; a NUL no database should hold
        r = client.post("/admin/calendar/import", data={"hospital": "sfsdery"},
                        files={"file": ("bad.csv", text.encode(), "text/csv")})
        assert r.status_code == 422 and "未导入" in r.text
    assert len(calendar.list_overrides(db, hospital=h)) == before
