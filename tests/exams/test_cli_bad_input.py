"""`onetrip exams catalogue-import` refuses the same broken catalogues as the API (the same
parser), names the exam and field, exits 1 and leaves the edited catalogue stored. The
command commits: a database of its own (cli_engine) and a hospital of its own."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from onetrip.cli import app
from onetrip.db import session_scope
from onetrip.exams import service
from onetrip.exams.catalogue import catalogue_as_data
from onetrip.org.models import Hospital
from tests.exams.test_bad_input import BAD_CATALOGUES, broken, edited_catalogue
from tests.factories import make_hospital


@pytest.fixture(scope="module")
def cli_hospital(cli_engine: Engine) -> str:
    """A hospital whose centre has edited its catalogue."""
    with session_scope() as db:
        h = make_hospital(db, code=f"bad{uuid.uuid4().hex[:8]}")
        service.install_catalogue(db, hospital_id=h.id, data=edited_catalogue())
        return h.code
def _import(code: str, path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["exams", "catalogue-import", code, str(path)])
    return result.exit_code, result.output


def _stored(code: str) -> dict[str, Any]:
    with session_scope(write=False) as db:
        h = db.scalars(select(Hospital).where(Hospital.code == code)).one()
        return catalogue_as_data(service.catalogue(db, h.id))


@pytest.mark.parametrize("name", list(BAD_CATALOGUES))
def test_catalogue_import_refuses_the_same_files(
        cli_hospital: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(broken(name), ensure_ascii=False), encoding="utf-8")
    status, output = _import(cli_hospital, path)
    assert status == 1 and "未导入：" in output, output
    for word in BAD_CATALOGUES[name][1]:
        assert word in output, (word, output)
    assert _stored(cli_hospital) == edited_catalogue()


@pytest.mark.parametrize(("text", "words"), [
    ("exam = 5\n", ("exam", "列表")),
    ('[[exam]]\ncode = "ecg"\nname = "心电图"\nmodality = "ecg"\nminutes = 2026-01-01\n'
     'source = "x"\n', ("ecg", "minutes")),
    ('[[exam]]\ncode = "ecg"\nname = "心电图"\nmodality = "ecg"\nminutes = 10\n'
     'source = "x"\nlatest_start = 2026-01-01T11:30:00\n', ("ecg", "latest_start")),
])
def test_catalogue_import_refuses_toml_values_of_the_wrong_kind(
        cli_hospital: str, tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    status, output = _import(cli_hospital, path)
    assert status == 1 and "未导入：" in output, output
    for word in words:
        assert word in output, (word, output)
    assert _stored(cli_hospital) == edited_catalogue()


