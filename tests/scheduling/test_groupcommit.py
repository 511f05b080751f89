"""The group committer: many booking requests to one transaction, each answered after its
commit, none undone by another's failure (BK-3, BK-8). Against a committed database."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from onetrip.db import sessions_for, utcnow
from onetrip.identity import audit
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.notify.models import Notification
from onetrip.org.models import Hospital
from onetrip.scheduling import engine as booking_engine
from onetrip.scheduling import groupcommit, idempotency
from onetrip.scheduling.errors import IdempotencyKeyReused
from onetrip.scheduling.groupcommit import Command, GroupCommitter
from onetrip.scheduling.models import Appointment, IdempotencyRecord, RateCounter, Slot
from onetrip.scheduling.rules import Channel
from tests import racekit

pytestmark = pytest.mark.slow


@pytest.fixture
def seeded(race_engine: Engine) -> Iterator[tuple[racekit.Seed, Principal]]:
    seed = racekit.seed(race_engine, patients=40, capacity=30)
    with Session(race_engine) as db:
        hospital_id = db.scalar(select(Hospital.id).where(Hospital.code == seed.hospital_code))
    yield seed, Principal(role=Role.window, hospital_id=hospital_id, label="window 1")


def command(seed: racekit.Seed, clerk: Principal, patient: int, *, key: str | None = None,
            rate_keys: tuple[tuple[str, int], ...] = ()) -> Command:
    return Command(patient_id=patient, channel=Channel.window, now=utcnow(),
                   schedule_id=seed.schedule_ids[0], principal=clerk, idempotency_key=key,
                   rate_keys=rate_keys)


def test_concurrent_requests_share_transactions_and_each_gets_its_own_answer(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal]) -> None:
    seed, clerk = seeded
    committer = GroupCommitter(sessions=sessions_for(race_engine, write=True))
    answers: dict[int, groupcommit.Answer] = {}
    barrier = threading.Barrier(len(seed.patient_ids))

    def book(patient: int) -> None:
        barrier.wait()
        answers[patient] = committer.submit(command(seed, clerk, patient))

    threads = [threading.Thread(target=book, args=(p,)) for p in seed.patient_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committer.close()
    codes = Counter(a.status_code for a in answers.values())
    assert codes == {201: 30, 409: 10}, codes
    assert {a.body["code"] for a in answers.values() if a.status_code == 409} == {
        "schedule_full"}
    with Session(race_engine) as db:
        booked = db.execute(select(Appointment.id, Appointment.patient_id,
                                   Appointment.created_at)).all()
        # Each answer names its own appointment, and a batch shares one clock reading: 30
        # bookings in fewer transactions than bookings.
        assert sorted(a.body["id"] for a in answers.values() if a.ok) == sorted(
            b.id for b in booked)
        assert {b.patient_id for b in booked} == {
            p for p, a in answers.items() if a.ok}
        assert len({b.created_at for b in booked}) < len(booked)
        confirmations = db.scalar(select(func.count()).select_from(Notification).where(
            Notification.template == "booking_confirmed"))
        assert confirmations == 30
        assert audit.verify_chain(db).ok


def test_under_load_a_batch_waits_briefly_for_the_requests_it_just_answered(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Each client sends again as soon as it has its answer, as a server's connections do in
    # a rush. Taking only what has queued, the clients split into groups that commit in
    # turn; with the linger, every batch after the first holds them all.
    seed, clerk = seeded
    sizes: list[int] = []
    real = groupcommit.execute
    clients, rounds = 6, 5
    # The first batch answers once every client has sent: a client thread that starts late
    # on a busy machine would otherwise join the rush a batch after the others.
    lock, sent, all_sent = threading.Lock(), [0], threading.Event()

    def recording(commands: list[Command], **kw: object) -> list[groupcommit.Answer]:
        all_sent.wait(60)
        sizes.append(len(commands))
        return real(commands, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(groupcommit, "execute", recording)
    committer = GroupCommitter(sessions=sessions_for(race_engine, write=True), linger=2.0)
    answers: list[groupcommit.Answer] = []

    def client(patient: int) -> None:
        for _ in range(rounds):
            future = committer.submit_future(command(seed, clerk, patient))
            with lock:  # no client sends again before the first batch is answered
                sent[0] += 1
                if sent[0] == clients:
                    all_sent.set()
            answers.append(future.result(timeout=60))

    threads = [threading.Thread(target=client, args=(p,))
               for p in seed.patient_ids[:clients]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committer.close()
    assert sum(sizes) == clients * rounds
    assert sizes[1:-1] == [clients] * (len(sizes) - 2), sizes
    # Each patient booked once; their later requests were refused by the limits.
    assert Counter(a.status_code for a in answers) == {201: clients,
                                                       409: clients * (rounds - 1)}


def test_a_request_that_comes_alone_is_not_held_for_the_linger(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal]) -> None:
    seed, clerk = seeded
    committer = GroupCommitter(sessions=sessions_for(race_engine, write=True), linger=600.0)
    for patient in seed.patient_ids[:2]:
        answer = committer.submit_future(command(seed, clerk, patient)).result(timeout=60)
        assert answer.status_code == 201
    committer.close()


def test_the_same_key_twice_in_one_batch_books_once_and_answers_alike(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal]) -> None:
    seed, clerk = seeded
    twice = command(seed, clerk, seed.patient_ids[0], key="desk-1")
    first, second = groupcommit.execute([twice, twice],
                                        sessions=sessions_for(race_engine, write=True))
    assert first.status_code == second.status_code == 201
    assert first.body == second.body and second.replayed and not first.replayed
    other_body = command(seed, clerk, seed.patient_ids[1], key="desk-1")
    later = groupcommit.execute([twice, other_body],
                                sessions=sessions_for(race_engine, write=True))
    assert later[0].replayed and later[0].body == first.body
    assert later[1].status_code == 422 and later[1].body["code"] == "idempotency_key_reused"
    with Session(race_engine) as db:
        assert db.scalar(select(func.count()).select_from(Appointment)) == 1
        record = db.scalars(select(IdempotencyRecord)).one()
        assert (record.status_code, record.body) == (201, first.body)


def test_a_batch_over_several_sessions_gets_each_its_earliest_slots(
        race_engine: Engine) -> None:
    # Five sessions in one batch (on SQLite the claim statement is built for eight, its
    # spare places picking nothing): each request gets the earliest free slots of its own
    # session, and no other session gives up a slot.
    seed = racekit.seed(race_engine, patients=10, schedules=6, capacity=4)
    with Session(race_engine) as db:
        hospital_id = db.scalar(select(Hospital.id).where(Hospital.code == seed.hospital_code))
    clerk = Principal(role=Role.window, hospital_id=hospital_id, label="window 1")
    asked = [(p, seed.schedule_ids[i // 2]) for i, p in enumerate(seed.patient_ids)]
    answers = groupcommit.execute(
        [Command(patient_id=p, channel=Channel.window, now=utcnow(), schedule_id=sid,
                 principal=clerk) for p, sid in asked],
        sessions=sessions_for(race_engine, write=True))
    assert [a.status_code for a in answers] == [201] * 10
    with Session(race_engine) as db:
        for sid in seed.schedule_ids:
            slots = db.scalars(select(Slot).where(Slot.schedule_id == sid)
                               .order_by(Slot.start_at)).all()
            taken = [s.status for s in slots]
            expected = ["booked"] * 2 + ["free"] * 2 if sid != seed.schedule_ids[5] \
                else ["free"] * 4
            assert taken == expected, (sid, taken)
        assert {a.body["schedule_id"] for a in answers} == set(seed.schedule_ids[:5])
        assert all(a.body["schedule_id"] == sid for a, (_p, sid) in zip(answers, asked,
                                                                         strict=True))


def test_an_unexpected_error_fails_only_its_own_command(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal],
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed, clerk = seeded
    poisoned = seed.patient_ids[1]
    real = booking_engine.book_many

    def failing(db: Session, requests: list[booking_engine.BookingRequest], *,
                now: datetime) -> list[booking_engine.Outcome]:
        if any(r.patient_id == poisoned for r in requests):
            raise RuntimeError("a fault of this one request")
        return real(db, requests, now=now)

    monkeypatch.setattr(booking_engine, "book_many", failing)
    answers = groupcommit.execute(
        [command(seed, clerk, p) for p in seed.patient_ids[:3]],
        sessions=sessions_for(race_engine, write=True))
    assert [a.status_code for a in answers] == [201, 500, 201]
    assert answers[1].body["code"] == "internal_error"
    with Session(race_engine) as db:
        assert sorted(db.scalars(select(Appointment.patient_id))) == sorted(
            [seed.patient_ids[0], seed.patient_ids[2]])


def test_attempts_past_the_rate_limit_are_refused_before_booking(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal]) -> None:
    seed, clerk = seeded
    limit = (("account:desk", 2),)
    answers = groupcommit.execute(
        [command(seed, clerk, p, rate_keys=limit) for p in seed.patient_ids[:3]],
        sessions=sessions_for(race_engine, write=True))
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].body["code"] == "rate_limited"
    # Next minute, a fresh window.
    later = Command(patient_id=seed.patient_ids[3], channel=Channel.window,
                    now=utcnow() + timedelta(minutes=1), schedule_id=seed.schedule_ids[0],
                    principal=clerk, rate_keys=limit)
    assert groupcommit.execute([later], sessions=sessions_for(race_engine, write=True))[
        0].status_code == 201


def test_a_request_given_up_before_its_turn_is_not_booked_and_the_thread_lives_on(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal],
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed, clerk = seeded
    busy, release = threading.Event(), threading.Event()
    real = groupcommit.execute

    def slow(commands: list[Command], **kw: object) -> list[groupcommit.Answer]:
        busy.set()
        release.wait(10)
        return real(commands, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(groupcommit, "execute", slow)
    committer = GroupCommitter(sessions=sessions_for(race_engine, write=True))
    first = committer.submit_future(command(seed, clerk, seed.patient_ids[0]))
    assert busy.wait(10)
    gone = committer.submit_future(command(seed, clerk, seed.patient_ids[1]))
    assert gone.cancel()  # its caller went away while the first batch was committing
    release.set()
    assert first.result(10).status_code == 201
    assert committer.submit(command(seed, clerk, seed.patient_ids[2])).status_code == 201
    committer.close()
    with Session(race_engine) as db:
        assert sorted(db.scalars(select(Appointment.patient_id))) == sorted(
            [seed.patient_ids[0], seed.patient_ids[2]])


def test_after_an_unexpected_error_attempts_are_not_counted_twice(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal],
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed, clerk = seeded
    real = booking_engine.book_many

    def failing_once(db: Session, requests: list[booking_engine.BookingRequest], *,
                     now: datetime) -> list[booking_engine.Outcome]:
        if len(requests) > 1:
            raise RuntimeError("the batch fails; one by one it works")
        return real(db, requests, now=now)

    monkeypatch.setattr(booking_engine, "book_many", failing_once)
    limit = (("account:desk", 10),)
    answers = groupcommit.execute(
        [command(seed, clerk, p, rate_keys=limit) for p in seed.patient_ids[:3]],
        sessions=sessions_for(race_engine, write=True))
    assert [a.status_code for a in answers] == [201, 201, 201]
    with Session(race_engine) as db:
        assert db.scalar(select(RateCounter.count).where(RateCounter.key == "account:desk")) == 3



def test_a_key_sent_to_two_processes_at_once_books_once_and_both_get_its_answer(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A client retries while its first attempt is still in flight, and the retry reaches
    # the other server process: both batches come to the key at the same moment.
    seed, clerk = seeded
    both_here = threading.Barrier(2, timeout=1)
    real = idempotency.stored_many

    def together(db: Session, wanted: list[idempotency.Wanted],
                 ) -> list[idempotency.Stored | IdempotencyKeyReused | None]:
        # SQLite: one writer at a time, so the second only starts after the first
        with contextlib.suppress(threading.BrokenBarrierError):
            both_here.wait()
        return real(db, wanted)

    monkeypatch.setattr(idempotency, "stored_many", together)
    retried = command(seed, clerk, seed.patient_ids[0], key="retry-1")
    answers: list[groupcommit.Answer] = []

    def send() -> None:
        answers.extend(groupcommit.execute([retried],
                                           sessions=sessions_for(race_engine, write=True)))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].body == answers[1].body
    assert sorted(a.replayed for a in answers) == [False, True]
    with Session(race_engine) as db:
        assert db.scalar(select(func.count()).select_from(Appointment)) == 1
        assert db.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_a_key_claimed_meanwhile_by_a_single_request_undoes_the_batch_and_runs_it_again(
        race_engine: Engine, seeded: tuple[racekit.Seed, Principal],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A single-request endpoint (``idempotency.claim``) takes no key lock: the unique index
    # catches it when the batch stores its answers, and the batch runs again. (SQLite has
    # one writer at a time: nothing can commit in the middle of a batch.)
    if race_engine.dialect.name != "postgresql":
        pytest.skip("needs a second writer in the middle of a transaction (PostgreSQL)")
    seed, clerk = seeded
    real = booking_engine.book_many
    sessions = sessions_for(race_engine, write=True)
    runs = []

    def claimed_elsewhere(db: Session, requests: list[booking_engine.BookingRequest], *,
                          now: datetime) -> list[booking_engine.Outcome]:
        runs.append(len(requests))
        if len(runs) == 1:
            with sessions() as other:
                record = idempotency.claim(other, owner=idempotency.principal_key(clerk),
                                           key="desk-9", digest="another body", now=now)
                idempotency.remember(other, record, 200, {"cancelled": True})
                other.commit()
        return real(db, requests, now=now)

    monkeypatch.setattr(booking_engine, "book_many", claimed_elsewhere)
    mine = command(seed, clerk, seed.patient_ids[0], key="desk-9")
    other = command(seed, clerk, seed.patient_ids[1])
    answers = groupcommit.execute([mine, other], sessions=sessions)
    assert answers[0].status_code == 422
    assert answers[0].body["code"] == "idempotency_key_reused"
    assert answers[1].status_code == 201
    assert runs == [2, 1]  # the second run books only the command without a stored key
    with Session(race_engine) as db:
        assert list(db.scalars(select(Appointment.patient_id))) == [seed.patient_ids[1]]


def test_two_sign_ins_of_one_account_in_one_batch_share_one_allowance(db: Session) -> None:
    """BK-8: the attempts of one account count together even when two of its sessions
    send in the same batch: the fourth of four is refused, and only it."""
    from onetrip.identity import auth as identity_auth
    from onetrip.identity.models import Account
    from onetrip.scheduling import fairness
    from tests.factories import make_account

    account = db.get_one(Account, make_account(db).account_id)
    first, second = (identity_auth.start_session(db, account=account) for _ in range(2))
    now = utcnow()

    def attempt(secret: str) -> Command:
        return Command(patient_id=1, channel=Channel.app, now=now, schedule_id=1,
                       secret=secret, rate_keys=((fairness.account_key(secret), 3),))

    answers = groupcommit.limited(db, [attempt(first), attempt(first), attempt(second),
                                       attempt(second)], now=now)
    assert [a.status_code if a else None for a in answers] == [None, None, None, 429]
