"""Migrations and models agree, on whichever database the suite runs."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

from onetrip import migrate
from onetrip.db import Base, make_engine
from onetrip.models import import_all_models
from tests import racekit


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    import_all_models()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def add_hospitals(conn: Connection, *codes: str, level: str = "secondary") -> None:
    """A region and its hospitals, as a database at an old revision holds them."""
    conn.execute(text("INSERT INTO region (code, name, is_demo) VALUES ('r', '某市', FALSE)"))
    for code in codes:
        conn.execute(text(
            "INSERT INTO hospital (region_id, code, name, short_name, level, kind, "
            "is_alliance_lead, introduction, address, phone, clinic_weekdays, "
            "holiday_clinics, search_keys) SELECT id, :code, '某医院', '', :level, "
            "'general', FALSE, '', '某路1号', '', '[1]', FALSE, '' FROM region"),
            {"code": code, "level": level})


def test_upgrading_a_database_that_holds_hospitals_keeps_them() -> None:
    """A hospital upgrades a database full of its data: columns added to tables that others
    point at must not rebuild those tables (SQLite refuses to drop a referenced table)."""
    url, drop = racekit.fresh_database("upgrade", revision="0008_notify")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            add_hospitals(conn, "h")
        migrate.upgrade(url)
        with engine.connect() as conn:
            row = conn.execute(text(
                "SELECT h.code, h.postal_code, r.province FROM hospital h "
                "JOIN region r ON r.id = h.region_id")).one()
        assert tuple(row) == ("h", "", "")
    finally:
        engine.dispose()
        drop()


def test_upgrading_gives_a_hospitals_thyroid_scan_its_two_weeks_without_iodine() -> None:
    """A catalogue imported before ``prep_days`` existed gets the thyroid scan's 14 days;
    a value the exam centre set itself is kept."""
    url, drop = racekit.fresh_database("prep", revision="0015_waitlist_closed")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            add_hospitals(conn, "a", "b", level="tertiary")
            for hospital, spec in (("a", '{"minutes": 30, "source": "s"}'),
                                   ("b", '{"minutes": 30, "source": "s", "prep_days": 21}')):
                conn.execute(text(
                    "INSERT INTO exam_type (hospital_id, code, name, modality, spec, active, "
                    "updated_at, updated_by) SELECT id, 'nm_thyroid', '甲状腺核素显像', 'nm', "
                    ":spec, TRUE, '2026-12-01 00:00:00', '' FROM hospital WHERE code = :h"),
                    {"spec": spec, "h": hospital})
        migrate.upgrade(url)
        with engine.connect() as conn:
            got = {h: json.loads(s) if isinstance(s, str) else s for h, s in conn.execute(text(
                "SELECT h.code, e.spec FROM exam_type e JOIN hospital h ON h.id = e.hospital_id"))}
        assert got["a"] == {"minutes": 30, "source": "s", "prep_days": 14}
        assert got["b"]["prep_days"] == 21
    finally:
        engine.dispose()
        drop()
