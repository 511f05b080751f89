"""Booking indicators (预约诊疗指标), computed from the appointments and slots themselves, for
the hospital and the regulator alike (RE-2).

* 门诊患者预约诊疗率 (国考 22; BK-9): booked visits / all outpatient visits. A visit is an
  appointment checked in (``arrived`` or ``fulfilled``). It is booked unless it was an
  on-site registration: taken at the window or a kiosk on the clinic day itself. A booking
  made at the window for a later day, a same-day online booking, a doctor's follow-up, a
  referral and a stop-clinic's rebooking all count as booked, as the national definition
  counts every channel.
* 门诊患者预约后平均等待时间 (国考 23): the minutes from check-in to being called into the
  room, over the booked visits called. A patient who came before their slot waits from the
  slot's start: coming early is not the hospital's wait.
* 爽约率 (BK-6): no-shows / (visits + no-shows).
* 线上号源占比 (BK-2, at least 80%): the share of the period's slots made in the online and
  referral pools.
* 平均提前预约天数 (BK-9, mid- and long-term booking): how far ahead the booked visits were
  booked, in days.
* 自助机配置 (BK-10, at least one kiosk per 50,000 visits): a hospital's kiosks in service
  at the end of the period (its kiosk tokens, one per device, created by then and not
  revoked) against the kiosks its visits need, the period's visits scaled to a year.

Every figure is a sum over rows of the period (``day`` from ``start`` to ``end``), grouped
by hospital and department in the database; a region's and a hospital's figures are sums
of their departments'.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import date, time, timedelta
from typing import Any, cast

from sqlalchemy import Date, Table, and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import UTCDateTime
from onetrip.errors import InvalidInput, PermissionDenied
from onetrip.identity.models import ApiToken
from onetrip.identity.rules import Role
from onetrip.identity.service import Principal
from onetrip.org import service as org_service
from onetrip.org.models import Department, Hospital
from onetrip.scheduling import scope
from onetrip.scheduling.models import Appointment, Schedule, Slot
from onetrip.scheduling.rules import Channel, Pool, at_local

#: Who sees the indicators: a department admin its own departments, a hospital admin its
#: hospital, the regional admin and the regulator every hospital.
VIEWERS = (Role.department_admin, Role.hospital_admin, Role.regional_admin, Role.regulator)
REGIONAL = (Role.regional_admin, Role.regulator)
#: On the clinic day, these channels register on site (现场挂号): not a booking.
ON_SITE = (Channel.window.value, Channel.kiosk.value)
#: The pools that count as bookable online (BK-2: referral slots are online ones kept
#: for the primary-care clinics first).
ONLINE_POOLS = (Pool.online.value, Pool.referral.value)
ONLINE_SHARE_FLOOR = 0.8
#: BK-10: at least one kiosk for every 50,000 outpatient visits a year.
VISITS_PER_KIOSK = 50_000
_APPOINTMENT = cast(Table, Appointment.__table__)
_SCHEDULE = cast(Table, Schedule.__table__)
_SLOT = cast(Table, Slot.__table__)
MAX_DAYS = 366
YEARS = range(1900, 2201)


class IndicatorPeriodInvalid(InvalidInput):
    code = "indicator_period_invalid"
    message = "统计期间有误：起止日期应为 2026-10-01 这样的日期，起不晚于止，且不超过366天"


@dataclass(frozen=True)
class Figures:
    """The counts and sums one department (or a hospital, or the region) adds up to."""

    visits: int = 0
    booked_visits: int = 0
    noshows: int = 0
    called: int = 0  # booked visits called into the room (the wait's denominator)
    wait_minutes: float = 0.0
    lead_days: float = 0.0  # summed over the booked visits
    slots: int = 0
    online_slots: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                          for f in fields(self)})

    @property
    def appointment_rate(self) -> float | None:
        return self.booked_visits / self.visits if self.visits else None

    @property
    def average_wait_minutes(self) -> float | None:
        return self.wait_minutes / self.called if self.called else None

    @property
    def noshow_rate(self) -> float | None:
        due = self.visits + self.noshows
        return self.noshows / due if due else None

    @property
    def online_share(self) -> float | None:
        return self.online_slots / self.slots if self.slots else None

    @property
    def average_lead_days(self) -> float | None:
        return self.lead_days / self.booked_visits if self.booked_visits else None

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None, digits: int) -> float | None:
            return None if x is None else round(x, digits)
        return {"visits": self.visits, "booked_visits": self.booked_visits,
                "appointment_rate": r(self.appointment_rate, 4),
                "average_wait_minutes": r(self.average_wait_minutes, 1),
                "noshows": self.noshows, "noshow_rate": r(self.noshow_rate, 4),
                "slots": self.slots, "online_slots": self.online_slots,
                "online_share": r(self.online_share, 4),
                "online_share_met": None if self.online_share is None
                else self.online_share >= ONLINE_SHARE_FLOOR,
                "average_lead_days": r(self.average_lead_days, 1)}


@dataclass(frozen=True)
class HospitalFigures:
    hospital: Hospital
    total: Figures
    departments: list[tuple[Department, Figures]]
    kiosks: int = 0  # in service at the end of the period (BK-10)
    kiosks_needed: int = 0

    @property
    def kiosks_met(self) -> bool:
        return self.kiosks >= self.kiosks_needed

    def kiosk_dict(self) -> dict[str, Any]:
        return {"kiosks": self.kiosks, "kiosks_needed": self.kiosks_needed,
                "kiosks_met": self.kiosks_met}


def kiosks_needed(visits: int, days: int) -> int:
    """BK-10: the kiosks ``visits`` in ``days`` days need, scaled to a year of 365 days."""
    return -(-visits * 365 // (days * VISITS_PER_KIOSK))


def period(start: str | None, end: str | None, month: str | None = None) -> tuple[date, date]:
    """The days from ``start`` to ``end`` (2026-10-01, both included), or a whole ``month``
    (2026-10) when no days are given; raises IndicatorPeriodInvalid."""
    try:
        if month and not (start or end):
            first = date.fromisoformat(f"{month}-01")
            if first.year not in YEARS:
                raise ValueError(month)
            first_of_next = (first + timedelta(days=31)).replace(day=1)
            return first, first_of_next - timedelta(days=1)
        days = (date.fromisoformat(start or ""), date.fromisoformat(end or ""))
    except ValueError as exc:
        raise IndicatorPeriodInvalid(detail={"from": start, "to": end, "month": month}) from exc
    if days[0] > days[1] or (days[1] - days[0]).days >= MAX_DAYS or \
            not {days[0].year, days[1].year} <= set(YEARS):
        raise IndicatorPeriodInvalid(detail={"from": start, "to": end})
    return days


def viewable(db: Session, principal: Principal, code: str | None
             ) -> tuple[list[Hospital], frozenset[int] | None]:
    """The hospitals (one if ``code`` names it) and departments (None: all) a principal
    may see the indicators of; raises PermissionDenied or HospitalNotFound."""
    if principal.role in REGIONAL:
        if code:
            return [org_service.access_hospital(db, code)], None
        return org_service.list_hospitals(db), None
    if principal.role not in VIEWERS or principal.hospital_id is None:
        raise PermissionDenied("只有科室、医院和区域管理员及卫健委可以查看预约诊疗指标")
    hospital = db.get_one(Hospital, principal.hospital_id)
    if code and code != hospital.code:
        raise PermissionDenied("只能查看本院的预约诊疗指标")
    return [hospital], scope.managed_departments(db, principal)


def days_gone_by(start: date, end: date, today: date | None) -> int:
    """The days of the period that have had their visits: up to ``today`` while it runs."""
    last = today if today is not None and start <= today < end else end
    return (last - start).days + 1


def figures(db: Session, hospitals: list[Hospital], start: date, end: date,
            departments: frozenset[int] | None = None,
            today: date | None = None) -> list[HospitalFigures]:
    """Each hospital's figures for the days ``start`` to ``end``, with its departments'
    (only ``departments``, when given), in the order given. ``today`` (local) scales a
    period still running to the days gone by (BK-10's visits a year)."""
    ids = [h.id for h in hospitals]
    per: dict[tuple[int, int], Figures] = defaultdict(Figures)
    for key, f in (*_visits(db, ids, start, end, departments),
                   *_slots(db, ids, start, end, departments)):
        per[key] = per[key] + f
    names = {d.id: d for d in db.scalars(select(Department).where(
        Department.id.in_({dep for _h, dep in per})))} if per else {}
    kiosks = _kiosks(db, ids, end)
    # A hospital's kiosks serve all its visits, whichever departments the viewer sees.
    visits: dict[int, int] = defaultdict(int)
    for (hid, _dep), f in (_visits(db, ids, start, end, None) if departments is not None
                           else per.items()):
        visits[hid] += f.visits
    out = []
    for h in hospitals:
        rows = sorted(((names[dep], f) for (hid, dep), f in per.items() if hid == h.id),
                      key=lambda row: row[0].code)
        total = sum((f for _d, f in rows), Figures())
        out.append(HospitalFigures(h, total, rows, kiosks.get(h.id, 0),
                                   kiosks_needed(visits[h.id],
                                                 days_gone_by(start, end, today))))
    return out


def region_total(rows: list[HospitalFigures]) -> Figures:
    """The figures of all the hospitals given together."""
    return sum((r.total for r in rows), Figures())


def region_kiosks(rows: list[HospitalFigures]) -> dict[str, Any]:
    """The hospitals' kiosks together; met only where every hospital meets its own."""
    return {"kiosks": sum(r.kiosks for r in rows),
            "kiosks_needed": sum(r.kiosks_needed for r in rows),
            "kiosks_met": all(r.kiosks_met for r in rows)}


def _kiosks(db: Session, ids: list[int], end: date) -> dict[int, int]:
    """Each hospital's kiosks in service as the period's last day ends."""
    until = at_local(end + timedelta(days=1), time(0), get_settings().tz)
    t = ApiToken
    return {hid: int(n) for hid, n in db.execute(
        select(t.hospital_id, func.count()).where(
            t.role == Role.kiosk.value, t.hospital_id.in_(ids), t.created_at < until,
            or_(t.revoked_at.is_(None), t.revoked_at >= until))
        .group_by(t.hospital_id)) if hid is not None}


def _minutes(db: Session, later: Any, earlier: Any) -> Any:
    """Minutes from ``earlier`` to ``later`` (both UTC times), in the database."""
    if db.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 60.0
    return (func.julianday(later) - func.julianday(earlier)) * 1440.0


def _days(start: date, end: date) -> Any:
    """The period's days with the UTC time each begins at, in the hospital's zone: a row
    booked on or after it was booked on the clinic day."""
    tz = get_settings().tz
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    # UNION ALL, not VALUES: SQLite cannot name a VALUES list's columns.
    return union_all(*(select(literal(d, Date).label("day"),
                              literal(at_local(d, time(0), tz), UTCDateTime()).label("opens"))
                       for d in days)).subquery("period_day")


def _visits(db: Session, ids: list[int], start: date, end: date,
            departments: frozenset[int] | None) -> list[tuple[tuple[int, int], Figures]]:
    a, s = _APPOINTMENT.c, _SCHEDULE.c
    days = _days(start, end)
    visit = a.status.in_(("arrived", "fulfilled")) & a.checked_in_at.is_not(None)
    # A stop-clinic's rebooking is made when the clinic stops: the booking it replaces was
    # made before, so it counts as booked whenever it was moved.
    on_site = a.channel.in_(ON_SITE) & (a.booked_at >= days.c.opens) & \
        a.rebooked_from_id.is_(None)
    booked = and_(visit, ~on_site)
    waited_from = case((a.checked_in_at > a.start_at, a.checked_in_at), else_=a.start_at)
    called = and_(booked, a.called_at.is_not(None))

    def count(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    stmt = (select(a.hospital_id, a.department_id, count(visit), count(booked),
                   count(a.status == "noshow"), count(called),
                   func.sum(case((and_(called, a.called_at > waited_from),
                                  _minutes(db, a.called_at, waited_from)), else_=0.0)),
                   func.sum(case((booked, _minutes(db, a.start_at, a.booked_at)), else_=0.0)))
            # Through the period's sessions (an index on hospital and day) to their
            # appointments (one on session and status): never a read of every appointment.
            .select_from(_SCHEDULE)
            .join(days, days.c.day == s.day)
            .join(_APPOINTMENT, a.schedule_id == s.id)
            .where(s.hospital_id.in_(ids), s.day >= start, s.day <= end,
                   a.status.in_(("arrived", "fulfilled", "noshow")))
            .group_by(a.hospital_id, a.department_id))
    if departments is not None:
        stmt = stmt.where(a.department_id.in_(departments))
    return [((hid, dep), Figures(visits=int(v or 0), booked_visits=int(b or 0),
                                 noshows=int(n or 0), called=int(c or 0),
                                 wait_minutes=float(w or 0),
                                 lead_days=float(lead or 0) / 1440.0))
            for hid, dep, v, b, n, c, w, lead in db.execute(stmt)]


def _slots(db: Session, ids: list[int], start: date, end: date,
           departments: frozenset[int] | None) -> list[tuple[tuple[int, int], Figures]]:
    s, sl = _SCHEDULE.c, _SLOT.c
    stmt = (select(s.hospital_id, s.department_id, func.count(),
                   func.sum(case((sl.pool.in_(ONLINE_POOLS), 1), else_=0)))
            .join(_SLOT, sl.schedule_id == s.id)
            .where(s.hospital_id.in_(ids), s.day >= start, s.day <= end)
            .group_by(s.hospital_id, s.department_id))
    if departments is not None:
        stmt = stmt.where(s.department_id.in_(departments))
    return [((hid, dep), Figures(slots=int(n), online_slots=int(online or 0)))
            for hid, dep, n, online in db.execute(stmt)]
