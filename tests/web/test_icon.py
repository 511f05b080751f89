"""The site icon: every page links it, and the browser's own /favicon.ico request is answered
(no 404 in the log for each page visit)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_every_page_links_the_icon_and_favicon_ico_is_answered(client: TestClient) -> None:
    for path in ("/", "/book", "/kiosk", "/sign-in", "/staff/sign-in"):
        page = client.get(path)
        link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page.text)
        assert link is not None, path
    assert link is not None
    icon = client.get(link[1])
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in icon.content
    r = client.get("/favicon.ico", follow_redirects=False)
    assert r.status_code != 404
    answered = client.get("/favicon.ico")
    assert answered.status_code == 200 and answered.content == icon.content
