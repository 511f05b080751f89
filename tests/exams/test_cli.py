"""`onetrip exams ...`: the catalogue as a file the exam centre edits, rooms' calendars
(EX-3), the day's batch plan booked in one go (EX-2: one trip), the no-show sweep (EX-4)
and the paper slip of a day (RM-1). The commands commit: each test has a hospital of its
own, never the demo's."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from onetrip.cli import app
from onetrip.config import get_settings
from onetrip.db import session_scope, utcnow
from onetrip.exams import booking, resources, service
from onetrip.exams.catalogue import catalogue_as_data, default_catalogue_data, parse_catalogue
from onetrip.exams.models import ExamBooking, ExamOrder, ExamResource, ExamSlot
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.scheduling.penalties import PenaltyRecord
from tests.factories import make_hospital, make_patient, resident_id

TZ = get_settings().tz
PACKAGED = catalogue_as_data(parse_catalogue(default_catalogue_data()))
ECG = {"code": "EC1", "name": "心电图室", "building": "门诊楼", "room": "105",
       "exam_codes": ["ecg"], "slot_minutes": 10, "capacity": 2, "hours": [["08:00", "12:00"]]}


def _hospital(*rooms: dict[str, Any]) -> tuple[str, int]:
    """A hospital open every day, holidays too, with these rooms (none opened yet)."""
    with session_scope() as db:
        h = make_hospital(db, code=f"ex{uuid.uuid4().hex[:8]}",
                          clinic_weekdays=[1, 2, 3, 4, 5, 6, 7], holiday_clinics=True)
        for room in rooms:
            resources.add_resource(db, hospital_id=h.id, **room)
        return h.code, h.id


def _run(*args: str) -> list[str]:
    result = CliRunner().invoke(app, ["exams", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def _patient_with(hospital_id: int, *codes: str) -> int:
    """A new patient (unique document: the rows commit) with these exams ordered."""
    n = uuid.uuid4().int
    birth = date(1950, 1, 1) + timedelta(days=n % 15000)
    with session_scope() as db:
        p = make_patient(db, birth_date=birth,
                         document_number=resident_id(birth, seq=f"{n % 1000:03d}"))
        doctor = Principal(role=Role.doctor, hospital_id=hospital_id, label="tests")
        for code in codes:
            service.place_order(db, principal=doctor, hospital_id=hospital_id,
                                patient_id=p.id, exam_code=code, now=utcnow())
        return p.id


def test_catalogue_export_import_round_trip_and_the_rules_table(
        cli_engine: Engine, tmp_path: Path) -> None:
    code, _ = _hospital()
    out = tmp_path / "catalogue.json"
    rules = len(PACKAGED["order"]) + len(PACKAGED["not_same_day"])
    assert _run("catalogue-export", code, str(out)) == [
        f"{len(PACKAGED['exam'])} exams, {rules} rules -> {out}"]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data == PACKAGED  # a hospital that never edited it has the packaged one

    in_rules = {r[k] for kind in ("order", "not_same_day") for r in data[kind]
                for k in ("first", "second")}
    dropped = next(e["code"] for e in data["exam"] if e["code"] not in in_rules)
    data["exam"] = [e for e in data["exam"] if e["code"] != dropped]
    ecg = next(e for e in data["exam"] if e["code"] == "ecg")
    ecg["name"] = "十二导联心电图"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert _run("catalogue-import", code, str(edited)) == [
        f"imported {len(data['exam'])} exams, {rules} rules"]
    _run("catalogue-export", code, str(out))
    assert json.loads(out.read_text(encoding="utf-8")) == data

    table = "\n".join(_run("rules-table", code))
    assert "| 十二导联心电图 | `ecg` |" in table and f"`{dropped}`" not in table
    assert sum(line.startswith("| ") and "`" in line for line in table.splitlines()) == len(
        data["exam"])

    packaged = Path(str(files("onetrip.exams") / "data" / "catalogue.toml"))
    assert _run("catalogue-import", code, str(packaged)) == [
        f"imported {len(PACKAGED['exam'])} exams, {rules} rules"]


def test_a_catalogue_the_planner_cannot_use_is_refused_and_nothing_changes(
        cli_engine: Engine, tmp_path: Path) -> None:
    code, _ = _hospital()
    before = tmp_path / "before.json"
    _run("catalogue-export", code, str(before))
    data = json.loads(before.read_text(encoding="utf-8"))
    data["order"].append({"first": "ecg", "second": "pet_ct", "reason": "x", "source": "y"})
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(app, ["exams", "catalogue-import", code, str(broken)])
    assert result.exit_code == 1 and "未导入：" in result.output and "pet_ct" in result.output
    after = tmp_path / "after.json"
    _run("catalogue-export", code, str(after))
    assert json.loads(after.read_text(encoding="utf-8")) == json.loads(
        before.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("name", "content"), [
    ("broken.json", b'{"exam": ['), ("broken.toml", b"[[exam]\ncode = "),
    ("latin.json", b'{"exam": "\xe9"}'), ("deep.json", b"[" * 100_000 + b"]" * 100_000)])
def test_a_file_that_is_not_json_or_toml_is_refused_with_the_reason(
        cli_engine: Engine, tmp_path: Path, name: str, content: bytes) -> None:
    code, hospital_id = _hospital()
    with session_scope(write=False) as db:
        before = catalogue_as_data(service.catalogue(db, hospital_id))
    broken = tmp_path / name
    broken.write_bytes(content)
    result = CliRunner().invoke(app, ["exams", "catalogue-import", code, str(broken)])
    assert result.exit_code == 1 and "未导入：文件不是有效的" in result.output
    with session_scope(write=False) as db:
        assert catalogue_as_data(service.catalogue(db, hospital_id)) == before


def test_open_calendars_gives_each_active_room_its_days_once(cli_engine: Engine) -> None:
    nm = {**ECG, "code": "NM1", "name": "核医学科", "exam_codes": ["nm_thyroid"],
          "slot_minutes": 30, "capacity": 1, "hours": [["08:00", "10:00"]]}
    code, hospital_id = _hospital(ECG, nm, {**ECG, "code": "EC2"})
    with session_scope() as db:
        db.scalars(select(ExamResource).where(ExamResource.hospital_id == hospital_id,
                                              ExamResource.code == "EC2")).one().active = False
    prep = parse_catalogue(default_catalogue_data()).exams["nm_thyroid"].prep_days
    days = 3
    per_day = {"EC1": 4 * 60 // 10, "NM1": 2 * 60 // 30}
    expected = {"EC1": days, "NM1": days + prep}  # the scan's weeks without iodine come first
    total = sum(per_day[r] * expected[r] for r in per_day)
    assert _run("open-calendars", code, "--days", str(days)) == [f"{total} slots added"]
    assert _run("open-calendars", code, "--days", str(days)) == ["0 slots added"]
    with session_scope(write=False) as db:
        rows = db.execute(select(ExamResource.code, ExamSlot.day).join(ExamSlot.resource)
                          .where(ExamResource.hospital_id == hospital_id)).all()
    for room, n in expected.items():
        opened = sorted({day for r, day in rows if r == room})
        assert len(opened) == n and len([r for r, _ in rows if r == room]) == per_day[room] * n
        assert opened[0] == utcnow().astimezone(TZ).date()
    assert "EC2" not in {r for r, _ in rows}


def test_plan_batch_plans_without_booking_and_books_with_book(cli_engine: Engine) -> None:
    code, hospital_id = _hospital(ECG)
    _run("open-calendars", code, "--days", "3")
    planned = _patient_with(hospital_id, "ecg")
    stuck = _patient_with(hospital_id, "xray_chest")  # no X-ray room at this hospital

    lines = _run("plan-batch", code)
    mine = {int(line.split()[1].rstrip(":")): line for line in lines}
    assert set(mine) == {planned, stuck}
    assert "1 trip(s)" in mine[planned] and mine[planned].endswith("unplanned -")
    assert "0 trip(s)" in mine[stuck] and not mine[stuck].endswith("unplanned -")
    with session_scope(write=False) as db:
        assert db.scalars(select(ExamBooking).where(
            ExamBooking.hospital_id == hospital_id)).all() == []

    booked = _run("plan-batch", code, "--book")
    assert f"patient {stuck}: 未预约：" in "\n".join(booked)
    assert booked[-1] == "1 patients booked, 1 left waiting"
    with session_scope(write=False) as db:
        orders = {o.patient_id: o.status for o in db.scalars(select(ExamOrder).where(
            ExamOrder.hospital_id == hospital_id))}
        [b] = db.scalars(select(ExamBooking).where(ExamBooking.hospital_id == hospital_id))
        assert orders == {planned: "booked", stuck: "pending"}
        assert b.patient_id == planned and db.get_one(ExamSlot, b.slot_id).booked == 1
        day = b.start_at.astimezone(TZ).date()
    assert day.isoformat() in mine[planned]  # booked as planned
    assert _run("plan-batch", code, "--book")[-1] == "0 patients booked, 1 left waiting"


def test_itinerary_prints_the_days_exams_as_the_slip_lists_them(cli_engine: Engine) -> None:
    code, hospital_id = _hospital(ECG)
    _run("open-calendars", code, "--days", "3")
    patient = _patient_with(hospital_id, "ecg")
    _run("plan-batch", code, "--book")
    with session_scope(write=False) as db:
        b = db.scalars(select(ExamBooking).where(ExamBooking.patient_id == patient)).one()
        start = b.start_at.astimezone(TZ)
    exam = parse_catalogue(default_catalogue_data()).exams["ecg"]
    assert _run("itinerary", str(patient), start.date().isoformat()) == [
        f"{start:%H:%M} {exam.name}｜门诊楼105 心电图室｜{exam.instruction}"]
    other_day = (start.date() + timedelta(days=1)).isoformat()
    assert _run("itinerary", str(patient), other_day) == []


def _booked(hospital_id: int, starts: list[datetime]) -> list[int]:
    """One patient's ECG booked in a slot at each of ``starts`` (booked an hour before)."""
    centre = Principal(role=Role.exam_centre, hospital_id=hospital_id, label="tests")
    ids = []
    for start in starts:
        patient = _patient_with(hospital_id, "ecg")
        with session_scope() as db:
            room = db.scalars(select(ExamResource).where(
                ExamResource.hospital_id == hospital_id)).one()
            [slot] = resources.add_slots(db, resource=room, starts=[start])
            [order] = service.pending_orders(db, hospital_id=hospital_id, patient_id=patient)
            ids.append(booking.book_single(db, principal=centre, order_id=order.id,
                                           slot_id=slot.id, now=start - timedelta(hours=1)).id)
    return ids


def test_sweep_noshows_marks_bookings_30_minutes_past_their_start_once(
        cli_engine: Engine) -> None:
    code, hospital_id = _hospital(ECG)
    now = utcnow().replace(second=0, microsecond=0)
    late, grace, ahead = _booked(hospital_id, [
        now - timedelta(hours=2), now - booking.NOSHOW_AFTER / 2, now + timedelta(days=1)])
    assert _run("sweep-noshows", code) == ["1 no-shows recorded"]
    with session_scope(write=False) as db:
        status = {b.id: b.status for b in db.scalars(select(ExamBooking).where(
            ExamBooking.hospital_id == hospital_id))}
        assert status == {late: "noshow", grace: "booked", ahead: "booked"}
        penalties = db.scalars(select(PenaltyRecord).where(
            PenaltyRecord.hospital_id == hospital_id)).all()
        assert [(p.source, p.source_id) for p in penalties] == [
            (booking.PENALTY_SOURCE, late)]
    assert _run("sweep-noshows", code) == ["0 no-shows recorded"]
