"""The large-font mode for the elderly: a cookie every page (portal, kiosk, public) honours."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_large_font_mode_is_a_cookie_every_page_honours(client: TestClient) -> None:
    assert "large-font" not in client.get("/book").text
    r = client.post("/prefs/font", data={"size": "large", "next": "/book?x=1"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/book?x=1"
    assert "onetrip_font=large" in r.headers["set-cookie"]
    for path in ("/book", "/", "/kiosk", "/sign-in"):
        page = client.get(path)
        assert re.search(r"<html[^>]*large-font", page.text), path
        assert "标准字体" in page.text
    client.post("/prefs/font", data={"size": "normal", "next": "/book"})
    assert "large-font" not in client.get("/book").text


def test_font_form_never_leaves_the_site_and_rejects_bad_sizes(client: TestClient) -> None:
    r = client.post("/prefs/font", data={"size": "large", "next": "//evil.example/x"},
                    follow_redirects=False)
    assert r.headers["location"] == "/"
    bad = client.post("/prefs/font", data={"size": "huge"})
    assert bad.status_code == 422 and "格式不正确" in bad.text


def test_unknown_pages_get_a_chinese_error_without_a_stack_trace(client: TestClient) -> None:
    missing = client.get("/book/hospitals/no-such-hospital")
    assert missing.status_code == 404 and "没有找到您要的内容" in missing.text
    assert "Traceback" not in missing.text


def test_a_malformed_address_gets_a_chinese_page_without_parameter_names(
        client: TestClient) -> None:
    page = client.get("/book/slots/abc")
    assert page.status_code == 422 and "格式不正确" in page.text
    assert "slot_id" not in page.text and "Traceback" not in page.text
    api = client.get("/api/v1/schedules", params={"hospital": "sfsrmyy", "date": "x"})
    # the API keeps naming the field for the programs that call it
    assert api.status_code == 422 and api.json()["detail"][0]["field"]


def test_htmx_swaps_validation_refusals_in_place_and_nothing_else_of_4xx(
        client: TestClient) -> None:
    """Every page tells htmx to swap 409 and 422 answers (a refusal shown beside the field,
    with its real status) but not 401/403/404/5xx, as htmx's own defaults do."""
    import html
    import json

    page = client.get("/sign-in").text
    meta = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', page)
    assert meta is not None
    rules = json.loads(html.unescape(meta.group(1)))["responseHandling"]

    def swaps(status: int) -> bool:  # htmx takes the first rule whose pattern matches
        rule = next(r for r in rules if re.search(r["code"], str(status)))
        return bool(rule["swap"])

    assert [swaps(s) for s in (200, 303, 409, 422)] == [True, True, True, True]
    assert [swaps(s) for s in (204, 400, 401, 403, 404, 500)] == [False] * 6
