"""A form another site makes a signed-in browser send is refused (MLPS 2.0 level 3).

The session cookie is ``SameSite=Strict``, so a modern browser never sends it with a request
another site starts; the server also refuses, with 403 ``cross_site_request``, any request
that changes something, carries no ``Authorization`` header and says it comes from another
site (``Origin``, or ``Sec-Fetch-Site: cross-site`` when there is no ``Origin``). A request
with a bearer token cannot be forged by another site (it cannot know the token) and is not
concerned, nor is a client that says nothing of where it comes from (a script, curl)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip import config
from onetrip.identity.rules import Role
from onetrip.org import calendar
from onetrip.org import service as org_service
from tests.factories import auth, make_token, resident_id

RULING = {"hospital": "sfsdery", "day": "2026-12-07", "kind": "closed", "name": "院庆"}


def _signed_in(client: TestClient, db: Session) -> None:
    admin = make_token(db, Role.hospital_admin, org_service.access_hospital(db, "sfsdery"))
    db.commit()
    r = client.post("/staff/sign-in", data={"token": admin, "next": "/"},
                    headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303


def _rulings(db: Session) -> list[str]:
    return [o.name for o in calendar.list_overrides(
        db, hospital=org_service.access_hospital(db, "sfsdery"))]


@pytest.mark.parametrize(("headers", "made"), [
    ({"Origin": "https://evil.example"}, False),
    ({"Origin": "null"}, False),  # a sandboxed frame or a page opened from a file
    ({"Origin": "http://testserver.evil.example"}, False),
    ({"Sec-Fetch-Site": "cross-site"}, False),
    ({"Origin": "http://testserver"}, True),
    ({"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}, True),
    ({"Sec-Fetch-Site": "same-origin"}, True),
    ({}, True),  # no word of where it comes from: not a browser's cross-site request
], ids=["other-site", "null", "lookalike", "fetch-metadata-cross", "origin",
        "origin-and-fetch-metadata", "fetch-metadata-same", "silent"])
def test_a_form_is_made_only_from_our_own_pages(
        client: TestClient, db: Session, headers: dict[str, str], made: bool) -> None:
    _signed_in(client, db)
    r = client.post("/admin/calendar/overrides", data=RULING, headers=headers,
                    follow_redirects=False)
    if made:
        assert r.status_code == 303, r.text[-400:]
        assert _rulings(db) == ["院庆"]
    else:
        assert r.status_code == 403 and "其他网站" in r.text, r.text[-400:]
        assert r.headers["content-type"].startswith("text/html")
        assert _rulings(db) == []


def test_basic_credentials_a_browser_keeps_do_not_open_the_lock(
        client: TestClient, db: Session) -> None:
    """A browser behind an intranet proxy with HTTP Basic sends ``Authorization: Basic``
    with every request, a forged one too: the session cookie still signs it in."""
    _signed_in(client, db)
    r = client.post("/admin/calendar/overrides", data=RULING, follow_redirects=False,
                    headers={"Origin": "https://evil.example",
                             "Authorization": "Basic aG9zcGl0YWw6c2VjcmV0"})
    assert r.status_code == 403 and _rulings(db) == []


@pytest.mark.parametrize("origin", ["HTTPS://OneTrip.Example.CN", "https://onetrip.example.cn:443"])
def test_the_public_address_is_matched_as_a_browser_writes_it(
        behind_a_proxy: str, client: TestClient, db: Session, origin: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONETRIP_PUBLIC_URL", origin)
    config.get_settings.cache_clear()
    _signed_in(client, db)
    r = client.post("/admin/calendar/overrides", data=RULING, follow_redirects=False,
                    headers={"Origin": behind_a_proxy})
    assert r.status_code == 303 and _rulings(db) == ["院庆"]


def test_signing_in_from_another_site_is_refused(client: TestClient, db: Session) -> None:
    """Login CSRF: another site must not sign the browser in as someone else."""
    admin = make_token(db, Role.hospital_admin, org_service.access_hospital(db, "sfsdery"))
    db.commit()
    r = client.post("/staff/sign-in", data={"token": admin, "next": "/"},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers


@pytest.fixture
def behind_a_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The public address differs from the Host the proxy passes on."""
    monkeypatch.setenv("ONETRIP_PUBLIC_URL", "https://onetrip.example.cn/")
    config.get_settings.cache_clear()
    yield "https://onetrip.example.cn"
    monkeypatch.delenv("ONETRIP_PUBLIC_URL")
    config.get_settings.cache_clear()


def test_behind_a_proxy_the_public_address_is_our_own(
        behind_a_proxy: str, client: TestClient, db: Session) -> None:
    _signed_in(client, db)
    r = client.post("/admin/calendar/overrides", data=RULING,
                    headers={"Origin": behind_a_proxy}, follow_redirects=False)
    assert r.status_code == 303 and _rulings(db) == ["院庆"]
    r = client.post("/admin/calendar/overrides", data={**RULING, "day": "2026-12-08"},
                    headers={"Origin": "http://onetrip.example.cn"}, follow_redirects=False)
    assert r.status_code == 403, "the same host over plain http is another origin"


def test_an_api_call_with_a_bearer_token_is_not_concerned(client: TestClient,
                                                        db: Session) -> None:
    token = make_token(db, Role.window, org_service.access_hospital(db, "sfsrmyy"))
    db.commit()
    body = {"name": "赵敏", "document_type": "resident_id_card",
            "document_number": resident_id(date(1988, 8, 8)), "phone": "13912340000"}
    r = client.post("/api/v1/patients", json=body,
                    headers={**auth(token), "Origin": "https://his.example"})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/sms-codes", json={"phone": "13912340000"},
                    headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["code"] == "cross_site_request"
