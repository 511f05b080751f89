from __future__ import annotations

from datetime import datetime, time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import utcnow
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org.models import Hospital


@pytest.fixture
def hospital(db: Session) -> Hospital:
    """示范市人民医院: the demo loaded its catalogue, resources and a week of calendar."""
    return db.scalars(select(Hospital).where(Hospital.code == "sfsrmyy")).one()


@pytest.fixture
def now() -> datetime:
    """17:00 today: the centre plans the evening before, so tomorrow's whole day of free
    slots lies ahead with the night to fast (the demo calendar starts today)."""
    tz = get_settings().tz
    return datetime.combine(utcnow().astimezone(tz).date(), time(17, 0), tzinfo=tz)


@pytest.fixture
def centre(hospital: Hospital) -> Principal:
    return Principal(role=Role.exam_centre, hospital_id=hospital.id, label="tests")


@pytest.fixture
def doctor(hospital: Hospital) -> Principal:
    return Principal(role=Role.doctor, hospital_id=hospital.id, label="tests")
