"""Booking benchmark: throughput, overbooking and fairness against real databases.

``python -m bench.booking [--quick] [--db sqlite|postgres] [--json]`` prints one JSON object:

* ``hot_slot_per_s`` / ``spread_per_s``: engine-level bookings a second by 64 concurrent
  clients in 2 processes (as many as the HTTP workers), each process booking through its
  group committer as the API does (``scheduling.groupcommit``: the bookings that arrive
  while a batch commits go into the next transaction; each client is answered after its
  commit), with an Idempotency-Key each; on one big schedule and spread over 200 schedules;
* ``overbooked``: slots or schedules holding more claims than they have, after all runs;
* ``messages_per_booking``: the messages (confirmation, reminders) queued in the outbox per
  booked appointment, written in the booking's transaction: part of what a booking costs;
* ``naive_overbooked``: the same harness running a naive read-check-write booking (read a
  free slot, then write it): it must overbook, or the harness could not see overbooking;
* ``serializable_per_s``: the read-check-write booking in SERIALIZABLE transactions with
  retries (on SQLite: transactions that take the write lock first), on the hot schedule;
* ``hot_cpu_us_per_booking`` / ``spread_cpu_us_per_booking`` /
  ``serializable_cpu_us_per_booking``: processor time per booking of the booking processes
  and (PostgreSQL) the database server's work for the benchmark's database; the
  ``*_server_cpu_us_per_booking`` figures are the server's part alone. What one booking
  costs the machine's cores: ``spread_cores_bound_per_s`` divides the cores by it, the rate
  the machine could give with every core booking and nothing else;
* ``http_per_s`` / ``http_p99_ms``: bookings over HTTP against 2 uvicorn workers, the load
  from wrk (``apt-get install wrk``) on 64 connections;
* ``fast_client_excess_pts``: in the fair opening window, the share of slots won by clients
  ten times faster than the rest, above their share of clients (percentage points).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from sqlalchemy import Engine, func, insert, make_url, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import racekit
from tests.factories import make_department, make_hospital, make_practitioner

from bench._serverstat import server_seconds_since, server_ticks
from bench.report import write_section
from onetrip.config import get_settings
from onetrip.db import make_engine, utcnow
from onetrip.identity import service as identity_service
from onetrip.identity.models import Patient
from onetrip.identity.rules import Role
from onetrip.notify.models import Notification
from onetrip.org.models import Department, Hospital
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.models import Appointment, Schedule
from onetrip.scheduling.rules import SessionOfDay

CLIENTS = 64
PROCESSES = 2


@dataclass
class World:
    url: str
    hospital_id: int
    hot: int
    spread: list[int]
    http: list[int]
    naive: int
    patients: list[int]
    token: str
    day: date


def build(engine: Engine, *, hot_capacity: int, spread_capacity: int,
          patients: int, http_capacity: int = 100) -> World:
    """One hospital, every slot online, the sessions three days ahead, many patients."""
    day = utcnow().astimezone(get_settings().tz).date() + timedelta(days=3)
    created = utcnow() - timedelta(days=30)
    with Session(engine) as db:
        h = make_hospital(db, level="tertiary", clinic_weekdays=[1, 2, 3, 4, 5, 6, 7])
        scheduling_service.set_policy(db, hospital=h, pools={
            "online_share": 1.0, "priority_share": 0, "clinic_share": 0,
            "max_active_appointments": 50, "fair_window_seconds": 0})
        depts = [make_department(db, h) for _ in range(20)]

        def session(dept: Department, capacity: int) -> int:
            return scheduling_service.create_schedule(
                db, hospital=h, department=dept, day=day, session=SessionOfDay.am,
                practitioner=make_practitioner(db, h, dept), capacity=capacity,
                slot_minutes=1, now=created).id

        hot = session(depts[0], hot_capacity)
        spread = [session(depts[i % 20], spread_capacity) for i in range(200)]
        http = [session(depts[i % 20], http_capacity) for i in range(100)]
        naive = session(depts[0], 200)
        now = utcnow()
        db.execute(insert(Patient), [
            {"name": "压测患者", "gender": "", "birth_date": date(1980, 1, 1),
             "phone_cipher": "-", "phone_index": f"bench{i}", "status": "active",
             "verification": "none", "created_at": now, "updated_at": now}
            for i in range(patients)])
        ids = list(db.scalars(select(Patient.id).order_by(Patient.id)))
        _row, token = identity_service.create_token(db, role=Role.window, hospital_code=h.code)
        db.commit()
        return World(str(engine.url.render_as_string(hide_password=False)), h.id, hot, spread,
                     http, naive, ids, token, day)


def messages_per_booking(engine: Engine) -> float:
    """Outbox rows per booked appointment (every phase's bookings)."""
    with Session(engine) as db:
        booked = db.scalar(select(func.count()).select_from(Appointment).where(
            Appointment.status == "booked")) or 0
        messages = db.scalar(select(func.count()).select_from(Notification).where(
            Notification.appointment_id.is_not(None))) or 0
    return round(messages / booked, 2) if booked else 0.0


def overbooked(engine: Engine) -> int:
    """Extra claims: slots with more than one active claim, schedules over capacity."""
    active = ("held", "booked", "arrived")
    with Session(engine) as db:
        per_slot = db.execute(select(Appointment.slot_id, func.count()).where(
            Appointment.status.in_(active)).group_by(Appointment.slot_id)
            .having(func.count() > 1)).all()
        per_schedule = db.execute(
            select(Schedule.id, Schedule.capacity, func.count(Appointment.id))
            .join(Appointment, Appointment.schedule_id == Schedule.id)
            .where(Appointment.status.in_(active)).group_by(Schedule.id, Schedule.capacity)
        ).all()
    return sum(c - 1 for _s, c in per_slot) + sum(max(0, n - cap) for _i, cap, n in per_schedule)


# --- engine-level workers (run in child processes) -----------------------------------------


def _worker(url: str, mode: str, hospital_id: int, schedules: list[int],
            chunks: list[list[int]], start_at: float, seconds: float,
            out: Any, counted: Any) -> None:
    os.environ["ONETRIP_DATABASE_URL"] = url
    from onetrip.identity.service import Principal
    from onetrip.scheduling.groupcommit import Command, GroupCommitter
    from onetrip.scheduling.rules import Channel

    engine = make_engine(url, pool_size=len(chunks))
    clerk = Principal(role=Role.window, hospital_id=hospital_id, label="bench")
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    committer = GroupCommitter() if mode == "ours" else None

    def ours(patient: int, schedule: int) -> None:
        assert committer is not None
        answer = committer.submit(Command(
            patient_id=patient, channel=Channel.window, now=utcnow(), schedule_id=schedule,
            principal=clerk, idempotency_key=f"bench-{patient}"))
        if not answer.ok:
            raise LookupError(answer.body["code"])

    def naive(patient: int, schedule: int) -> None:
        with engine.connect() as conn:
            slot = conn.execute(text(
                "SELECT id FROM slot WHERE schedule_id = :s AND status = 'free' "
                "ORDER BY start_at LIMIT 1"), {"s": schedule}).scalar()
            conn.commit()
            if slot is None:
                raise LookupError("full")
            conn.execute(text("UPDATE slot SET status = 'booked' WHERE id = :i"), {"i": slot})
            conn.execute(text("INSERT INTO bench_naive (slot_id, patient_id) VALUES (:i, :p)"),
                         {"i": slot, "p": patient})
            conn.commit()

    def serializable(patient: int, schedule: int) -> None:
        options = ({"isolation_level": "SERIALIZABLE"} if engine.dialect.name == "postgresql"
                   else {"sqlite_begin": "IMMEDIATE"})
        for _attempt in range(50):
            try:
                with engine.connect().execution_options(**options) as conn:
                    slot = conn.execute(text(
                        "SELECT id FROM slot WHERE schedule_id = :s AND status = 'free' "
                        "ORDER BY start_at LIMIT 1"), {"s": schedule}).scalar()
                    if slot is None:
                        raise LookupError("full")
                    conn.execute(text("UPDATE slot SET status = 'booked' WHERE id = :i"),
                                 {"i": slot})
                    conn.execute(text(
                        "INSERT INTO bench_naive (slot_id, patient_id) VALUES (:i, :p)"),
                        {"i": slot, "p": patient})
                    conn.commit()
                    return
            except Exception as exc:
                if "could not serialize" not in str(exc) and "locked" not in str(exc):
                    raise
                with lock:
                    counts["retry"] += 1
        raise RuntimeError("gave up after 50 retries")

    fn = {"ours": ours, "naive": naive, "serializable": serializable}[mode]

    def client(patients: list[int]) -> None:
        rng = random.Random(patients[0] if patients else 0)
        deadline = start_at + seconds
        for p in patients:
            if time.time() >= deadline:
                return
            try:
                fn(p, rng.choice(schedules))
                outcome = "ok"
            except LookupError as exc:
                outcome = str(exc)
            except Exception as exc:
                outcome = type(exc).__name__
            with lock:
                counts[outcome] += 1

    time.sleep(max(0.0, start_at - time.time()))
    cpu = time.process_time()
    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((dict(counts), time.time(), time.process_time() - cpu))
    counted.wait(60)  # keep the connections (their server processes) until CPU is counted


class Phase(NamedTuple):
    """What one engine-level phase measured: bookings a second, the outcomes, and the
    processor time per booking made (µs) of the booking processes and of the database
    server (PostgreSQL; SQLite works inside the booking processes)."""

    rate: float
    counts: Counter[str]
    client_us: float
    server_us: float

    @property
    def cpu_us(self) -> float:
        return self.client_us + self.server_us


def run_engine(world: World, mode: str, schedules: list[int], patients: list[int],
               seconds: float) -> Phase:
    """Bookings a second by CLIENTS threads over PROCESSES processes, with their outcomes
    and processor time."""
    ctx = mp.get_context("spawn")
    out, counted = ctx.Queue(), ctx.Event()
    per_client = [patients[i::CLIENTS] for i in range(CLIENTS)]
    start_at = time.time() + 4
    procs = [ctx.Process(target=_worker, args=(
        world.url, mode, world.hospital_id, schedules,
        per_client[i::PROCESSES], start_at, seconds, out, counted))
        for i in range(PROCESSES)]
    for p in procs:
        p.start()
    totals: Counter[str] = Counter()
    ended = start_at
    database = make_url(world.url).database or ""
    server = server_ticks(database)
    client = 0.0
    for _ in procs:
        counts, finished, used = out.get()
        totals.update(counts)
        ended = max(ended, finished)
        client += used
    server_s = server_seconds_since(server, database)
    counted.set()
    for p in procs:
        p.join()
    made = max(1, totals["ok"])
    return Phase(totals["ok"] / max(1e-9, ended - start_at), totals, 1e6 * client / made,
                 1e6 * server_s / made)


# --- HTTP ---------------------------------------------------------------------------------


WRK_SCRIPT = Path(__file__).with_name("booking_http.lua")


def run_http(world: World, engine: Engine, patients: list[int], schedules: list[int],
             seconds: float) -> dict[str, Any]:
    """Bookings a second over HTTP, and their latency, against 2 uvicorn workers: wrk (a C
    load generator, from Debian's package) keeps CLIENTS connections busy, each request
    for another patient with its own Idempotency-Key. A Python client on the same two
    cores would measure itself more than the server."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench.booking needs wrk for its HTTP figures: apt-get install wrk")
    if patients != list(range(patients[0], patients[0] + len(patients))):
        raise RuntimeError("the HTTP patients must have consecutive ids")
    def load(base: str, seconds: float, first: int, count: int) -> dict[str, Any]:
        out = subprocess.run(
            [wrk, "-t2", f"-c{CLIENTS}", f"-d{seconds:.0f}s", "--latency", "-s",
             str(WRK_SCRIPT), base, "--", "2", str(first), str(count),
             ",".join(map(str, schedules)), world.token, str(first)],
            capture_output=True, text=True, check=True)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    # The first seconds warm a fresh server (connections, compiled statements) with
    # patients of their own, and give the empty tables their first rows and statistics (as
    # autovacuum does on a server taking bookings); the figures are of the steady state.
    warm = len(patients) // 5
    with racekit.server(world.url, workers=2) as (base, _proc):
        load(base, 2, patients[0], warm)
        settle(engine)
        figures = load(base, seconds, patients[warm], len(patients) - warm)
    codes = {int(k): v for k, v in figures["codes"].items()}
    return {"http_per_s": round(codes.get(201, 0) / (figures["duration_us"] / 1e6), 1),
            "http_p99_ms": round(figures["p99_us"] / 1000, 1),
            "http_p50_ms": round(figures["p50_us"] / 1000, 1),
            "http_codes": codes}


# --- fairness -----------------------------------------------------------------------------


def run_fairness(world: World, engine: Engine, patients: list[int], *, rounds: int,
                 clients: int) -> tuple[float, float]:
    """Excess share, in points, of slots won by the fast fifth of the clients, and its
    standard error over the rounds (each round is one opening with a fresh draw)."""
    excess: list[float] = []
    fast_n = clients // 5
    capacity = int(clients * 0.3)
    pool = iter(patients)
    with racekit.server(world.url, workers=2) as (base, _proc):
        for _ in range(rounds):
            release = (utcnow() + timedelta(seconds=4)).replace(microsecond=0)
            with Session(engine) as db:
                h = db.get_one(Hospital, world.hospital_id)
                scheduling_service.set_policy(db, hospital=h, pools={
                    "online_share": 1.0, "priority_share": 0, "clinic_share": 0,
                    "online_release_days": 3, "referral_release_days": 3,
                    "referral_return_days": 1, "fair_window_seconds": 1.5,
                    "online_release_time":
                        release.astimezone(get_settings().tz).time().isoformat(),
                    "max_active_appointments": 50})
                dept = db.scalars(select(Department).where(
                    Department.hospital_id == h.id)).first()
                assert dept is not None
                sid = scheduling_service.create_schedule(
                    db, hospital=h, department=dept, day=world.day, session=SessionOfDay.pm,
                    capacity=capacity * 5 // 3 + 1, slot_minutes=1, now=utcnow()).id
                db.commit()
            patients = [next(pool) for _ in range(clients)]
            fast = set(patients[:fast_n])
            won: list[int] = []
            opens = release.timestamp()
            http = [httpx.Client(base_url=base, timeout=30, headers={
                "Authorization": f"Bearer {world.token}"}) for _ in patients]

            def fire(i: int, pid: int, at: float, http: list[httpx.Client] = http,
                     sid: int = sid, won: list[int] = won) -> None:
                try:
                    # Connected before the opening, as any app or bot is: the draw, not
                    # the TCP handshakes of 100 new connections at once, decides who wins.
                    http[i].get("/healthz")
                    time.sleep(max(0.0, at - time.time()))
                    r = http[i].post("/api/v1/appointments", json={
                        "schedule_id": sid, "patient_id": pid, "channel": "window"})
                except httpx.HTTPError:
                    return  # counts as not won
                if r.status_code == 201:
                    won.append(pid)

            rng = random.Random(len(excess))
            threads = [threading.Thread(target=fire, args=(
                i, pid, opens + (0.02 if pid in fast else rng.uniform(0.2, 1.2))))
                for i, pid in enumerate(patients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for c in http:
                c.close()
            if won:
                excess.append(100 * (sum(p in fast for p in won) / len(won) - fast_n / clients))
    if len(excess) < 2:
        return float("nan"), float("nan")
    se = statistics.stdev(excess) / len(excess) ** 0.5
    return round(statistics.mean(excess), 1), round(se, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    if args.db == "postgres":
        os.environ.setdefault("ONETRIP_TEST_DATABASE_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    else:
        os.environ.pop("ONETRIP_TEST_DATABASE_URL", None)
    seconds = 5.0 if args.quick else 12.0
    url, drop = racekit.fresh_database("bench")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_naive (slot_id INTEGER, patient_id INTEGER)"))
        # Enough patients and slots that the hot phase books to its end at the rates seen
        # here (about 4,000/s); the serializable baseline books far fewer.
        hot_n = 20000 if args.quick else 60000
        serial_n = 6000 if args.quick else 12000
        spread_cap = 100 if args.quick else 300
        # Enough patients that wrk never comes round to one again (a second booking of the
        # same patient is refused by the per-person limits) at the rates seen here.
        http_n = 12000 if args.quick else 40000
        rounds, fair_clients = (4, 60) if args.quick else (40, 100)
        sizes = {"hot": hot_n, "spread": 200 * spread_cap, "naive": 2000, "serial": serial_n,
                 "http": http_n, "fair": rounds * fair_clients}
        world = build(engine, hot_capacity=hot_n, spread_capacity=spread_cap,
                      http_capacity=http_n // 50,
                      patients=sum(sizes.values()))
        share: dict[str, list[int]] = {}
        start = 0
        for name, size in sizes.items():
            share[name] = world.patients[start:start + size]
            start += size
        # Each phase starts on a settled database (vacuumed, checkpointed): it measures the
        # booking path, not the clean-up after the tens of thousands of writes before it.
        settle(engine)
        http = run_http(world, engine, share["http"], world.http, seconds)
        settle(engine)
        hot = run_engine(world, "ours", [world.hot], share["hot"], seconds)
        settle(engine)
        spread = run_engine(world, "ours", world.spread, share["spread"], seconds)
        settle(engine)
        naive = run_engine(world, "naive", [world.naive], share["naive"], 3.0)
        with engine.connect() as conn:
            naive_over = conn.execute(text(
                "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT slot_id, COUNT(*) AS n "
                "FROM bench_naive GROUP BY slot_id HAVING COUNT(*) > 1) AS dup")).scalar()
            conn.execute(text("DELETE FROM bench_naive"))
            conn.commit()
        serial_schedule = big_schedule(engine, world, serial_n)
        settle(engine)
        serial = run_engine(world, "serializable", [serial_schedule], share["serial"],
                            seconds)
        cores = os.cpu_count() or 1
        results: dict[str, Any] = {
            "db": args.db,
            "overbooked": 0,
            "naive_overbooked": int(naive_over or 0),
            "hot_slot_per_s": round(hot.rate, 1),
            "spread_per_s": round(spread.rate, 1),
            "serializable_per_s": round(serial.rate, 1),
            "serializable_retries": serial.counts.get("retry", 0),
            "hot_outcomes": dict(hot.counts),
            # Where the cores go: processor time per booking made, of the booking processes
            # and the database server together, and of the server alone (PostgreSQL).
            "hot_cpu_us_per_booking": round(hot.cpu_us),
            "hot_server_cpu_us_per_booking": round(hot.server_us),
            "spread_cpu_us_per_booking": round(spread.cpu_us),
            "spread_server_cpu_us_per_booking": round(spread.server_us),
            # The rate the machine's cores would allow at that cost, every core busy with
            # nothing else: how far the spread phase is from what the hardware can give.
            "spread_cores_bound_per_s": round(cores * 1e6 / max(1.0, spread.cpu_us)),
            "serializable_cpu_us_per_booking": round(serial.cpu_us),
        }
        results.update(http)
        excess, excess_se = run_fairness(world, engine, share["fair"], rounds=rounds,
                                         clients=fair_clients)
        results["fast_client_excess_pts"] = excess
        results["fast_client_excess_se_pts"] = excess_se
        results["overbooked"] = overbooked(engine)
        results["messages_per_booking"] = messages_per_booking(engine)
        results["hot_vs_serializable"] = round(hot.rate / serial.rate, 2) \
            if serial.rate else None
        results["naive_per_s"] = round(naive.rate, 1)
    finally:
        engine.dispose()
        drop()
    print(json.dumps(results, ensure_ascii=False) if args.json
          else json.dumps(results, ensure_ascii=False, indent=2))
    record(results, quick=args.quick)
    return 0


def settle(engine: Engine) -> None:
    """Let the database catch up between phases: PostgreSQL vacuums and analyses the
    tables that hold rows, and checkpoints; SQLite folds its write-ahead log back into the
    file.

    An empty table is left alone (autovacuum would not touch it either): statistics saying
    "empty" make the server plan the foreign-key checks of inserts into the tables that
    refer to it as scans of the whole table, plans it keeps while a phase fills that table
    with thousands of rows."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            tables = conn.execute(text(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'"
            )).scalars().all()
            filled = [t for t in tables
                      if conn.execute(text(f"SELECT EXISTS (SELECT FROM {t})")).scalar()]
            if filled:
                conn.execute(text(f"VACUUM ANALYZE {', '.join(filled)}"))
            conn.execute(text("CHECKPOINT"))
        else:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def big_schedule(engine: Engine, world: World, capacity: int) -> int:
    """A fresh big schedule for the serializable baseline (it books outside our tables)."""
    with Session(engine) as db:
        h = db.get_one(Hospital, world.hospital_id)
        dept = make_department(db, h)
        sid = scheduling_service.create_schedule(
            db, hospital=h, department=dept, day=world.day, session=SessionOfDay.evening,
            capacity=capacity, slot_minutes=1, now=utcnow() - timedelta(days=30)).id
        db.commit()
        return sid


def record(r: dict[str, Any], *, quick: bool) -> None:
    rows = "\n".join(f"| {k} | {v} |" for k, v in r.items() if not isinstance(v, dict))
    write_section(f"booking on {r['db']} (bench/booking.py{' --quick' if quick else ''})", f"""
Engine-level: {CLIENTS} clients in {PROCESSES} processes on the same machine as the
database, each process booking through its group committer as the API does (one
transaction per batch of the bookings that arrived meanwhile, every client answered after
its commit), with an Idempotency-Key each. HTTP: 2 uvicorn workers, {CLIENTS} connections
from wrk. Targets (issue 4): 0 overbooked; PostgreSQL at least 1,500 hot-slot/s, 4x the
serializable baseline, 8,000/s spread; HTTP at least 800/s with p99 under 200 ms; SQLite at
least 5,000/s; fast clients within 2 points.

| figure | value |
|---|---|
{rows}
""")


if __name__ == "__main__":
    raise SystemExit(main())
