"""Patient portal pages (BK-1, BK-3, BK-6, BK-11): the booking walk, the confirmation, my
appointments with cancel, offers, the waitlist, the live queue and the restriction notice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.deps import TOKEN_COOKIE
from onetrip.identity import auth
from onetrip.identity.models import Account, Patient
from onetrip.identity.rules import Relationship
from onetrip.scheduling import booking, queue, service, stopclinic, waitlist
from onetrip.scheduling.models import Appointment, Schedule
from onetrip.scheduling.rules import Channel
from tests.factories import account_principal, make_account, make_patient, make_practitioner
from tests.scheduling.conftest import DAY, OPEN, Clinic, Clock, chinese_name, local

#: Wednesday before DAY: online slots are out, the free cancellation deadline still ahead.
EARLY = local(DAY - timedelta(days=5), 10)


@dataclass
class Family:
    me: Patient
    kid: Patient


def sign_in_family(client: TestClient, db: Session) -> Family:
    """A phone account with 本人 and a child, signed in through a real session cookie."""
    acc = make_account(db)
    me = make_patient(db, principal=acc, relationship=Relationship.self_, name=chinese_name())
    kid = make_patient(db, principal=account_principal(db, acc), name=chinese_name(),
                       relationship=Relationship.child, birth_date=date(2016, 3, 3))
    account = db.get_one(Account, acc.account_id)
    client.cookies.set(TOKEN_COOKIE, auth.start_session(db, account=account))
    return Family(me, kid)


def form_token(html: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', html)
    assert match, "no form token on the page"
    return match.group(1)


def test_bk3_walk_from_hospital_to_minute_precise_times(client: TestClient, clock: Clock,
                                                        clinic: Clinic, db: Session) -> None:
    hospitals = client.get("/book")
    assert hospitals.status_code == 200 and f'data-hospital="{clinic.hospital.code}"' \
        in hospitals.text
    depts = client.get(f"/book/hospitals/{clinic.hospital.code}")
    assert f'data-dept="{clinic.department.code}"' in depts.text
    page = client.get(f"/book/hospitals/{clinic.hospital.code}/{clinic.department.code}",
                      params={"day": DAY.isoformat()})
    web = service.free_slots(db, schedule=clinic.schedule, channel=Channel.web, now=OPEN)
    free_online = len(web)
    assert page.status_code == 200 and f'data-schedule="{clinic.schedule.id}"' in page.text
    assert f"余{free_online}" in page.text and clinic.doctor.name in page.text
    partial = client.get(f"/book/hospitals/{clinic.hospital.code}/{clinic.department.code}",
                         params={"day": DAY.isoformat()}, headers={"HX-Request": "true"})
    assert "<html" not in partial.text and f'data-schedule="{clinic.schedule.id}"' in partial.text
    times = client.get(f"/book/schedules/{clinic.schedule.id}")
    links = re.findall(r'data-slot="(\d+)"', times.text)
    # Only the online pool (with returned referral slots) is open to the web channel, and
    # fewer than all slots: the window, priority and clinic pools stay off the portal.
    assert [int(i) for i in links] == [s.id for s in web]
    assert 0 < len(links) < len(clinic.schedule.slots)


def test_a_date_outside_the_booking_range_is_said_so(client: TestClient, clock: Clock,
                                                     clinic: Clinic) -> None:
    r = client.get(f"/book/hospitals/{clinic.hospital.code}/{clinic.department.code}",
                   params={"day": "2031-01-01"})
    assert r.status_code == 200 and "不在可预约范围内" in r.text


def test_book_confirm_and_a_double_submit_books_once(client: TestClient, clock: Clock,
                                                     clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    slot_id = re.findall(r'data-slot="(\d+)"',
                         client.get(f"/book/schedules/{clinic.schedule.id}").text)[0]
    form = client.get(f"/book/slots/{slot_id}")
    assert form.status_code == 200 and fam.me.name in form.text and fam.kid.name in form.text
    # the terms before the tap: check-in from 06:00 (two hours ahead), free to cancel until
    # Friday 16:00 for a Monday visit
    assert re.search(r'data-fact="check-in">当天 0[67]:\d\d 起', form.text)
    assert f'data-fact="deadline">{DAY - timedelta(days=3):%m-%d} 16:00' in form.text
    data = {"patient_id": str(fam.kid.id), "form_token": form_token(form.text)}
    first = client.post(f"/book/slots/{slot_id}", data=data, follow_redirects=False)
    again = client.post(f"/book/slots/{slot_id}", data=data, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert db.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.patient_id == fam.kid.id)) == 1
    page = client.get(first.headers["location"])
    assert page.status_code == 200 and "预约成功" in page.text
    for fact in ("data-fact=\"time\"", "data-fact=\"place\"", "¥", "如何报到", "免费取消截止"):
        assert fact in page.text
    # BK-6: cancellation is free until 16:00 of the working day before (Friday for Monday).
    assert (DAY - timedelta(days=3)).isoformat() + " 16:00" in page.text


def test_a_refused_booking_is_shown_beside_the_patient_field(client: TestClient, clock: Clock,
                                                             clinic: Clinic,
                                                             db: Session) -> None:
    fam = sign_in_family(client, db)
    clinic.book(db, fam.me.id, now=OPEN)
    slot_id = re.findall(r'data-slot="(\d+)"',
                         client.get(f"/book/schedules/{clinic.schedule.id}").text)[0]
    form = client.get(f"/book/slots/{slot_id}")
    r = client.post(f"/book/slots/{slot_id}", data={"patient_id": str(fam.me.id),
                                                    "form_token": form_token(form.text)})
    assert r.status_code == 409 and 'data-field="patient_id"' in r.text
    assert "已预约过该出诊" in r.text
    missing = client.post(f"/book/slots/{slot_id}", data={"form_token": form_token(form.text)})
    assert missing.status_code == 422 and "请选择就诊人" in missing.text
    stale = client.post(f"/book/slots/{slot_id}", data={"patient_id": str(fam.kid.id)})
    assert stale.status_code == 422 and "页面已过期" in stale.text
    # A patient field that is no id of a row: the same clear refusal, never an error page.
    for typed in ("²", "１２", "2147483648"):  # (past 12 characters the form is refused whole)
        r = client.post(f"/book/slots/{slot_id}", data={"patient_id": typed,
                                                        "form_token": form_token(form.text)})
        assert r.status_code == 422 and "请选择就诊人" in r.text, typed


def test_bk6_restriction_notice_with_reason_and_end_date(client: TestClient, clock: Clock,
                                                         clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    earlier = clinic.session(db, day=DAY - timedelta(days=7))
    missed = clinic.book(db, fam.me.id, schedule=earlier, now=local(DAY - timedelta(days=8), 9))
    missed.status, missed.penalty_event = "noshow", "noshow"
    missed.noshow_at = local(DAY - timedelta(days=7), 12)
    db.flush()
    slot_id = re.findall(r'data-slot="(\d+)"',
                         client.get(f"/book/schedules/{clinic.schedule.id}").text)[0]
    form = client.get(f"/book/slots/{slot_id}")
    assert f'data-restriction="{fam.me.id}"' in form.text and "不能线上预约" in form.text
    r = client.post(f"/book/slots/{slot_id}", data={"patient_id": str(fam.me.id),
                                                    "form_token": form_token(form.text)})
    assert r.status_code == 409 and 'data-field="patient_id"' in r.text
    mine = client.get("/me/appointments")
    until = (DAY - timedelta(days=7) + timedelta(days=30)).isoformat()
    assert f'data-restriction="{fam.me.id}"' in mine.text and until in mine.text
    assert "失约" in mine.text


def test_my_appointments_tabs_and_cancel(client: TestClient, clock: Clock, clinic: Clinic,
                                         db: Session) -> None:
    fam = sign_in_family(client, db)
    clock.now = EARLY
    empty = client.get("/me/appointments")
    assert "暂无待就诊的预约" in empty.text
    appt = clinic.book(db, fam.kid.id, now=EARLY)
    listed = client.get("/me/appointments")
    assert f'data-appointment="{appt.id}"' in listed.text and "待就诊（1）" in listed.text
    r = client.post(f"/me/appointments/{appt.id}/cancel", data={"reason": "时间冲突"},
                    follow_redirects=False)
    assert r.status_code == 303
    db.refresh(appt)
    assert appt.status == "cancelled" and appt.cancel_reason == "时间冲突"
    cancelled = client.get("/me/appointments", params={"tab": "cancelled"})
    assert f'data-appointment="{appt.id}"' in cancelled.text and "已取消（1）" in cancelled.text
    again = client.post(f"/me/appointments/{appt.id}/cancel")
    assert again.status_code == 409 and "不能取消" in again.text


def test_past_visits_move_to_their_own_tab_with_what_became_of_them(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    seen = clinic.book(db, fam.me.id, now=OPEN)
    missed = clinic.book(db, fam.kid.id, now=OPEN)
    seen.status = "fulfilled"
    missed.status, missed.penalty_event = "noshow", "noshow"
    db.flush()
    clock.now = local(DAY + timedelta(days=1), 9)
    past = client.get("/me/appointments", params={"tab": "past"})
    assert "已完成（2）" in past.text and "待就诊（0）" in past.text
    for appt, label in ((seen, "已就诊"), (missed, "爽约")):
        row = re.search(rf'data-appointment="{appt.id}">(.*?)</li>', past.text, re.S)
        assert row is not None and label in row.group(1)
    assert f'data-appointment="{seen.id}"' not in client.get("/me/appointments").text


def test_cancel_after_the_deadline_sends_the_patient_to_the_window(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    appt = clinic.book(db, fam.me.id, now=OPEN)
    clock.now = local(DAY, 7, 30)
    page = client.get(f"/me/appointments/{appt.id}")
    assert "取消预约</button>" not in page.text
    r = client.post(f"/me/appointments/{appt.id}/cancel")
    assert r.status_code == 409 and "请到窗口办理" in r.text
    db.refresh(appt)
    assert appt.status == "booked"


def test_other_accounts_cannot_see_or_cancel(client: TestClient, clock: Clock, clinic: Clinic,
                                             db: Session) -> None:
    stranger, _ = clinic.patient(db)
    appt = clinic.book(db, stranger.id, now=OPEN)
    sign_in_family(client, db)
    assert client.get(f"/me/appointments/{appt.id}").status_code == 403
    assert client.post(f"/me/appointments/{appt.id}/cancel").status_code == 403
    db.refresh(appt)
    assert appt.status == "booked"


def test_signed_out_visitors_are_sent_to_sms_sign_in(client: TestClient, clock: Clock,
                                                     clinic: Clinic) -> None:
    for path in ("/me/appointments", f"/book/slots/{clinic.schedule.slots[0].id}"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/sign-in?next={path}"
    # A form post after the session lapsed: a Chinese page with the way back to sign in.
    post = client.post("/me/appointments/1/cancel")
    assert post.status_code == 401 and "/sign-in?next=" in post.text


def test_bk11_phone_check_in_and_live_queue(client: TestClient, clock: Clock, clinic: Clinic,
                                            db: Session) -> None:
    fam = sign_in_family(client, db)
    other, _ = clinic.patient(db)
    first = clinic.book(db, other.id, now=OPEN)
    mine = clinic.book(db, fam.me.id, now=OPEN)
    clock.now = local(DAY, 7, 40)
    queue.check_in(db, principal=clinic.kiosk(), appointment_id=first.id, now=clock.now,
                   patient_id=other.id)
    r = client.post(f"/me/appointments/{mine.id}/check-in", follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "报到成功" in page.text and 'data-ahead="1"' in page.text
    fragment = client.get(f"/me/appointments/{mine.id}/queue", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and 'hx-trigger="every 15s"' in fragment.text
    # 20 minutes until the 08:00 clinic begins, then one patient of 6 minutes ahead.
    assert "预计等候约 <strong>26</strong> 分钟" in fragment.text
    queue.call_next(db, principal=clinic.doctor_principal, schedule_id=clinic.schedule.id,
                    now=local(DAY, 8))
    queue.call_next(db, principal=clinic.doctor_principal, schedule_id=clinic.schedule.id,
                    now=local(DAY, 8, 6))
    called = client.get(f"/me/appointments/{mine.id}/queue", headers={"HX-Request": "true"})
    assert "请进入诊室" in called.text and "hx-trigger" not in called.text


def test_bk6_stop_clinic_offer_accepted_in_one_tap(client: TestClient, clock: Clock,
                                                   clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    clinic.session(db, day=DAY + timedelta(days=1))
    appt = clinic.book(db, fam.me.id, now=OPEN)
    result = stopclinic.stop_clinic(db, principal=clinic.window,
                                    schedule_id=clinic.schedule.id, reason="医生外出会诊",
                                    now=OPEN)
    offer = result.offers[0]
    page = client.get("/me/appointments")
    assert f'data-offer="{offer.id}"' in page.text and "已为您保留" in page.text
    assert "原因：医生外出会诊" in page.text  # the patient is told why
    r = client.post(f"/me/offers/{offer.id}/accept", data={"slot_id": offer.held_slot_id},
                    follow_redirects=False)
    assert r.status_code == 303 and "flash=rebooked" in r.headers["location"]
    new = db.scalar(select(Appointment).where(Appointment.rebooked_from_id == appt.id))
    assert new is not None and new.status == "booked" and new.slot_id == offer.held_slot_id
    gone = client.post(f"/me/offers/{offer.id}/decline")
    assert gone.status_code == 409 and "已失效" in gone.text


def full_session(db: Session, clinic: Clinic) -> tuple[Schedule, list[Appointment]]:
    """A session two days ahead whose online slots other patients have all booked."""
    small = clinic.session(db, day=DAY + timedelta(days=2), capacity=2)
    holders = []
    for _ in service.free_slots(db, schedule=small, channel=Channel.web, now=OPEN):
        p, pp = clinic.patient(db)
        holders.append(booking.book(db, principal=pp, patient_id=p.id, channel=Channel.web,
                                    schedule_id=small.id, now=OPEN))
    return small, holders


def test_bk6_waitlist_join_then_accept_the_freed_slot(client: TestClient, clock: Clock,
                                                      clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    small, holders = full_session(db, clinic)
    full = client.get(f"/book/schedules/{small.id}")
    assert "已约满" in full.text and "加入候补" in full.text
    r = client.post("/me/waitlist", data={"schedule_id": small.id, "patient_id": fam.kid.id},
                    follow_redirects=False)
    assert r.status_code == 303
    assert "候补中" in client.get("/me/appointments").text
    booking.cancel(db, principal=clinic.window, appointment_id=holders[0].id, now=OPEN)
    page = client.get("/me/appointments")
    assert "候补成功" in page.text
    entry_id = re.search(r'data-wait="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    done = client.post(f"/me/waitlist/{entry_id}/accept", follow_redirects=False)
    assert done.status_code == 303
    assert db.scalar(select(Appointment).where(Appointment.patient_id == fam.kid.id,
                                               Appointment.schedule_id == small.id)) is not None


def test_bk6_the_page_shows_the_place_in_line_and_a_patient_can_leave_the_waitlist(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    small, _holders = full_session(db, clinic)
    ahead, pa = clinic.patient(db)
    waitlist.join(db, principal=pa, patient_id=ahead.id, schedule_id=small.id,
                  channel=Channel.web, now=OPEN)
    client.post("/me/waitlist", data={"schedule_id": small.id, "patient_id": fam.kid.id})
    page = client.get("/me/appointments").text
    assert "排在第 2 位，前面还有 1 人" in page
    entry_id = re.search(r'data-wait="(\d+)"', page).group(1)  # type: ignore[union-attr]
    r = client.post(f"/me/waitlist/{entry_id}/cancel", follow_redirects=False)
    assert r.status_code == 303 and "flash=left" in r.headers["location"]
    after = client.get(r.headers["location"]).text
    assert "已取消候补" in after and "data-wait=" not in after
    again = client.post(f"/me/waitlist/{entry_id}/cancel")
    assert again.status_code == 409 and "该候补已结束" in again.text


def test_bk6_a_wait_a_stop_clinic_ended_says_so_on_the_page(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    """The entry does not just vanish: the page says the session was stopped, until it
    would have taken place; an entry the patient left says nothing more."""
    fam = sign_in_family(client, db)
    small, _holders = full_session(db, clinic)
    client.post("/me/waitlist", data={"schedule_id": small.id, "patient_id": fam.kid.id})
    stopclinic.stop_clinic(db, principal=clinic.window, schedule_id=small.id,
                           reason="专家外出会诊", now=OPEN)
    db.commit()
    page = client.get("/me/appointments").text
    card = re.search(r'<section class="card" data-wait-closed="\d+">(.*?)</section>', page, re.S)
    assert card is not None and "已停诊，候补已结束" in card.group(1)
    assert "data-wait=" not in page and "取消候补" not in card.group(1)
    clock.now = small.end_at + timedelta(minutes=1)
    assert "data-wait-closed" not in client.get("/me/appointments").text


def test_waitlist_refusal_is_shown_beside_the_patient(client: TestClient, clock: Clock,
                                                      clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    r = client.post("/me/waitlist", data={"schedule_id": clinic.schedule.id,
                                          "patient_id": fam.me.id})
    assert r.status_code == 409 and 'data-field="patient_id"' in r.text
    assert "仍有号源" in r.text
    for typed in ("²", "１２", "2147483648"):
        r = client.post("/me/waitlist", data={"schedule_id": clinic.schedule.id,
                                              "patient_id": typed})
        assert r.status_code == 422 and "请选择就诊人" in r.text, typed


def test_bk1_inside_wechat_the_portal_books_through_the_wechat_channel(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    fam = sign_in_family(client, db)
    wechat = {"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0.49 NetType/WIFI"}
    slot_id = re.findall(r'data-slot="(\d+)"', client.get(
        f"/book/schedules/{clinic.schedule.id}", headers=wechat).text)[0]
    form = client.get(f"/book/slots/{slot_id}", headers=wechat)
    r = client.post(f"/book/slots/{slot_id}", headers=wechat, follow_redirects=False,
                    data={"patient_id": str(fam.me.id), "form_token": form_token(form.text)})
    assert r.status_code == 303
    appt = db.scalar(select(Appointment).where(Appointment.patient_id == fam.me.id))
    assert appt is not None and appt.channel == "wechat" and appt.pool == "online"


def test_bk6_a_substituted_session_books_under_the_substitute_a_stopped_one_offers_nothing(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    other = make_practitioner(db, clinic.hospital, clinic.department, name="替班医生")
    stopclinic.substitute(db, principal=clinic.window, schedule_id=clinic.schedule.id,
                          practitioner_id=other.id, reason="原医生出差", now=OPEN)
    times = client.get(f"/book/schedules/{clinic.schedule.id}")
    assert "data-slot=" in times.text and "替诊" in times.text and "替班医生" in times.text
    day = client.get(f"/book/hospitals/{clinic.hospital.code}/{clinic.department.code}",
                     params={"day": DAY.isoformat()})
    assert "替诊" in day.text and "暂停预约" not in day.text and "余" in day.text
    later = clinic.session(db, day=DAY + timedelta(days=1))
    stopclinic.stop_clinic(db, principal=clinic.window, schedule_id=later.id, reason="停诊",
                           now=OPEN)
    stopped = client.get(f"/book/schedules/{later.id}")
    assert "data-slot=" not in stopped.text and "已停诊" in stopped.text
    assert "加入候补" not in stopped.text


def test_overnight_the_portal_says_when_booking_reopens_instead_of_offering_times(
        client: TestClient, clock: Clock, clinic: Clinic, db: Session) -> None:
    """From the next-day cutoff (20:00 the evening before) to the same-day opening (07:00)
    every booking of the day is refused, so the pages offer no time that would be refused."""
    sign_in_family(client, db)
    clock.now = local(DAY - timedelta(days=1), 21)
    day = client.get(f"/book/hospitals/{clinic.hospital.code}/{clinic.department.code}",
                     params={"day": DAY.isoformat()})
    strip = re.search(rf'data-day="{DAY.isoformat()}">(.*?)</a>', day.text, re.S)
    assert strip is not None and "07:00放号" in strip.group(1) and "余" not in strip.group(1)
    row = re.search(rf'data-schedule="{clinic.schedule.id}">(.*?)</a>', day.text, re.S)
    assert row is not None and "07:00放号" in row.group(1)
    times = client.get(f"/book/schedules/{clinic.schedule.id}")
    assert "data-slot=" not in times.text and "07:00" in times.text
    assert "加入候补" not in times.text and "已约满" not in times.text
    clock.now = local(DAY, 7)
    assert "data-slot=" in client.get(f"/book/schedules/{clinic.schedule.id}").text
