"""The group committer: a process's booking requests, many to one transaction (BK-3, BK-8).

Every booking-like POST of the API (``/appointments``, ``/holds``) becomes a ``Command``
queued here. One thread per process takes every command that queued while it committed the
previous batch and runs them together in one transaction: it counts the attempts against
the rate limits, authenticates the requests, looks up their idempotency keys, books them
with ``engine.book_many`` in the order they arrived, stores the answers for the keys and
commits. Only then is each request answered: an answer is never given for a booking that
could still roll back, and a crash before the commit leaves nothing behind.

Batching is what makes the engine fast: a transaction costs the same dozen statements and
one commit (one fsync) whether it books one patient or a hundred. A lone request is
committed at once. Under load, a batch may linger (``booking_linger_ms``, 2 ms) for as
many requests as the last batch answered plus those that queued meanwhile: clients that
send again as soon as they are answered would otherwise split into groups committing in
turn, each paying the whole transaction. The linger ends as soon as that many have come.

A deadlock PostgreSQL broke (or a serialization failure), or an idempotency key another
process answered meanwhile, undoes the batch and it runs again; any other error runs the
batch's commands one by one, so that only the command at fault gets the error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import queue
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import new_session, writer_turn
from onetrip.errors import OnetripError
from onetrip.identity import audit
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.scheduling import engine, fairness, idempotency
from onetrip.scheduling.errors import IdempotencyKeyReused
from onetrip.scheduling.models import OpeningTicket
from onetrip.scheduling.rules import Channel
from onetrip.scheduling.schemas import AppointmentRead

log = logging.getLogger(__name__)

#: SQLSTATEs after which a batch simply runs again: deadlock detected, serialization failure.
_RETRY_STATES = {"40P01", "40001"}
_ATTEMPTS = 4


@dataclass(frozen=True)
class Command:
    """One booking-like request as it arrived: who (a secret to authenticate, or a principal
    already known), what, and the idempotency key and rate-limit keys it came with."""

    patient_id: int
    channel: Channel
    now: datetime
    slot_id: int | None = None
    schedule_id: int | None = None
    hold: bool = False
    secret: str | None = None
    principal: Principal | None = None
    idempotency_key: str | None = None
    #: (key, attempts allowed per minute): the account and the client address (BK-8).
    rate_keys: tuple[tuple[str, int], ...] = ()
    request_id: str = ""
    client_ip: str = ""

    @property
    def path(self) -> str:
        return "/holds" if self.hold else "/appointments"

    def body(self) -> dict[str, Any]:
        """The request body as the API received it (what an idempotency key is bound to)."""
        return {"schedule_id": self.schedule_id, "slot_id": self.slot_id,
                "patient_id": self.patient_id, "channel": self.channel.value}

    def to_json(self) -> dict[str, Any]:
        """What a drawn ticket keeps of an authenticated command: the request and the
        principal it authenticated as (never the secret)."""
        assert self.principal is not None
        who = dataclasses.asdict(self.principal)
        who["role"], who["patient_ids"] = self.principal.role.value, sorted(
            self.principal.patient_ids)
        return {**self.body(), "hold": self.hold, "idempotency_key": self.idempotency_key,
                "principal": who}

    @classmethod
    def from_json(cls, kept: dict[str, Any], *, now: datetime) -> Command:
        who = dict(kept["principal"])
        who["role"], who["patient_ids"] = Role(who["role"]), frozenset(who["patient_ids"])
        return cls(patient_id=kept["patient_id"], channel=Channel(kept["channel"]), now=now,
                   slot_id=kept["slot_id"], schedule_id=kept["schedule_id"],
                   hold=kept["hold"], idempotency_key=kept["idempotency_key"],
                   principal=Principal(**who))


@dataclass(frozen=True)
class Answer:
    """What the request gets: a status code and a JSON body (replayed for a repeated key)."""

    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False

    @classmethod
    def of(cls, outcome: engine.Outcome) -> Answer:
        if isinstance(outcome, OnetripError):
            return cls(outcome.http_status, outcome.to_dict())
        return cls(201, AppointmentRead.of(outcome).model_dump(mode="json"))

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @classmethod
    def kept(cls, ticket: OpeningTicket) -> Answer:
        """The answer a drawn ticket keeps."""
        assert ticket.status_code is not None and ticket.answer is not None
        return cls(ticket.status_code, ticket.answer["body"], ticket.answer["replayed"])


INTERNAL = Answer(500, {"code": "internal_error", "message": "系统繁忙，请稍后再试",
                        "detail": None})


class KeyStoredMeanwhile(Exception):
    """Another transaction stored the answer to one of the batch's idempotency keys while
    this batch booked it too: the batch rolls back and runs again (and replays it)."""


def run_batch(db: Session, commands: Sequence[Command], *, now: datetime) -> list[Answer]:
    """Authenticate, look up keys, book and store the answers of a batch, in one transaction
    (the caller commits). A command's refusal never touches another command's booking.
    Raises KeyStoredMeanwhile when a key was answered elsewhere meanwhile."""
    answers: list[Answer | None] = [None] * len(commands)
    audit.hold_chain(db, f"batch:{os.getpid()}")
    principals = _principals(db, commands)
    for i, p in enumerate(principals):
        if isinstance(p, OnetripError):
            answers[i] = Answer.of(p)
    fresh, leader = _look_up_keys(db, commands, principals, answers)
    to_book = [i for i, a in enumerate(answers) if a is None and i not in leader]
    outcomes = engine.book_many(db, [engine.BookingRequest(
        principal=principals[i], patient_id=commands[i].patient_id,  # type: ignore[arg-type]
        channel=commands[i].channel, slot_id=commands[i].slot_id,
        schedule_id=commands[i].schedule_id, hold=commands[i].hold) for i in to_book], now=now)
    for i, outcome in zip(to_book, outcomes, strict=True):
        answers[i] = Answer.of(outcome)
    for i, j in leader.items():  # the same key twice in one batch: the first one's answer
        first = answers[j]
        assert first is not None
        answers[i] = Answer(first.status_code, first.body, replayed=first.ok)
    done = [a if a is not None else INTERNAL for a in answers]
    if not idempotency.store_many(db, [(wanted, done[i].status_code, done[i].body)
                                       for i, wanted in fresh.items() if done[i].ok], now=now):
        raise KeyStoredMeanwhile()
    return done


def _principals(db: Session, commands: Sequence[Command]) -> list[Principal | OnetripError]:
    asked = [i for i, c in enumerate(commands) if c.principal is None]
    found = identity_service.authenticate_many(
        db, [(commands[i].secret or "", commands[i].request_id, commands[i].client_ip)
             for i in asked])
    out: list[Principal | OnetripError] = [c.principal or OnetripError() for c in commands]
    for i, p in zip(asked, found, strict=True):
        out[i] = p
    return out


def _look_up_keys(db: Session, commands: Sequence[Command],
                  principals: Sequence[Principal | OnetripError], answers: list[Answer | None],
                  ) -> tuple[dict[int, idempotency.Wanted], dict[int, int]]:
    """Answer the commands whose idempotency key has a stored answer (replayed) or was used
    for another body (refused). Returns the fresh keys (command → key, to store its answer)
    and the repeats of a key earlier in the batch (command → that command)."""
    keyed = [i for i, c in enumerate(commands) if c.idempotency_key and answers[i] is None]
    wanted = []
    for i in keyed:
        c, p = commands[i], principals[i]
        assert isinstance(p, Principal) and c.idempotency_key is not None
        wanted.append(idempotency.Wanted(idempotency.principal_key(p), c.idempotency_key,
                                         idempotency.request_hash(c.path, c.body())))
    fresh: dict[int, idempotency.Wanted] = {}
    leader: dict[int, int] = {}
    first: dict[tuple[str, str], int] = {}  # (owner, key) → the command that has it
    for i, w, stored in zip(keyed, wanted, idempotency.stored_many(db, wanted), strict=True):
        if isinstance(stored, IdempotencyKeyReused):
            answers[i] = Answer.of(stored)
        elif stored is not None:
            answers[i] = Answer(stored.status_code, stored.body, replayed=True)
        elif (w.owner, w.key) in first:
            j = first[(w.owner, w.key)]
            if fresh[j].digest == w.digest:
                leader[i] = j
            else:
                answers[i] = Answer.of(IdempotencyKeyReused(detail={"key": w.key}))
        else:
            first[(w.owner, w.key)] = i
            fresh[i] = w
    return fresh, leader


_DRAW_LOCK = 7_302  # advisory-lock namespace: one booker of an opening's draw at a time
#: How many tickets of a draw one transaction books (lowest draws first).
DRAW_CHUNK = 200


def book_drawn(db: Session, opening: str, *, now: datetime) -> bool:
    """BK-8: book the API requests of an opening's draw that have no answer yet, lowest
    draw first, up to DRAW_CHUNK of them in one batch; each ticket keeps its answer.
    Whichever request gets the draw's lock does it; the others (False: not booked here)
    wait for their answers without holding a connection."""
    if db.get_bind().dialect.name == "postgresql" and not db.execute(
            text("SELECT pg_try_advisory_xact_lock(:ns, hashtext(:opening))"),
            {"ns": _DRAW_LOCK, "opening": opening}).scalar():
        return False
    tickets = list(db.scalars(select(OpeningTicket).where(
        OpeningTicket.opening == opening, OpeningTicket.command.is_not(None),
        OpeningTicket.status_code.is_(None)).order_by(OpeningTicket.draw).limit(DRAW_CHUNK)))
    readable: list[tuple[OpeningTicket, Command]] = []
    for ticket in tickets:
        try:
            readable.append((ticket, Command.from_json(ticket.command or {}, now=now)))
        except (KeyError, TypeError, ValueError):  # kept by another version of OneTrip
            log.exception("opening ticket %s cannot be read; answered as failed", ticket.id)
            _keep(ticket, INTERNAL)
    answers = run_batch(db, [c for _t, c in readable], now=now) if readable else []
    for (ticket, _c), answer in zip(readable, answers, strict=True):
        _keep(ticket, answer)
    db.flush()
    return bool(tickets)


def _keep(ticket: OpeningTicket, answer: Answer) -> None:
    ticket.status_code = answer.status_code
    ticket.answer = {"body": answer.body, "replayed": answer.replayed}


def limited(db: Session, commands: Sequence[Command], *, now: datetime) -> list[Answer | None]:
    """BK-8: count every command's attempts per account and per address in this minute;
    the ones past a limit are answered here, before any booking work."""
    under = fairness.counting_keys(db, {k for c in commands for k, _ in c.rate_keys})
    total = Counter(under[k] for c in commands for k, _ in c.rate_keys)
    counts = fairness.count_attempts(db, total, now)
    seen: Counter[str] = Counter()
    out: list[Answer | None] = []
    for c in commands:
        refusal = None
        for key, limit in c.rate_keys:
            seen[under[key]] += 1
            if counts[under[key]] - total[under[key]] + seen[under[key]] > limit:
                refusal = refusal or Answer.of(fairness.TooManyRequests(
                    detail={"limit_per_minute": limit}))
        out.append(refusal)
    return out


Sessions = Callable[[], Session]


def execute(commands: Sequence[Command], *, sessions: Sessions | None = None) -> list[Answer]:
    """Run a batch in transactions of its own (from ``sessions``, by default the app's
    database): the rate count, then the bookings; retried after a deadlock, split into
    single commands after an unexpected error."""
    open_session = sessions or (lambda: new_session(write=True))
    counted = False
    try:
        now = max(c.now for c in commands)
        answers = _with_retries(open_session, lambda db: limited(db, commands, now=now)) \
            if any(c.rate_keys for c in commands) else [None] * len(commands)
        counted = True
        todo = [i for i, a in enumerate(answers) if a is None]
        if todo:
            booked = _with_retries(open_session, lambda db: run_batch(
                db, [commands[i] for i in todo], now=now))
            for i, a in zip(todo, booked, strict=True):
                answers[i] = a
        return [a if a is not None else INTERNAL for a in answers]
    except Exception:
        if len(commands) == 1:
            log.exception("booking command failed")
            return [INTERNAL]
        log.exception("booking batch of %d failed; running its commands one by one",
                      len(commands))
        # Their attempts were counted already (that count committed on its own).
        return [execute([dataclasses.replace(c, rate_keys=()) if counted else c],
                        sessions=sessions)[0] for c in commands]


def _with_retries(open_session: Sessions, work: Callable[[Session], Any]) -> Any:
    for attempt in range(_ATTEMPTS):
        with writer_turn(True):
            db = open_session()
            try:
                result = work(db)
                db.commit()
                return result
            except DBAPIError as exc:
                db.rollback()
                state = getattr(exc.orig, "sqlstate", None)
                if state not in _RETRY_STATES or attempt == _ATTEMPTS - 1:
                    raise
                log.warning("booking batch retried after %s", state)
            except KeyStoredMeanwhile:
                db.rollback()
                if attempt == _ATTEMPTS - 1:
                    raise
                log.info("booking batch run again: a key was answered by another process")
            except BaseException:
                db.rollback()
                raise
            finally:
                db.close()
    raise AssertionError("unreachable")


class GroupCommitter:
    """The process's booking thread: ``submit`` a command, get its answer after its commit.

    One thread a process: a second one, committing beside it, measured slower on two cores
    (smaller batches, and the two contend for the interpreter).
    """

    def __init__(self, *, max_batch: int = 200, linger: float | None = None,
                 sessions: Sessions | None = None) -> None:
        self.max_batch = max_batch
        #: Seconds a batch may wait for the requests it expects (see the module's doc).
        self.linger = get_settings().booking_linger_ms / 1000 if linger is None else linger
        self.sessions = sessions
        #: Set by a submitter once ``_wanted`` requests wait (a lingering batch's wake-up).
        self._enough = threading.Event()
        self._wanted = sys.maxsize
        self._queue: queue.SimpleQueue[tuple[Command, Future[Answer]] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="onetrip-group-commit",
                                        daemon=True)
        self._thread.start()

    def submit(self, command: Command) -> Answer:
        """Queue a command and wait for its answer (from any thread)."""
        return self.submit_future(command).result()

    async def submit_async(self, command: Command) -> Answer:
        """Queue a command and await its answer without holding a thread."""
        return await asyncio.wrap_future(self.submit_future(command))

    def submit_future(self, command: Command) -> Future[Answer]:
        future: Future[Answer] = Future()
        self._queue.put((command, future))
        if self._queue.qsize() >= self._wanted:
            self._enough.set()
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._enough.set()
        self._thread.join(timeout=10)

    def _take(self, expected: int) -> list[tuple[Command, Future[Answer]]] | None:
        """The next batch: the first request to come and every one queued behind it,
        after waiting up to the linger while fewer than ``expected`` have come. None once
        the committer is closed."""
        item = self._queue.get()
        if item is None:
            return None
        batch = [item]
        if self.linger > 0 and self._queue.qsize() < expected - 1:
            # One sleep, woken by the submitter that makes it enough: not a wake-up (and a
            # turn of the interpreter lock taken from the web server) for every arrival.
            self._enough.clear()
            self._wanted = expected - 1
            if self._queue.qsize() < self._wanted:
                self._enough.wait(self.linger)
            self._wanted = sys.maxsize
        while len(batch) < self.max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)
                break
            batch.append(more)
        return batch

    def _loop(self) -> None:
        expected = 1
        while True:
            batch = self._take(expected)
            if batch is None:
                return
            # A request whose caller has gone (its future cancelled) is not booked; once
            # taken, a request can no longer be cancelled and always gets its answer.
            batch = [(c, f) for c, f in batch if f.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                answers = execute([c for c, _f in batch], sessions=self.sessions)
            except BaseException:  # execute answers its own failures; the thread must live
                log.exception("booking batch of %d could not be answered", len(batch))
                answers = [INTERNAL] * len(batch)
            for (_c, future), answer in zip(batch, answers, strict=True):
                future.set_result(answer)
            expected = min(self.max_batch, len(batch) + self._queue.qsize())


_committer: GroupCommitter | None = None
_lock = threading.Lock()

#: How the API hands a command over and awaits its answer (tests answer in their own
#: transaction instead).
Submit = Callable[[Command], Awaitable[Answer]]


def committer() -> GroupCommitter:
    """This process's group committer (started on first use)."""
    global _committer
    with _lock:
        if _committer is None:
            _committer = GroupCommitter()
        return _committer


async def get_committer() -> Submit:
    """The request dependency: this process's group committer."""
    return committer().submit_async
