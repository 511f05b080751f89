"""Exam use cases: the catalogue an exam centre edits, the free slots and walks the
planner reads, doctors' orders, and the planner's proposals. Rooms and their calendars
are kept in ``resources``; booking a plan lives in ``booking``.

Services take the session and never commit; the request or CLI edge does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.exams import batch, followup, planner
from onetrip.exams import rules as R
from onetrip.exams.catalogue import (
    CatalogueInvalid,
    catalogue_as_data,
    default_catalogue_data,
    parse_catalogue,
)
from onetrip.exams.errors import (
    CatalogueRejected,
    CreatinineRequired,
    FastingInvalid,
    OrderNotFound,
    ResourceInvalid,
    UnknownExam,
)
from onetrip.exams.models import (
    CatalogueExam,
    CatalogueRule,
    ExamBooking,
    ExamOrder,
    ExamResource,
    ExamSlot,
    ExamWalk,
)
from onetrip.identity import audit
from onetrip.identity import service as identity_service
from onetrip.identity.service import Principal
from onetrip.scheduling.rules import Channel

PLAN_DAYS = 5  # the planner looks this many calendar days ahead, after any days of preparation


# --- catalogue ---------------------------------------------------------------------------


def record(db: Session, by: Principal | None, action: str, **detail: object) -> None:
    if by is not None:
        audit.record(db, by, action=action, patient_id=None, detail=dict(detail))


def _rows_data(db: Session, hospital_id: int) -> dict[str, Any] | None:
    exams = list(db.scalars(select(CatalogueExam).where(
        CatalogueExam.hospital_id == hospital_id, CatalogueExam.active)
        .order_by(CatalogueExam.id)))
    if not exams:
        return None
    rows = list(db.scalars(select(CatalogueRule).where(CatalogueRule.hospital_id == hospital_id)
                           .order_by(CatalogueRule.id)))

    def rule(r: CatalogueRule) -> dict[str, Any]:
        out: dict[str, Any] = {"first": r.first, "second": r.second, "reason": r.reason,
                               "source": r.source}
        if r.kind == "order":
            out["gap_minutes"] = r.gap_minutes
            if r.reverse_minutes is not None:
                out["reverse_minutes"] = r.reverse_minutes
        return out

    return {"exam": [{**e.spec, "code": e.code, "name": e.name, "modality": e.modality}
                     for e in exams],
            "order": [rule(r) for r in rows if r.kind == "order"],
            "not_same_day": [rule(r) for r in rows if r.kind == "not_same_day"]}


def catalogue(db: Session, hospital_id: int) -> R.Catalogue:
    """The hospital's catalogue as edited by its exam centre (the packaged one until then);
    a stored one that fails the checks (saved before they were tightened) is refused with
    its fault named (catalogue_invalid) until the centre replaces it."""
    data = _rows_data(db, hospital_id)
    if data is None:
        return parse_catalogue(default_catalogue_data())
    try:
        return parse_catalogue(data)
    except CatalogueInvalid as exc:
        raise CatalogueRejected(f"本院保存的检查目录有误，请重新导入：{exc}") from exc


def readable_catalogue(db: Session, hospital_id: int) -> dict[str, Any]:
    """The catalogue as the centre reads and exports it: as stored even when it fails the
    checks (one saved before they were tightened), so that it can be mended and imported
    again; the planner still refuses it (``catalogue``)."""
    try:
        return catalogue_as_data(catalogue(db, hospital_id))
    except CatalogueRejected:
        return _rows_data(db, hospital_id) or default_catalogue_data()


def install_catalogue(db: Session, *, hospital_id: int, data: object,
                      by: Principal | None = None) -> R.Catalogue:
    """Replace the hospital's catalogue (exams and rules) with ``data`` (the packaged one is
    ``default_catalogue_data()``); one the planner could not use, or not a catalogue at
    all, is refused and nothing changes."""
    try:
        cat = parse_catalogue(data)
    except CatalogueInvalid as exc:
        raise CatalogueRejected(str(exc)) from exc
    db.execute(delete(CatalogueRule).where(CatalogueRule.hospital_id == hospital_id))
    db.execute(delete(CatalogueExam).where(CatalogueExam.hospital_id == hospital_id))
    as_data = catalogue_as_data(cat)
    for e in as_data["exam"]:
        spec = {k: v for k, v in e.items() if k not in ("code", "name", "modality")}
        db.add(CatalogueExam(hospital_id=hospital_id, code=e["code"], name=e["name"],
                             modality=e["modality"], spec=spec,
                             updated_by=by.actor[:100] if by else "system"))
    for kind in ("order", "not_same_day"):
        for r in as_data[kind]:
            db.add(CatalogueRule(hospital_id=hospital_id, kind=kind, first=r["first"],
                                 second=r["second"], gap_minutes=r.get("gap_minutes", 0),
                                 reverse_minutes=r.get("reverse_minutes"),
                                 reason=r["reason"], source=r["source"]))
    db.flush()
    record(db, by, "exam_catalogue.install", hospital_id=hospital_id, exams=len(cat.exams),
            rules=len(cat.orders) + len(cat.bans))
    return cat


def edit_catalogue(db: Session, *, hospital_id: int, exam: dict[str, Any] | None = None,
                   rule: dict[str, Any] | None = None, rule_kind: str = "order",
                   remove_rule: tuple[str, str] | None = None,
                   by: Principal | None = None) -> R.Catalogue:
    """Change one exam's preparation, add or replace one rule, or remove one; the whole
    catalogue is checked again (unknown exams, a cycle of orders) before it is stored."""
    data = catalogue_as_data(catalogue(db, hospital_id))
    if exam is not None:
        others = [e for e in data["exam"] if e["code"] != exam.get("code")]
        data["exam"] = [*others, exam]
    if rule is not None or remove_rule is not None:
        pair = remove_rule or (str(rule["first"]), str(rule["second"]))  # type: ignore[index]
        for kind in ("order", "not_same_day"):
            data[kind] = [r for r in data[kind] if (r["first"], r["second"]) != pair
                          or (rule is not None and kind != rule_kind)]
        if rule is not None:
            data[rule_kind].append(rule)
    return install_catalogue(db, hospital_id=hospital_id, data=data, by=by)


# --- what the planner sees of the rooms --------------------------------------------------


def site(db: Session, hospital_id: int) -> R.Site:
    rows = db.scalars(select(ExamWalk).where(ExamWalk.hospital_id == hospital_id))
    return R.Site(walk={(r.from_building, r.to_building): r.minutes for r in rows})


def free_slots(db: Session, *, hospital_id: int, start: datetime, end: datetime
               ) -> list[R.FreeSlot]:
    """Slots with room left between ``start`` and ``end``, as the planner sees them."""
    rows = db.execute(
        select(ExamSlot, ExamResource).join(ExamResource, ExamSlot.resource_id == ExamResource.id)
        .where(ExamSlot.hospital_id == hospital_id, ExamSlot.status == "open",
               ExamSlot.start_at >= start, ExamSlot.start_at < end,
               ExamSlot.booked < ExamSlot.capacity, ExamResource.active)
        .order_by(ExamSlot.start_at, ExamSlot.id))
    return [R.FreeSlot(s.id, r.id, frozenset(r.exam_codes), r.building, s.start_at,
                       int((s.end_at - s.start_at).total_seconds() // 60), s.capacity - s.booked)
            for s, r in rows]


#: The days a calendar holds: outside them a date is a slip of the keyboard, and neither the
#: time zone arithmetic nor the database holds the years 1 and 9999 in every zone.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2200, 12, 31)


def check_days(days: Iterable[date]) -> None:
    """Refuse (resource_invalid) a slot, calendar or follow-up on a day no calendar holds;
    datetimes give their day in the zone they came in, before any conversion."""
    if any(not FIRST_DAY <= d <= LAST_DAY for d in days):
        raise ResourceInvalid(f"日期须在{FIRST_DAY.year}年至{LAST_DAY.year}年之间")


# --- orders ------------------------------------------------------------------------------


def place_order(db: Session, *, principal: Principal, hospital_id: int, patient_id: int,
                exam_code: str, now: datetime, renal_disease: bool = False,
                diabetes: bool = False, creatinine_on: date | None = None,
                needed_for_followup: bool = False, followup_opens: datetime | None = None,
                followup_closes: datetime | None = None, followup_building: str = "",
                followup_department_id: int | None = None,
                followup_practitioner_id: int | None = None, note: str = "") -> ExamOrder:
    """A doctor's order; an exam the catalogue lacks, or iodine contrast for a patient who
    needs a creatinine result without a recent one, is refused. A follow-up department
    (and doctor) makes the follow-up an appointment booked with the plan."""
    cat = catalogue(db, hospital_id)
    exam = cat.exams.get(exam_code)
    if exam is None:
        raise UnknownExam(detail={"exam_code": exam_code})
    patient = identity_service.access_patient(db, principal, patient_id, action="exam.order")
    today = now.astimezone(get_settings().tz).date()
    facts = R.PatientFacts(R.age_on(patient.birth_date, today), renal_disease, diabetes,
                           creatinine_on)
    if not R.creatinine_ok(exam, facts, today):
        raise CreatinineRequired(detail={"exam_code": exam_code, "age": facts.age})
    check_days(t.date() for t in (followup_opens, followup_closes) if t is not None)
    if (followup_opens is None) != (followup_closes is None) or (
            followup_opens and followup_closes and followup_closes <= followup_opens):
        raise ResourceInvalid("复诊时段须同时给出开始与结束，且结束晚于开始")
    followup.check_session(db, hospital_id=hospital_id, department_id=followup_department_id,
                           practitioner_id=followup_practitioner_id)
    if followup_department_id is not None and followup_opens is None:
        raise ResourceInvalid("预约复诊号须给出复诊时段")
    row = ExamOrder(hospital_id=hospital_id, patient_id=patient.id, exam_code=exam_code,
                    ordered_by=principal.actor[:100], ordered_at=now, note=note[:500],
                    renal_disease=renal_disease, diabetes=diabetes, creatinine_on=creatinine_on,
                    needed_for_followup=needed_for_followup, followup_opens=followup_opens,
                    followup_closes=followup_closes, followup_building=followup_building,
                    followup_department_id=followup_department_id,
                    followup_practitioner_id=followup_practitioner_id)
    db.add(row)
    db.flush()
    return row


#: How far back a patient's word on their last meal is taken.
FASTING_WITHIN = timedelta(hours=24)
#: How long it holds once recorded: the plan is made and booked while the patient is there
#: and still fasting, not later in the day or another day (they may have eaten since).
FASTING_HOLDS = timedelta(hours=2)


def record_fasting(db: Session, *, principal: Principal, hospital_id: int, patient_id: int,
                   since: datetime, now: datetime) -> list[ExamOrder]:
    """The patient has eaten nothing since ``since`` (staff asked): kept on their pending
    orders, so for the next FASTING_HOLDS their fasting exams can be that morning (EX-2:
    one trip). A time to come, or more than a day ago, is refused and nothing changes."""
    if since.tzinfo is None or not now - FASTING_WITHIN <= since <= now:
        raise FastingInvalid(detail={"field": "since"})
    patient = identity_service.access_patient(db, principal, patient_id, action="exam.plan")
    orders = pending_orders(db, hospital_id=hospital_id, patient_id=patient.id)
    if not orders:
        raise OrderNotFound("该患者没有待预约的检查申请")
    for o in orders:
        o.fasting_since, o.fasting_noted_at = since, now
    audit.record(db, principal, action="exam.fasting", patient_id=patient.id,
                 detail={"since": since.isoformat(), "orders": [o.id for o in orders]})
    db.flush()
    return orders


def last_meal(db: Session, *, patient_id: int, hospital_id: int, now: datetime
              ) -> datetime | None:
    """The patient's last meal as staff recorded it in the last FASTING_HOLDS (the latest
    time given, whichever of the patient's orders carries it); None when nothing recent."""
    return db.scalar(select(func.max(ExamOrder.fasting_since)).where(
        ExamOrder.patient_id == patient_id, ExamOrder.hospital_id == hospital_id,
        ExamOrder.fasting_noted_at >= now - FASTING_HOLDS, ExamOrder.fasting_noted_at <= now))


def access_order(db: Session, order_id: int, hospital_id: int | None) -> ExamOrder:
    row = db.get(ExamOrder, order_id)
    if row is None or (hospital_id is not None and row.hospital_id != hospital_id):
        raise OrderNotFound(detail={"order_id": order_id})
    return row


def pending_orders(db: Session, *, hospital_id: int, patient_id: int | None = None
                   ) -> list[ExamOrder]:
    stmt = select(ExamOrder).where(ExamOrder.hospital_id == hospital_id,
                                   ExamOrder.status == "pending")
    if patient_id is not None:
        stmt = stmt.where(ExamOrder.patient_id == patient_id)
    return list(db.scalars(stmt.order_by(ExamOrder.ordered_at, ExamOrder.id)))


def request_for(db: Session, orders: Sequence[ExamOrder], now: datetime,
                channel: Channel = Channel.clinic) -> R.PatientRequest:
    """One patient's pending orders as the planner's request (facts from the orders); a
    follow-up in a named outpatient session may start only where ``channel`` can book."""
    tz = get_settings().tz
    patient = identity_service.get_patient(db, orders[0].patient_id)
    assert patient is not None
    creat = [o.creatinine_on for o in orders if o.creatinine_on is not None]
    facts = R.PatientFacts(R.age_on(patient.birth_date, now.astimezone(tz).date()),
                           any(o.renal_disease for o in orders), any(o.diabetes for o in orders),
                           max(creat) if creat else None,
                           last_meal(db, patient_id=patient.id,
                                     hospital_id=orders[0].hospital_id, now=now))
    windows = [o for o in orders if o.followup_opens and o.followup_closes]
    visit = None
    if windows:
        session = followup.session_order(orders)
        w = session or windows[0]
        assert w.followup_opens is not None and w.followup_closes is not None
        starts = None if session is None else tuple(sorted({
            s.start_at for s in followup.free_slots(db, session, channel=channel, now=now)}))
        kept = followup.booked(db, patient_id=patient.id, opens=w.followup_opens,
                               closes=w.followup_closes)
        if kept is not None:  # the follow-up an exam booked earlier has
            starts = (kept[0],)
        visit = R.FollowUp(w.followup_opens, w.followup_closes,
                           w.followup_building or "门诊楼", starts)
    items = tuple(R.OrderItem(o.id, o.exam_code, o.needed_for_followup) for o in orders)
    return R.PatientRequest(patient.id, facts, items, now, visit,
                            held_visits(db, patient_id=patient.id,
                                        hospital_id=orders[0].hospital_id, now=now))


#: Booked exams this far back still bear on new ones (barium waits up to 7 days).
HELD_DAYS = 8


def held_visits(db: Session, *, patient_id: int, hospital_id: int, now: datetime
                ) -> tuple[R.Visit, ...]:
    """The patient's exams booked (or done) at the hospital from ``HELD_DAYS`` ago on, as
    fixed visits the planner and the validator keep the rules with."""
    cat = catalogue(db, hospital_id)
    rows = db.scalars(select(ExamBooking).where(
        ExamBooking.patient_id == patient_id, ExamBooking.hospital_id == hospital_id,
        ExamBooking.status.in_(("booked", "arrived", "done")),
        ExamBooking.start_at > now - timedelta(days=HELD_DAYS))
        .order_by(ExamBooking.start_at))
    out = []
    for b in rows:
        exam = cat.exams.get(b.exam_code)
        if exam is None:  # taken out of the catalogue since: no rule to keep with it
            continue
        after = timedelta(minutes=exam.after_minutes)
        out.append(R.Visit(b.order_id, b.exam_code, b.slot_id, b.resource_id,
                           b.resource.building, b.start_at, b.end_at, b.end_at + after))
    return tuple(out)


def plan_end(cat: R.Catalogue, codes: Iterable[str], now: datetime) -> datetime:
    """How far ahead the free slots for these exams are looked for: PLAN_DAYS after the
    longest preparation at home among them (two weeks without iodine before a thyroid
    scan), so that an exam with such a preparation finds its slots too."""
    return now + timedelta(days=PLAN_DAYS + R.longest_prep(cat, codes))


def propose(db: Session, *, hospital_id: int, patient_id: int, now: datetime,
            order_ids: Sequence[int] | None = None,
            principal: Principal | None = None) -> R.Itinerary:
    """EX-2: the planner's itinerary for a patient's pending orders (nothing is booked);
    a follow-up appointment where ``principal`` could book it."""
    orders = [o for o in pending_orders(db, hospital_id=hospital_id, patient_id=patient_id)
              if order_ids is None or o.id in order_ids]
    if not orders:
        raise OrderNotFound("该患者没有待预约的检查申请")
    req = request_for(db, orders, now, followup.channel_for(principal))
    cat = catalogue(db, hospital_id)
    slots = free_slots(db, hospital_id=hospital_id, start=now,
                       end=plan_end(cat, [o.exam_code for o in orders], now))
    return planner.plan_patient(cat, site(db, hospital_id), get_settings().tz, req, slots)


def batch_slots(cat: R.Catalogue, slots: Sequence[R.FreeSlot], now: datetime
                ) -> list[R.FreeSlot]:
    """The slots a batch plans over: each room's within PLAN_DAYS after its exams'
    longest preparation, so one thyroid scan waiting does not widen every patient's model
    to three weeks."""
    return [s for s in slots if s.start < plan_end(cat, s.exam_codes, now)]


def propose_batch(db: Session, *, hospital_id: int, now: datetime
                  ) -> list[tuple[R.PatientRequest, R.Itinerary]]:
    """Re-plan every patient's pending orders together over the same free slots."""
    by_patient: dict[int, list[ExamOrder]] = {}
    for o in pending_orders(db, hospital_id=hospital_id):
        by_patient.setdefault(o.patient_id, []).append(o)
    reqs = [request_for(db, orders, now) for orders in by_patient.values()]
    cat = catalogue(db, hospital_id)
    slots = batch_slots(cat, free_slots(db, hospital_id=hospital_id, start=now, end=plan_end(
        cat, [o.exam_code for orders in by_patient.values() for o in orders], now)), now)
    its = batch.plan_batch(cat, site(db, hospital_id), get_settings().tz, reqs, slots,
                           work_limit=0.2)
    return list(zip(reqs, its, strict=True))


def itinerary_lines(db: Session, *, patient_id: int, day: date) -> list[str]:
    """The patient's exams of one day as lines for the paper slip (RM-1), in time order:
    time, exam, place, preparation; then the follow-up if one is planned."""
    tz = get_settings().tz
    rows = db.scalars(select(ExamBooking).where(
        ExamBooking.patient_id == patient_id, ExamBooking.status.in_(("booked", "arrived")))
        .order_by(ExamBooking.start_at))
    lines, followups = [], set()
    cats: dict[int, R.Catalogue] = {}
    for b in rows:
        if b.start_at.astimezone(tz).date() != day:
            continue
        cat = cats.setdefault(b.hospital_id, catalogue(db, b.hospital_id))
        exam = cat.exams.get(b.exam_code)
        name = exam.name if exam else b.exam_code
        place = f"{b.resource.building}{b.resource.room} {b.resource.name}".strip()
        lines.append(f"{b.start_at.astimezone(tz):%H:%M} {name}｜{place}｜"
                     f"{exam.instruction if exam else ''}")
        if b.followup_at is not None:
            followups.add((b.followup_at, followup_title(db, b)))
    lines += [f"{at.astimezone(tz):%H:%M} {title}" for at, title in sorted(followups)]
    return lines


def followup_title(db: Session, b: ExamBooking) -> str:
    """The follow-up as the slip and the timeline name it: booked in a session, or a
    return visit under the day's registration."""
    if b.followup_appointment_id is None:
        return "门诊复诊（带检查结果，凭当日挂号）"
    return f"门诊复诊（已预约 {followup.session_label(db, b.order)}，带检查结果）"


def itinerary_from(db: Session, *, patient_id: int, picks: Sequence[tuple[int, int]],
                   followup_at: datetime | None = None) -> tuple[int, R.Itinerary]:
    """An itinerary from (order, slot) picks, as the console adjusted it: its hospital and
    visits. Whether it keeps the rules is for the booking to check."""
    visits = []
    hospital_ids = set()
    for order_id, slot_id in picks:
        order = access_order(db, order_id, None)
        slot = db.get(ExamSlot, slot_id)
        if order.patient_id != patient_id or slot is None or slot.hospital_id != order.hospital_id:
            raise OrderNotFound("检查申请或号源不属于该患者所在医院", detail={
                "order_id": order_id, "slot_id": slot_id})
        hospital_ids.add(order.hospital_id)
        exam = catalogue(db, order.hospital_id).exams.get(order.exam_code)
        if exam is None:
            raise UnknownExam(detail={"exam_code": order.exam_code})
        free = R.FreeSlot(slot.id, slot.resource_id, frozenset(slot.resource.exam_codes),
                          slot.resource.building, slot.start_at,
                          int((slot.end_at - slot.start_at).total_seconds() // 60))
        visits.append(R.visit_for(free, R.OrderItem(order.id, order.exam_code), exam))
    if len(hospital_ids) != 1:
        raise OrderNotFound("一次只能预约同一医院的检查")
    return hospital_ids.pop(), R.Itinerary(patient_id, sorted(visits, key=lambda v: v.start),
                                           followup_at)
