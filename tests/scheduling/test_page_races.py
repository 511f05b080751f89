"""A booking form sent many times at once (a double tap on a slow network, a stuck button)
books once: real server processes, a real database, concurrent clients (BK-8)."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import date

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from onetrip.deps import TOKEN_COOKIE
from onetrip.identity import service as identity_service
from onetrip.identity.rules import Role
from onetrip.scheduling.models import Appointment, Slot
from tests import racekit
from tests.factories import resident_id

pytestmark = pytest.mark.slow

SENDS = 12


def test_the_same_kiosk_form_sent_12_times_at_once_books_once(race_engine: Engine) -> None:
    seed = racekit.seed(race_engine, patients=1, capacity=20)
    number = resident_id(date(1970, 1, 1), seq="123")  # racekit's first patient
    with Session(race_engine) as db:
        _row, kiosk_token = identity_service.create_token(db, role=Role.kiosk,
                                                          hospital_code=seed.hospital_code)
        slot_id = db.scalars(select(Slot.id).where(Slot.schedule_id == seed.schedule_ids[0])
                             .order_by(Slot.start_at)).first()
        db.commit()
    with racekit.server(str(race_engine.info["url"]), workers=2) as (base, _proc):  # type: ignore[attr-defined]
        with httpx.Client(base_url=base, cookies={TOKEN_COOKIE: kiosk_token}) as c:
            assert c.post("/kiosk/identify", data={"card": number}).status_code == 303
            form = c.get(f"/kiosk/slots/{slot_id}").text
            token = re.search(r'name="form_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            cookies = dict(c.cookies)
        results: list[tuple[int, str]] = [(0, "")] * SENDS
        barrier = threading.Barrier(SENDS)

        def send(i: int) -> None:
            with httpx.Client(base_url=base, cookies=cookies, timeout=60) as client:
                barrier.wait()
                r = client.post(f"/kiosk/slots/{slot_id}", data={"form_token": token})
                results[i] = (r.status_code, r.headers.get("location", ""))

        threads = [threading.Thread(target=send, args=(i,)) for i in range(SENDS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert Counter(code for code, _ in results) == {303: SENDS}, results
    assert len({where for _, where in results}) == 1  # every answer is the one booking
    with Session(race_engine) as db:
        assert db.scalar(select(func.count()).select_from(Appointment)) == 1
        appt = db.scalars(select(Appointment)).one()
        assert appt.patient_id == seed.patient_ids[0] and appt.channel == "kiosk"
        assert appt.slot_id == slot_id
