"""A small clinic with one session on a Monday, and principals to act in it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.deps import get_now
from onetrip.identity.models import Patient
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.scheduling import booking, service
from onetrip.scheduling.models import Appointment, Schedule
from onetrip.scheduling.rules import Channel, SessionOfDay, at_local
from tests.factories import make_department, make_hospital, make_patient, make_practitioner

DAY = date(2026, 12, 14)  # a Monday
_names = itertools.count(1)


def chinese_name() -> str:
    """A distinct valid name (digits are not allowed in real names)."""
    return "患者" + "".join("零一二三四五六七八九"[int(d)] for d in str(next(_names)))


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return at_local(day, time(hour, minute), get_settings().tz)


#: Online slots of DAY open at 07:00 seven days before; this is a moment after that.
OPEN = local(DAY - timedelta(days=2), 10)
CREATED = local(DAY - timedelta(days=30), 9)


@dataclass
class Clinic:
    hospital: Hospital
    department: Department
    doctor: Practitioner
    schedule: Schedule
    window: Principal
    doctor_principal: Principal

    def patient(self, db: Session, **kw: object) -> tuple[Patient, Principal]:
        kw.setdefault("name", chinese_name())
        p = make_patient(db, **kw)  # type: ignore[arg-type]
        return p, self.patient_principal(p.id)

    def patient_principal(self, patient_id: int) -> Principal:
        return Principal(role=Role.patient, account_id=patient_id,
                         patient_ids=frozenset({patient_id}))

    def book(self, db: Session, patient_id: int, *, now: datetime = OPEN,
             schedule: Schedule | None = None) -> Appointment:
        """The window clerk books the earliest slot of a session for a patient."""
        return booking.book(db, principal=self.window, patient_id=patient_id,
                            channel=Channel.window, schedule_id=(schedule or self.schedule).id,
                            now=now)

    def kiosk(self) -> Principal:
        return Principal(role=Role.kiosk, hospital_id=self.hospital.id, label="自助机")

    def session(self, db: Session, *, day: date = DAY, capacity: int = 10,
                doctor: Practitioner | None = None,
                session: SessionOfDay = SessionOfDay.am) -> Schedule:
        return service.create_schedule(
            db, hospital=self.hospital, department=self.department, day=day,
            session=session, practitioner=doctor or self.doctor, capacity=capacity,
            slot_minutes=6, now=CREATED)


@pytest.fixture
def clinic(db: Session) -> Clinic:
    h = make_hospital(db, level="tertiary", clinic_weekdays=[1, 2, 3, 4, 5, 6, 7])
    dept = make_department(db, h, name="心血管内科")
    doc = make_practitioner(db, h, dept, service_level="expert", title="chief_physician")
    schedule = service.create_schedule(db, hospital=h, department=dept, day=DAY,
                                       session=SessionOfDay.am, practitioner=doc,
                                       capacity=10, slot_minutes=6, now=CREATED)
    return Clinic(h, dept, doc, schedule,
                  Principal(role=Role.window, hospital_id=h.id, label="窗口1"),
                  Principal(role=Role.doctor, hospital_id=h.id, label="诊室"))


class Clock:
    """A fake clock for the app's ``Now`` dependency; tests move ``now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(client: TestClient) -> Iterator[Clock]:
    c = Clock(OPEN)
    client.app.dependency_overrides[get_now] = c  # type: ignore[attr-defined]
    yield c
