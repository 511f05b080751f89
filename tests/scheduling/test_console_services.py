"""Service functions the console needs: one no-show mark (BK-6), single template rows,
and policy floors that name their field (BK-2, BK-4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.events import Event
from onetrip.scheduling import booking, queue, templates
from onetrip.scheduling.errors import NoShowRefused
from onetrip.scheduling.events import NoShowRecorded
from onetrip.scheduling.models import ScheduleTemplate
from onetrip.scheduling.rules import Channel, PenaltyRule, PolicyInvalid, PoolPolicy
from onetrip.scheduling.templates import TemplateFields, TemplateInvalid, TemplateNotFound
from tests.factories import make_hospital
from tests.scheduling.conftest import DAY, OPEN, Clinic, local


def test_bk6_one_noshow_mark_counts_toward_the_penalty_and_is_announced(
        db: Session, clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> None:
    patient, pp = clinic.patient(db)
    appt = booking.book(db, principal=pp, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    published: list[Event] = []
    monkeypatch.setattr("onetrip.events.publish", lambda _db, e: published.append(e))
    closes = clinic.schedule.end_at + timedelta(minutes=30)  # check-in closes (BK-11)
    with pytest.raises(NoShowRefused):  # still within the late-arrival allowance
        queue.mark_noshow(db, principal=clinic.window, appointment_id=appt.id,
                          now=closes - timedelta(minutes=1))
    with pytest.raises(NoShowRefused):  # a doctor does not mark no-shows
        queue.mark_noshow(db, principal=clinic.doctor_principal, appointment_id=appt.id,
                          now=closes + timedelta(hours=1))
    marked = queue.mark_noshow(db, principal=clinic.window, appointment_id=appt.id,
                               now=closes)
    assert (marked.status, marked.penalty_event) == ("noshow", "noshow")
    assert [type(e) for e in published] == [NoShowRecorded]
    restriction = booking.restriction_of(db, patient_id=patient.id,
                                         hospital_id=clinic.hospital.id,
                                         rule=PenaltyRule(), now=local(DAY, 12))
    assert restriction is not None and restriction.count == 1


def test_bk6_an_arrived_patient_is_never_marked_a_noshow(db: Session, clinic: Clinic) -> None:
    patient, pp = clinic.patient(db)
    appt = booking.book(db, principal=pp, patient_id=patient.id, channel=Channel.app,
                        schedule_id=clinic.schedule.id, now=OPEN)
    queue.check_in(db, principal=clinic.doctor_principal, appointment_id=appt.id,
                   patient_id=patient.id, now=local(DAY, 7, 50))
    with pytest.raises(NoShowRefused):
        queue.mark_noshow(db, principal=clinic.window, appointment_id=appt.id,
                          now=local(DAY, 12))


def _fields(clinic: Clinic, **kw: object) -> TemplateFields:
    base: dict[str, object] = {
        "department_id": clinic.department.id, "practitioner_id": clinic.doctor.id,
        "weekday": 1, "session": "pm", "start_time": None, "slot_minutes": 6, "capacity": 20,
        "service_level": "expert"}
    return TemplateFields(**(base | kw))  # type: ignore[arg-type]


def test_template_rows_are_checked_field_by_field_and_scoped_to_the_hospital(
        db: Session, clinic: Clinic) -> None:
    row = templates.save_template(db, hospital=clinic.hospital, fields=_fields(clinic))
    assert (row.start_time.hour, row.start_time.minute, row.active) == (13, 30, True)
    with pytest.raises(TemplateInvalid) as err:
        templates.save_template(db, hospital=clinic.hospital, fields=_fields(
            clinic, weekday=8, capacity=0, service_level="vip", session="night"))
    assert set(err.value.detail) == {"weekday", "capacity", "service_level", "session"}
    with pytest.raises(TemplateInvalid) as clash:
        templates.save_template(db, hospital=clinic.hospital, fields=_fields(clinic))
    assert "已有出诊模板" in clash.value.detail["session"]
    elsewhere = make_hospital(db)
    problems = templates.template_problems(db, elsewhere, _fields(clinic))
    assert {"department_id", "practitioner_id"} <= set(problems)
    with pytest.raises(TemplateNotFound):
        templates.remove_template(db, hospital=elsewhere, template_id=row.id)
    templates.save_template(db, hospital=clinic.hospital, template_id=row.id,
                            fields=_fields(clinic, capacity=12))  # its own slot is no clash
    templates.remove_template(db, hospital=clinic.hospital, template_id=row.id)
    assert db.scalar(select(ScheduleTemplate.active).where(ScheduleTemplate.id == row.id)) \
        is False


@pytest.mark.parametrize(("change", "field"), [
    ({"online_share": 0.79}, "online_share"),
    ({"referral_share_of_online": 0.39}, "referral_share_of_online"),
    ({"online_share": 0.9, "priority_share": 0.1, "clinic_share": 0.05}, "priority_share"),
    ({"referral_return_days": 11}, "referral_return_days"),
])
def test_bk2_bk4_a_broken_floor_names_its_setting(change: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        PoolPolicy.model_validate(change)
    cause = err.value.errors()[0]["ctx"]["error"]
    assert isinstance(cause, PolicyInvalid) and cause.field == field
