"""A catalogue stored before its checks were tightened (EX-2): the centre can still read
and export it to mend it, while the planner refuses it with its fault named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from onetrip.cli import app
from onetrip.exams import service
from onetrip.exams.catalogue import default_catalogue_data
from onetrip.exams.models import CatalogueExam
from onetrip.identity.rules import Role
from tests.factories import auth, make_hospital, make_token

URL = "/api/v1/exams/catalogue"


def test_a_stored_catalogue_past_todays_bounds_is_read_and_mended(
        client: TestClient, db: Session) -> None:
    h = make_hospital(db, level="tertiary")
    service.install_catalogue(db, hospital_id=h.id, data=default_catalogue_data())
    first = db.scalars(select(CatalogueExam).where(CatalogueExam.hospital_id == h.id)
                       .order_by(CatalogueExam.id)).first()
    assert first is not None
    first.spec = {**first.spec, "prep_days": 1_000_000}  # stored by an older OneTrip
    centre = auth(make_token(db, Role.exam_centre, h))
    db.commit()

    read = client.get(URL, headers=centre)
    assert read.status_code == 200
    stored = next(e for e in read.json()["exam"] if e["code"] == first.code)
    assert stored["prep_days"] == 1_000_000
    with pytest.raises(service.CatalogueRejected, match="prep_days") as refused:
        service.catalogue(db, h.id)  # what the planner reads
    assert refused.value.code == "catalogue_invalid"

    mended = copy.deepcopy(read.json())
    stored_again = next(e for e in mended["exam"] if e["code"] == first.code)
    stored_again["prep_days"] = 14
    assert client.put(URL, headers=centre, json=mended).status_code == 200
    assert client.get(URL, headers=centre).json() == mended


def test_a_result_weeks_away_is_a_valid_exam(db: Session) -> None:
    """A culture's report can take six weeks: the bound is 90 days."""
    h = make_hospital(db, level="tertiary")
    data = default_catalogue_data()
    data["exam"][0]["result_minutes"] = 42 * 24 * 60
    cat = service.install_catalogue(db, hospital_id=h.id, data=data)
    assert cat.exams[data["exam"][0]["code"]].result_minutes == 42 * 24 * 60


def test_the_export_of_a_stored_catalogue_past_its_bounds_works(
        cli_engine: object, tmp_path: Path) -> None:
    from onetrip.db import session_scope

    with session_scope() as db:
        h = make_hospital(db, level="tertiary")
        service.install_catalogue(db, hospital_id=h.id, data=default_catalogue_data())
        first = db.scalars(select(CatalogueExam).where(CatalogueExam.hospital_id == h.id)
                           .order_by(CatalogueExam.id)).first()
        assert first is not None
        first.spec = {**first.spec, "fasting_hours": 500}
        code, exam = h.code, first.code
    out = tmp_path / "catalogue.json"
    result = CliRunner().invoke(app, ["exams", "catalogue-export", code, str(out)])
    assert result.exit_code == 0, result.output
    exams = json.loads(out.read_text(encoding="utf-8"))["exam"]
    assert next(e for e in exams if e["code"] == exam)["fasting_hours"] == 500
