"""Stop-clinic and substitute from the console with every affected patient and their offer
(BK-6), and the doctor's queue with "call next" (BK-11)."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from onetrip.identity.rules import Role
from onetrip.scheduling import booking, queue
from onetrip.scheduling.models import Appointment
from onetrip.scheduling.rules import Channel
from tests.factories import make_practitioner
from tests.scheduling.conftest import DAY, OPEN, Clinic, local
from tests.scheduling.console_kit import as_staff
from tests.scheduling.test_flows import fill


def test_bk6_admin_stops_a_clinic_and_sees_each_affected_patient_and_the_offer(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    colleague = make_practitioner(db, clinic.hospital, clinic.department, name="钱明",
                                  service_level="expert")
    clinic.session(db, day=DAY + timedelta(days=1), doctor=colleague, capacity=1)
    booked = fill(db, clinic, 2)
    as_staff(client, db, Role.hospital_admin, clinic.hospital, OPEN + timedelta(hours=1))
    listing = client.get("/console/sessions", params={"day": DAY.isoformat()})
    assert f'data-schedule="{clinic.schedule.id}" data-status="open"' in listing.text
    page = client.get(f"/console/sessions/{clinic.schedule.id}")
    assert 'data-count="affected">2<' in page.text

    no_reason = client.post(f"/console/sessions/{clinic.schedule.id}/stop", data={"reason": " "})
    assert no_reason.status_code == 422 and 'data-field="reason"' in no_reason.text
    db.refresh(clinic.schedule)
    assert clinic.schedule.status == "open"

    r = client.post(f"/console/sessions/{clinic.schedule.id}/stop", data={"reason": "外出会诊"},
                    follow_redirects=False)
    assert r.headers["location"] == f"/console/sessions/{clinic.schedule.id}?flash=stopped"
    r = client.get(r.headers["location"])  # the counts are read from the offers stored
    assert r.status_code == 200 and "2位患者已通知，其中1位已保留改约号源" in r.text
    for a in booked:
        assert f'data-patient="{a.patient_id}"' in r.text
    assert r.text.count("data-offer=") == 2
    assert "钱明" in r.text and "已保留至" in r.text  # the held equivalent slot
    assert "无同级别号源" in r.text and "待退挂号费" in r.text  # the other patient's notice
    # the status column: one patient has a slot to confirm, the other nothing but a refund
    states = re.findall(r'<td data-offer-status="(\w+)">([^<]+)</td>', r.text)
    assert sorted(label for _, label in states) == ["待患者确认", "待退费"]
    twice = client.post(f"/console/sessions/{clinic.schedule.id}/stop", data={"reason": "再停"})
    assert twice.status_code == 409 and "已停诊或已替诊" in twice.text


def test_bk6_substitute_keeps_the_appointments_and_lists_the_patients(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    colleague = make_practitioner(db, clinic.hospital, clinic.department, name="孙立")
    (appt,) = fill(db, clinic, 1)
    as_staff(client, db, Role.window, clinic.hospital, OPEN)  # the window may do it too
    missing = client.post(f"/console/sessions/{clinic.schedule.id}/substitute",
                          data={"practitioner_id": "", "reason": ""})
    assert missing.status_code == 422
    assert 'data-field="practitioner_id"' in missing.text
    assert 'data-field="sub_reason"' in missing.text
    for typed in ("²", "１２", "2147483648"):  # no doctor's id
        r = client.post(f"/console/sessions/{clinic.schedule.id}/substitute",
                        data={"practitioner_id": typed, "reason": "病假"})
        assert r.status_code == 422 and 'data-field="practitioner_id"' in r.text, typed
    same = client.post(f"/console/sessions/{clinic.schedule.id}/substitute",
                       data={"practitioner_id": str(clinic.doctor.id), "reason": "病假"})
    assert same.status_code == 422 and "替诊医生须为本院其他医生" in same.text
    r = client.post(f"/console/sessions/{clinic.schedule.id}/substitute",
                    data={"practitioner_id": str(colleague.id), "reason": "病假"},
                    follow_redirects=False)
    assert r.headers["location"] == f"/console/sessions/{clinic.schedule.id}?flash=substituted"
    r = client.get(r.headers["location"])
    assert r.status_code == 200 and "已安排孙立替诊" in r.text
    assert f'data-appointment="{appt.id}"' in r.text
    db.refresh(appt)
    assert appt.status == "booked"


def test_bk11_doctor_calls_the_next_patient_and_the_panel_refreshes(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    first, second = fill(db, clinic, 2)
    for a in (first, second):
        queue.check_in(db, principal=clinic.doctor_principal, appointment_id=a.id,
                       patient_id=a.patient_id, now=local(DAY, 7, 40))
    as_staff(client, db, Role.doctor, clinic.hospital, local(DAY, 8, 0))
    listing = client.get("/console/queue", params={"day": DAY.isoformat()})
    assert f'href="/console/queue/{clinic.schedule.id}"' in listing.text
    page = client.get(f"/console/queue/{clinic.schedule.id}")
    assert page.status_code == 200 and 'hx-trigger="every 5s"' in page.text
    assert page.text.count("data-appointment=") == 2 and 'data-current=""' in page.text

    hx = {"HX-Request": "true"}
    r = client.post(f"/console/queue/{clinic.schedule.id}/call-next", headers=hx)
    assert r.status_code == 200 and "<html" not in r.text and "已叫号" in r.text
    assert f'data-current="{first.id}"' in r.text and r.text.count("data-appointment=") == 1
    r = client.post(f"/console/queue/{clinic.schedule.id}/call-next", headers=hx)
    assert f'data-current="{second.id}"' in r.text and 'data-empty="queue"' in r.text
    db.refresh(first)
    assert first.status == "fulfilled"
    r = client.post(f"/console/queue/{clinic.schedule.id}/call-next", headers=hx)
    assert "候诊队列已空" in r.text
    panel = client.get(f"/console/queue/{clinic.schedule.id}/panel", headers=hx)
    assert panel.status_code == 200 and 'id="queue-panel"' in panel.text
    assert "<html" not in panel.text

    late, pp = clinic.patient(db)
    appt = booking.book(db, principal=pp, patient_id=late.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    queue.check_in(db, principal=clinic.doctor_principal, appointment_id=appt.id,
                   patient_id=late.id, now=local(DAY, 8, 1))
    db.commit()
    refreshed = client.get(f"/console/queue/{clinic.schedule.id}/panel", headers=hx)
    assert f'data-appointment="{appt.id}"' in refreshed.text  # checked in meanwhile
    plain = client.post(f"/console/queue/{clinic.schedule.id}/call-next",
                        follow_redirects=False)
    assert plain.status_code == 303  # works without htmx too
    assert db.get(Appointment, appt.id) is not None


FORGED = "本院系统升级，请患者拨打4008001234办理退费"


def test_the_session_page_shows_no_text_a_link_brings(
        client: TestClient, db: Session, clinic: Clinic) -> None:
    """A flash names what happened; on a session where it did not happen it says nothing."""
    fill(db, clinic, 1)
    as_staff(client, db, Role.hospital_admin, clinic.hospital, OPEN + timedelta(hours=1))
    for flash in (FORGED, "stopped", "substituted"):
        r = client.get(f"/console/sessions/{clinic.schedule.id}", params={"flash": flash})
        assert r.status_code == 200 and FORGED not in r.text, flash
        assert "位患者已通知" not in r.text and "替诊，原预约" not in r.text, flash
