"""The app as a server process runs it."""

from __future__ import annotations

import gc

from onetrip.main import serve_app


def test_the_served_app_freezes_its_start_up_objects_out_of_the_collector() -> None:
    try:
        before = gc.get_freeze_count()
        app = serve_app()
        # Libraries, routes and models: tens of thousands of objects a full collection no
        # longer walks under load.
        assert gc.get_freeze_count() - before > 10_000
        assert "/api/v1/appointments" in app.openapi()["paths"]
    finally:
        gc.unfreeze()
