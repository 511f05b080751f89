"""The demo region: realistic, deterministic, idempotent, never mixed with real data."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from onetrip.db import Base
from onetrip.demo import DemoSeedMismatch, NotADemoDatabase, load_demo
from onetrip.models import import_all_models
from onetrip.org.models import Department, Hospital, Location, Practitioner, Region
from tests.factories import make_region


def test_demo_region_has_the_promised_shape(db: Session) -> None:
    hospitals = list(db.scalars(select(Hospital)))
    assert {(h.level, h.kind) for h in hospitals} >= {
        ("tertiary", "general"), ("tertiary", "tcm"), ("secondary", "general")}
    clinics = [h for h in hospitals if h.kind == "primary_care"]
    assert len(clinics) >= 5 and len({h.alliance_id for h in hospitals}) == 1
    for h in hospitals:
        if h.level == "tertiary":
            clinical = [d for d in h.departments if d.is_clinical]
            assert len(clinical) >= 20, h.name
    assert db.scalar(select(func.count(Practitioner.id))) >= 150
    rooms = db.scalar(select(func.count(Location.id)).where(Location.kind == "room"))
    assert rooms and rooms > 100
    titles = set(db.scalars(select(Practitioner.title)))
    assert titles == {"chief_physician", "associate_chief_physician", "attending_physician",
                      "resident_physician"}


def test_running_demo_again_changes_nothing(db: Session) -> None:
    before = db.scalar(select(func.count(Department.id)))
    assert load_demo(db).created is False
    assert db.scalar(select(func.count(Department.id))) == before


def test_demo_refuses_a_database_with_other_data(db: Session) -> None:
    make_region(db, code="real", name="真实区")
    with pytest.raises(NotADemoDatabase):
        load_demo(db)


def test_demo_refuses_a_different_seed(db: Session) -> None:
    with pytest.raises(DemoSeedMismatch):
        load_demo(db, seed=1)


def _fingerprint(db: Session) -> list[tuple[str, str, str, str]]:
    rows = db.execute(select(Hospital.code, Practitioner.code, Practitioner.name,
                             Practitioner.title)
                      .join(Hospital, Hospital.id == Practitioner.hospital_id)
                      .order_by(Hospital.code, Practitioner.code))
    return [(a, b, c, d) for a, b, c, d in rows]


def test_same_seed_gives_the_same_region(db: Session) -> None:
    import_all_models()
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as fresh:
        load_demo(fresh)
        fresh.flush()
        assert _fingerprint(fresh) == _fingerprint(db)
        assert fresh.scalar(select(Region.demo_seed)) == db.scalar(select(Region.demo_seed))
