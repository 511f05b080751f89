"""One suite for SQLite (default) and PostgreSQL (``ONETRIP_TEST_DATABASE_URL``).

At session start the test database is emptied, migrated with Alembic and loaded with the
demo region (committed). Each test then runs inside a transaction that is rolled back at
its end (``db`` fixture; the app's own commits become savepoints), so tests never see each
other's writes. Tests that need real commits from several processes use ``committed_url``
and clean up after themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from onetrip import config, migrate
from onetrip import db as dbmod
from onetrip.demo import load_demo

ARTIFACTS = Path(__file__).parent / "artifacts"
T = TypeVar("T")


def _reset_postgres(url: str) -> None:
    engine = dbmod.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("ONETRIP_TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    os.environ["ONETRIP_DATABASE_URL"] = url
    os.environ["ONETRIP_ANALYTICS_DIR"] = str(tmp_path_factory.mktemp("analytics"))
    config.get_settings.cache_clear()
    dbmod.get_engine.cache_clear()
    dbmod._session_factory.cache_clear()
    migrate.upgrade(url)
    with dbmod.session_scope() as db:
        load_demo(db)
    yield url
    dbmod.get_engine().dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Engine:
    return dbmod.get_engine()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose every commit is undone after the test."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def client(db: Session) -> Iterator[TestClient]:
    """The app, with each request's unit of work inside the test's transaction."""
    from onetrip.deps import ShortUnits, get_db, get_short_units
    from onetrip.main import create_app
    from onetrip.scheduling import groupcommit

    app = create_app()

    def _test_db() -> Iterator[Session]:
        # What the test set up before the request counts as committed, as it would be in
        # production; the request's own failure then undoes only the request.
        db.commit()
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise

    class TestUnits(ShortUnits):
        """Short units of work run in the test's own transaction."""

        async def __call__(self, fn: Callable[[Session], T], *, write: bool = True) -> T:
            result = fn(db)
            db.commit()
            return result

    async def commit_here(command: groupcommit.Command) -> groupcommit.Answer:
        """Booking commands answered in the test's own transaction, one batch each."""
        db.commit()
        [refused] = groupcommit.limited(db, [command], now=command.now)
        [answer] = [refused] if refused else groupcommit.run_batch(db, [command],
                                                                   now=command.now)
        db.commit()
        return answer

    app.dependency_overrides[get_db] = _test_db
    app.dependency_overrides[get_short_units] = TestUnits
    app.dependency_overrides[groupcommit.get_committer] = lambda: commit_here
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def race_engine(database_url: str) -> Iterator[Engine]:
    """A committed database of its own (for real server or worker processes), dropped after.

    Its URL is ``engine.info["url"]``; the test database stays untouched.
    """
    import uuid

    from tests import racekit

    url, drop = racekit.fresh_database(f"race{uuid.uuid4().hex[:6]}")
    engine = dbmod.make_engine(url)
    engine.info = {"url": url}  # type: ignore[attr-defined]
    yield engine
    engine.dispose()
    drop()


@pytest.fixture(scope="module")
def cli_engine(database_url: str) -> Iterator[Engine]:
    """A committed database of its own for a module of `onetrip` command tests, made the
    app's database while they run: a command commits, and the hospitals and rows the tests
    make must not reach the shared test database (the demo's own tests refuse a database
    holding other data). Dropped after the module."""
    import uuid

    from tests import racekit

    url, drop = racekit.fresh_database(f"cli{uuid.uuid4().hex[:6]}")
    _use_database(url)
    engine = dbmod.get_engine()
    try:
        yield engine
    finally:
        engine.dispose()
        _use_database(database_url)
        drop()


def _use_database(url: str) -> None:
    os.environ["ONETRIP_DATABASE_URL"] = url
    config.get_settings.cache_clear()
    dbmod.get_engine.cache_clear()
    dbmod._session_factory.cache_clear()
