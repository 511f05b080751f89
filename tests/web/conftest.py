"""Browser fixtures: a live server on the test database and Debian's chromium."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@contextmanager
def serve_at(now: Any) -> Iterator[str]:
    """The app on a live server whose clock is pinned to ``now``."""
    from onetrip.deps import get_now
    from onetrip.main import create_app

    app = create_app()
    app.dependency_overrides[get_now] = lambda: now
    with serve(app) as url:
        yield url


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    from onetrip.main import create_app

    with serve(create_app()) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not shutil.which("chromium") and not shutil.which("/usr/bin/chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); "
                    ".ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # The browser's own controls (date picker, file chooser) in Chinese, as patients
        # see them: needs Debian's chromium-l10n, which .ci/run installs.
        b = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--lang=zh-CN"],
            env={**os.environ, "LANGUAGE": "zh_CN"},
        )
        yield b
        b.close()
