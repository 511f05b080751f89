"""Engine, declarative Base and the unit of work.

SQLite is opened in WAL mode with foreign keys on, and with the driver's own implicit
transaction handling switched off so that SQLAlchemy's BEGIN/SAVEPOINT are the real ones
(the documented pysqlite recipe); PostgreSQL is used as it comes.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Connection,
    CursorResult,
    DateTime,
    Engine,
    MetaData,
    Result,
    Row,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    literal_column,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from onetrip.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class _SQLiteUTCText(sqlite.DATETIME):
    """SQLite's text of a UTC time (``2026-12-05 08:00:00.000000``, SQLAlchemy's storage
    format, so stored times keep sorting and comparing as text), written by
    ``datetime.isoformat``: the default processor builds a dict for every value, a cost
    the booking path paid a score of times per booking."""

    def bind_processor(self, dialect: Any) -> Any:
        def process(value: datetime | None) -> str | None:
            return None if value is None else value.replace(tzinfo=None).isoformat(
                " ", "microseconds")
        return process


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetime stored in UTC on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteUTCText())
        return super().load_dialect_impl(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: The largest id a row can have on every backend (ids are PostgreSQL INTEGER; SQLite's
#: INTEGER holds more): the bound of the ids a request brings. A larger one in a booking
#: would fail its whole batch on PostgreSQL.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE (the result of ``Session.execute``)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _configure_sqlite(engine: Engine) -> None:
    database = engine.url.database or ""
    lock_path = f"{database}.writer-lock" if database and database != ":memory:" else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit reaches the disk before it returns, so an acknowledged booking
        # survives a power cut too (NORMAL in WAL mode survives only a crash of the process).
        # Group commit makes that one flush per batch of bookings, not one per booking.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        if lock_path is not None:
            record.info["writer_lock"] = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection: Any, record: Any) -> None:
        fd = record.info.pop("writer_lock", None)
        if fd is not None:
            os.close(fd)  # closing also drops a lock still held

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writing unit of work takes SQLite's write lock up front (BEGIN IMMEDIATE): two
        # deferred transactions that both read and then write would fail with
        # SQLITE_BUSY_SNAPSHOT instead of waiting their turn. Writers of every process
        # first queue on a lock file: flock wakes the next one the moment the lock is free,
        # where SQLite's busy handler would sleep up to 100 ms between tries.
        mode = conn.get_execution_options().get("sqlite_begin", "")
        fd = conn.connection.dbapi_connection and _writer_fd(conn)
        if mode == "IMMEDIATE" and fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            conn.info["writer_locked"] = True
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    def _release(conn: Any) -> None:
        if conn.info.pop("writer_locked", False):
            fd = _writer_fd(conn)
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)


def _writer_fd(conn: Any) -> int | None:
    fd = conn.connection._connection_record.info.get("writer_lock")
    return int(fd) if fd is not None else None


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    """Create an engine for ``url`` with OneTrip's per-backend settings."""
    if url.startswith("sqlite"):
        # Named parameters: a value a statement uses in many places (the time of a booking
        # batch's claim, in every schedule's part) is passed and processed once.
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False},
                               json_serializer=json_text, paramstyle="named",
                               pool_size=pool_size, max_overflow=4 * pool_size)
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
        json_serializer=json_text,
    )


def among(db: Session | Connection, column: Any, values: Iterable[Any]) -> Any:
    """SQL: ``column IN (values)``. On PostgreSQL ``column = ANY(:array)``, whose text stays
    the same however many values: a statement that grows with a batch is parsed afresh by
    the driver (and planned by the server) for every batch size."""
    dialect = db.dialect.name if isinstance(db, Connection) else db.get_bind().dialect.name
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def among_bound(dialect: str, column: Any, name: str) -> Any:
    """``among`` for a statement built once per dialect and run many times: ``column`` among
    the list bound to ``name`` at execution. Building a statement costs more than running
    it (about 100 µs, and as much again to find its compiled form); the booking path runs
    a dozen of them for every batch."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def read_built(db: Session, build: Callable[[str], Any], params: Mapping[str, Any],
               ) -> Result[*tuple[Any, ...]]:
    """Run a statement built once per dialect (``build(dialect)``, cached by it) with
    ``params``. The session's pending changes are flushed first, as an ORM read would: a
    Core statement does not autoflush, and a read must see what this transaction changed
    (a policy set, patients merged, a token revoked, a substitute doctor)."""
    db.flush()
    conn = db.connection()
    return conn.execute(build(conn.dialect.name), params)


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *,
                returning: Sequence[str] = (),
                skip_conflicts: bool | tuple[str, ...] = False) -> list[Row[Any]]:
    """Insert many rows (all with the same keys) in one statement; the ``returning``
    columns of the rows inserted. ``skip_conflicts`` skips rows a unique index refuses (any
    index, or the one on those columns).

    On PostgreSQL the rows travel as one JSON document that the server turns into rows of
    the table's type (``json_populate_recordset``): the statement's text is the same however
    many rows go in, so the driver and the server parse and plan it once, and the driver
    passes one string instead of quoting every value. SQLite takes the rows in the driver's
    executemany, their values converted here once per column (``_sqlite_plain_insert``), or
    in one multi-row INSERT when rows are returned.
    """
    if not rows:
        return []
    names = tuple(rows[0])
    if conn.dialect.name == "sqlite" and not returning:
        plain = _sqlite_plain_insert(conn.dialect, table, names, skip_conflicts)
        if plain is not None:
            sql, convert, defaults = plain
            conn.exec_driver_sql(sql, [
                {**defaults, **{n: f(row[n]) if f else row[n] for n, f in convert}}
                for row in rows])
            return []
    stmt = _insert_statement(conn.dialect.name, table, names, tuple(returning),
                             skip_conflicts)
    if conn.dialect.name == "postgresql":
        result = conn.execute(stmt, {"rows": _json_rows(rows)})
    else:
        result = conn.execute(stmt, list(rows))
    return list(result) if returning else []


@lru_cache(maxsize=64)
def _sqlite_plain_insert(dialect: Any, table: Table, names: tuple[str, ...],
                         skip_conflicts: bool | tuple[str, ...]) -> Any:
    """SQLite: the INSERT's text with named parameters, each given column's conversion (its
    type's bind processor) and the constant defaults of the columns not given; None when a
    column not given has a computed default (the statement then goes through SQLAlchemy).

    SQLAlchemy would build and convert every row's parameters on its own (about 9 µs a row
    here); the booking path inserts four such rows for every booking."""
    defaults: dict[str, Any] = {}
    for column in table.c:
        if column.name in names or column.default is None:
            continue
        if not column.default.is_scalar:
            return None
        defaults[column.name] = column.default.arg  # type: ignore[attr-defined]
    stmt = _insert_statement("sqlite", table, names, (), skip_conflicts)
    sql = str(stmt.compile(dialect=dialect, column_keys=[*names, *defaults]))
    convert = tuple((n, table.c[n].type.dialect_impl(dialect).bind_processor(dialect))
                    for n in names)
    for name in list(defaults):
        f = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        defaults[name] = f(defaults[name]) if f else defaults[name]
    return sql, convert, defaults


def _given(table: Table, names: tuple[str, ...]) -> Any:
    """``json_populate_recordset(NULL::table, :rows) AS given``: the rows of the JSON
    document ``rows`` as records of the table's type."""
    record = postgresql.dialect().identifier_preparer.quote(table.name)
    return func.json_populate_recordset(
        literal_column(f"NULL::{record}"), sql_cast(bindparam("rows"), JSON),
    ).table_valued(*names).alias("given")


@lru_cache(maxsize=64)
def _insert_statement(dialect: str, table: Table, names: tuple[str, ...],
                      returning: tuple[str, ...], skip_conflicts: bool | tuple[str, ...],
                      ) -> Any:
    stmt: Any
    if dialect == "postgresql":
        given = _given(table, names)
        stmt = postgresql.insert(table).from_select(names, select(*(given.c[n] for n in names)))
    else:
        stmt = sqlite.insert(table)
    if skip_conflicts:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=None if isinstance(skip_conflicts, bool) else list(skip_conflicts))
    if returning:
        stmt = stmt.returning(*(table.c[name] for name in returning))
    return stmt


def json_text(value: Any) -> str:
    """The JSON text of a JSON column's value (orjson: compact, Chinese as is)."""
    return orjson.dumps(value, default=_json_value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_rows(rows: Sequence[dict[str, Any]]) -> str:
    # orjson writes dates and times itself (an aware time with its offset, which the server
    # reads as the same instant): the booking path's rows carry many, and a Python callback
    # for each cost more than the rest of the encoding. The rows of one call come from one
    # place in the code, so the first row tells whether its times are aware.
    for name, value in rows[0].items():
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(f"naive datetime given for {name} where an aware one is required")
    return json_text(list(rows))


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a JSON row")


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    return make_engine(settings.database_url, echo=settings.sql_echo,
                       pool_size=settings.db_pool_size)


@lru_cache
def _session_factory(write: bool) -> sessionmaker[Session]:
    return sessions_for(get_engine(), write=write)


def sessions_for(engine: Engine, *, write: bool) -> sessionmaker[Session]:
    """Sessions on ``engine``; a writing one on SQLite begins with the write lock."""
    if write and engine.dialect.name == "sqlite":
        return sessionmaker(bind=engine.execution_options(sqlite_begin="IMMEDIATE"),
                            expire_on_commit=False)
    return sessionmaker(bind=engine, expire_on_commit=False)


#: One SQLite writer at a time per process: threads queue here, in order, instead of
#: spinning in SQLite's busy handler; processes still take turns through busy_timeout.
_SQLITE_WRITER = threading.Lock()


def writer_turn(write: bool) -> threading.Lock | nullcontext[None]:
    """Hold this around a writing unit of work (a no-op except for SQLite)."""
    if write and get_engine().dialect.name == "sqlite":
        return _SQLITE_WRITER
    return nullcontext()


def new_session(*, write: bool = True) -> Session:
    """A session; ``write=False`` lets SQLite readers run beside a writer (WAL)."""
    return _session_factory(write)()


@contextmanager
def session_scope(session: Session | None = None, *, write: bool = True) -> Iterator[Session]:
    """The unit of work: commit on success, roll back on error, always close."""
    with writer_turn(write and session is None):
        db = session if session is not None else new_session(write=write)
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise
        finally:
            db.close()
