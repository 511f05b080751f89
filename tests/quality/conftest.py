"""Quality fixtures: a fresh hospital holding the hand-made month."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from onetrip.org.models import Hospital
from onetrip.quality import service as quality_service
from onetrip.quality.rules import DatasetKind
from tests.factories import make_hospital
from tests.quality import handmade


def import_handmade(db: Session, hospital: Hospital, tmp: Path) -> None:
    for month in ("2026-09", "2026-10"):
        for kind, header, rows in ((DatasetKind.prescriptions, handmade.RX_HEADER, handmade.RX),
                                   (DatasetKind.charges, handmade.CHARGE_HEADER,
                                    handmade.CHARGES)):
            src = handmade.write_csv(tmp / f"{kind}-{month}.csv", header,
                                     handmade.month_rows(rows, month))
            quality_service.import_file(db, hospital=hospital, kind=kind, period=month,
                                        source=src)


@pytest.fixture
def handmade_hospital(db: Session, tmp_path: Path) -> Hospital:
    hospital = make_hospital(db, code="hm1", name="手工医院")
    import_handmade(db, hospital, tmp_path)
    quality_service.set_privilege(db, hospital=hospital, prescriber_code="D1",
                                  max_grade="special")
    quality_service.set_ddd(db, hospital=hospital, drug_code="CRO", ddd_g=2.0, unit_g=1.0)
    # A request that fails rolls the session back to its last commit (a savepoint here).
    db.commit()
    return hospital
