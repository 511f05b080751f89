"""/api/v1 routes of the scheduling domain. Thin: parse, call a service, shape the answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.deps import CurrentPrincipal, DbSession, Now, Units, secret_from
from onetrip.errors import NotAuthenticated, PermissionDenied
from onetrip.identity import service as identity_service
from onetrip.identity.rules import DocumentType, Role, may_administer_hospital
from onetrip.identity.service import Principal
from onetrip.org import service as org_service
from onetrip.org.models import Department, Hospital, Practitioner
from onetrip.scheduling import (
    booking,
    gate,
    groupcommit,
    idempotency,
    indicators,
    queue,
    service,
    stopclinic,
    waitlist,
)
from onetrip.scheduling.models import RebookingOffer, Schedule, WaitlistEntry
from onetrip.scheduling.rules import Channel, Pool, PoolTimer, effective_pool
from onetrip.scheduling.schemas import (
    AppointmentRead,
    BookingCreate,
    BookingIndicatorsRead,
    CancelRequest,
    CheckInRequest,
    OfferAccept,
    OfferRead,
    PassOverRequest,
    PolicyRead,
    PolicyWrite,
    QueueRead,
    ScheduleRead,
    SlotRead,
    StopRead,
    StopRequest,
    SubstituteRequest,
    WaitlistCreate,
    WaitlistRead,
)

router = APIRouter(prefix="/api/v1", tags=["scheduling"])
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _schedule_reads(db: Session, schedules: list[Schedule], now: Any) -> list[ScheduleRead]:
    avail = service.availability(db, [s.id for s in schedules], now)
    policies = service.policies_for(db, {s.hospital_id for s in schedules})
    out = []
    for s in schedules:
        dept = db.get_one(Department, s.department_id)
        doc_id = s.substitute_practitioner_id or s.practitioner_id
        doc = db.get(Practitioner, doc_id) if doc_id else None
        out.append(ScheduleRead.of(s, hospital=dept.hospital.code,
                                   department=(dept.code, dept.name),
                                   practitioner=(doc.code, doc.name) if doc else None,
                                   available=avail[s.id],
                                   reopens_at=service.reopens_at(policies[s.hospital_id][0],
                                                                 s.day, now)))
    return out


@router.get("/schedules", response_model=list[ScheduleRead])
def list_schedules(db: DbSession, now: Now, hospital: str, date: date,
                   department: str | None = None) -> list[ScheduleRead]:
    """Sessions of a hospital on a date, with free released slots per pool."""
    h = org_service.access_hospital(db, hospital)
    dept = org_service.access_department(db, h, department) if department else None
    return _schedule_reads(db, service.list_schedules(db, hospital=h, day=date,
                                                      department=dept), now)


@router.get("/schedules/{schedule_id}/slots", response_model=list[SlotRead])
def list_slots(schedule_id: int, db: DbSession, now: Now,
               channel: Channel = Channel.web) -> list[SlotRead]:
    """Slots bookable now through ``channel``, each with its start minute (BK-3); none
    during the overnight pause before the session's day (``GET /schedules`` says when
    booking reopens), when the engine would refuse every one of them."""
    schedule = service.access_schedule(db, schedule_id)
    if service.reopens_at(service.policy_for(db, schedule.hospital_id)[0], schedule.day,
                          now) is not None:
        return []
    out = []
    for slot in service.free_slots(db, schedule=schedule, channel=channel, now=now):
        timer = PoolTimer(slot.release_at, slot.return_at,
                          Pool(slot.return_pool) if slot.return_pool else None)
        pool = effective_pool(Pool(slot.pool), timer, now)
        out.append(SlotRead.of(slot, pool.value if pool else slot.pool))
    return out


def idempotent(db: Session, principal: Principal, key: str | None, path: str, body: Any,
                now: Any, status_code: int, work: Callable[[], dict[str, Any]]) -> JSONResponse:
    """Run ``work`` once per Idempotency-Key and body; a repeat gets the stored answer."""
    if key is None:
        return JSONResponse(work(), status_code=status_code)
    record = idempotency.claim(db, owner=idempotency.principal_key(principal), key=key,
                               digest=idempotency.request_hash(path, body), now=now)
    if record.status_code:
        return JSONResponse(record.body, status_code=record.status_code,
                            headers={"Idempotent-Replayed": "true"})
    result = work()
    idempotency.remember(db, record, status_code, result)
    return JSONResponse(result, status_code=status_code)


Committer = Annotated[groupcommit.Submit, Depends(groupcommit.get_committer)]


async def _submit(request: Request, body: BookingCreate, now: datetime, units: Units,
                  commit: groupcommit.Submit, key: str | None, *, hold: bool) -> JSONResponse:
    secret = secret_from(request)
    if secret is None:
        raise NotAuthenticated()
    command = groupcommit.Command(
        patient_id=body.patient_id, channel=body.channel, now=now, slot_id=body.slot_id,
        schedule_id=body.schedule_id, hold=hold, secret=secret, idempotency_key=key,
        rate_keys=gate.attempt_keys(request),
        request_id=getattr(request.state, "request_id", ""),
        client_ip=request.client.host if request.client else "")
    # BK-8: in the seconds after a pool opens the request joins the draw; else it is
    # booked with whatever else is committing now.
    answer = await gate.drawn(command, units) or await commit(command)
    return JSONResponse(answer.body, status_code=answer.status_code,
                        headers={"Idempotent-Replayed": "true"} if answer.replayed else None)


@router.post("/appointments", status_code=201, response_model=AppointmentRead,
             responses={409: {"description": "slot_taken, pool_closed, schedule_full, "
                                             "limit_reached, patient_restricted"}})
async def create_appointment(request: Request, body: BookingCreate, now: Now, units: Units,
                             commit: Committer, idempotency_key: IdemKey = None,
                             ) -> JSONResponse:
    """Book a slot (or a schedule's earliest free slot) for a real-name patient.

    Requests are committed in groups (``groupcommit``); each is answered after its commit.
    """
    return await _submit(request, body, now, units, commit, idempotency_key, hold=False)


@router.post("/holds", status_code=201, response_model=AppointmentRead)
async def create_hold(request: Request, body: BookingCreate, now: Now, units: Units,
                      commit: Committer, idempotency_key: IdemKey = None) -> JSONResponse:
    """Hold a slot for a few minutes (FHIR busy-tentative) before confirming it."""
    return await _submit(request, body, now, units, commit, idempotency_key, hold=True)


def _appointment_json(appt: Any) -> dict[str, Any]:
    return AppointmentRead.of(appt).model_dump(mode="json")


@router.post("/appointments/{appointment_id}/confirm", response_model=AppointmentRead)
def confirm_hold(appointment_id: int, request: Request, db: DbSession,
                 principal: CurrentPrincipal, now: Now,
                 idempotency_key: IdemKey = None) -> JSONResponse:
    return idempotent(db, principal, idempotency_key, request.url.path, {}, now, 200,
                      lambda: _appointment_json(booking.confirm(
                          db, principal=principal, appointment_id=appointment_id, now=now)))


@router.post("/appointments/{appointment_id}/cancel", response_model=AppointmentRead)
def cancel_appointment(appointment_id: int, db: DbSession, principal: CurrentPrincipal,
                       now: Now, body: CancelRequest | None = None) -> AppointmentRead:
    appt = booking.cancel(db, principal=principal, appointment_id=appointment_id, now=now,
                          reason=body.reason if body else "")
    return AppointmentRead.of(appt)


@router.get("/appointments", response_model=list[AppointmentRead])
def list_appointments(db: DbSession, principal: CurrentPrincipal,
                      patient_id: Annotated[int, Query(gt=0)],
                      status: Annotated[list[str] | None, Query()] = None,
                      ) -> list[AppointmentRead]:
    identity_service.access_patient(db, principal, patient_id)
    return [AppointmentRead.of(a)
            for a in booking.list_appointments(db, patient_id=patient_id, statuses=status)]


@router.get("/appointments/{appointment_id}", response_model=AppointmentRead)
def read_appointment(appointment_id: int, db: DbSession,
                     principal: CurrentPrincipal) -> AppointmentRead:
    booking.not_by_number_at_a_kiosk(principal)
    return AppointmentRead.of(booking.access_appointment(db, principal, appointment_id))


@router.post("/appointments/{appointment_id}/check-in", response_model=AppointmentRead)
def check_in(appointment_id: int, db: DbSession, principal: CurrentPrincipal, now: Now,
             body: CheckInRequest | None = None) -> AppointmentRead:
    """Arrival check-in; on site the presented document must be the booked patient's."""
    patient_id = None
    if body is not None and body.document_number:
        found = identity_service.find_by_document(db, DocumentType(body.document_type),
                                                  body.document_number)
        patient_id = found.id if found is not None else None
    appt = queue.check_in(db, principal=principal, appointment_id=appointment_id, now=now,
                          patient_id=patient_id)
    return AppointmentRead.of(appt)


@router.get("/appointments/{appointment_id}/queue", response_model=QueueRead | None)
def my_queue_position(appointment_id: int, db: DbSession, principal: CurrentPrincipal,
                      now: Now) -> QueueRead | None:
    """The patient's live place in the queue and estimated wait (BK-11)."""
    booking.not_by_number_at_a_kiosk(principal)
    appt = booking.access_appointment(db, principal, appointment_id)
    entry = queue.position_of(db, appointment=appt, now=now)
    if entry is None:
        return None
    return QueueRead(appointment_id=appt.id, ahead=entry.position,
                     estimated_wait_minutes=int(entry.wait.total_seconds() // 60),
                     late=entry.late)


def _staff_of(principal: Principal, schedule: Schedule) -> None:
    if principal.role in (Role.patient, Role.proxy, Role.regulator, Role.kiosk):
        raise PermissionDenied()
    if principal.role is not Role.regional_admin and principal.hospital_id != schedule.hospital_id:
        raise PermissionDenied()


@router.get("/schedules/{schedule_id}/queue", response_model=list[QueueRead])
def schedule_queue(schedule_id: int, db: DbSession, principal: CurrentPrincipal,
                   now: Now) -> list[QueueRead]:
    _staff_of(principal, service.access_schedule(db, schedule_id))
    return [QueueRead(appointment_id=e.appointment.id, ahead=e.position,
                      estimated_wait_minutes=int(e.wait.total_seconds() // 60), late=e.late)
            for e in queue.queue_for(db, schedule_id=schedule_id, now=now)]


@router.post("/schedules/{schedule_id}/call-next", response_model=AppointmentRead | None)
def call_next(schedule_id: int, db: DbSession, principal: CurrentPrincipal,
              now: Now) -> AppointmentRead | None:
    _staff_of(principal, service.access_schedule(db, schedule_id))
    called = queue.call_next(db, principal=principal, schedule_id=schedule_id, now=now)
    return AppointmentRead.of(called) if called else None


@router.post("/schedules/{schedule_id}/pass-over", response_model=AppointmentRead)
def pass_over(schedule_id: int, db: DbSession, principal: CurrentPrincipal, now: Now,
              body: PassOverRequest | None = None) -> AppointmentRead:
    """过号: the patient called in did not come; back to booked, to check in again (BK-11)."""
    _staff_of(principal, service.access_schedule(db, schedule_id))
    return AppointmentRead.of(queue.pass_over(
        db, principal=principal, schedule_id=schedule_id, now=now,
        appointment_id=body.appointment_id if body else None))


def _waitlist_read(db: Session, e: WaitlistEntry) -> WaitlistRead:
    return WaitlistRead(id=e.id, schedule_id=e.schedule_id, patient_id=e.patient_id,
                        status=e.status, offered_slot_id=e.offered_slot_id,
                        offer_expires_at=e.offer_expires_at,
                        position=waitlist.position(db, e))


@router.post("/waitlist", status_code=201, response_model=WaitlistRead)
def join_waitlist(body: WaitlistCreate, db: DbSession, principal: CurrentPrincipal,
                  now: Now) -> WaitlistRead:
    return _waitlist_read(db, waitlist.join(
        db, principal=principal, patient_id=body.patient_id, schedule_id=body.schedule_id,
        channel=body.channel, now=now))


@router.get("/waitlist", response_model=list[WaitlistRead])
def list_waitlist(db: DbSession, principal: CurrentPrincipal,
                  patient_id: Annotated[int, Query(gt=0)]) -> list[WaitlistRead]:
    """A patient's waitlist entries, newest first, each with its place in line."""
    identity_service.access_patient(db, principal, patient_id)
    return [_waitlist_read(db, e) for e in waitlist.entries_for(db, patient_id=patient_id)]


@router.post("/waitlist/{entry_id}/cancel", response_model=WaitlistRead)
def leave_waitlist(entry_id: int, db: DbSession, principal: CurrentPrincipal,
                   now: Now) -> WaitlistRead:
    """取消候补: stop waiting; a slot offered and not yet taken passes to the next in line."""
    return _waitlist_read(db, waitlist.leave(db, principal=principal, entry_id=entry_id,
                                             now=now))


@router.post("/waitlist/{entry_id}/accept", response_model=AppointmentRead)
def accept_waitlist(entry_id: int, request: Request, db: DbSession,
                    principal: CurrentPrincipal, now: Now,
                    idempotency_key: IdemKey = None) -> JSONResponse:
    return idempotent(db, principal, idempotency_key, request.url.path, {}, now, 200,
                      lambda: _appointment_json(waitlist.accept(
                          db, principal=principal, entry_id=entry_id, now=now)))


def _offer_read(o: RebookingOffer) -> OfferRead:
    return OfferRead(id=o.id, appointment_id=o.appointment_id, patient_id=o.patient_id,
                     status=o.status, slot_ids=list(o.slot_ids), held_slot_id=o.held_slot_id,
                     expires_at=o.expires_at, refund_flagged=o.refund_flagged, note=o.note,
                     new_appointment_id=o.new_appointment_id)


@router.post("/schedules/{schedule_id}/stop", response_model=StopRead)
def stop_schedule(schedule_id: int, body: StopRequest, db: DbSession,
                  principal: CurrentPrincipal, now: Now) -> StopRead:
    """停诊: every affected patient gets offers of equivalent slots or a refund notice."""
    result = stopclinic.stop_clinic(db, principal=principal, schedule_id=schedule_id,
                                    reason=body.reason, now=now)
    return StopRead(schedule_id=schedule_id, status=result.schedule.status,
                    offers=[_offer_read(o) for o in result.offers])


@router.post("/schedules/{schedule_id}/substitute", response_model=StopRead)
def substitute_schedule(schedule_id: int, body: SubstituteRequest, db: DbSession,
                        principal: CurrentPrincipal, now: Now) -> StopRead:
    """替诊: another doctor of the hospital takes the session and its appointments."""
    schedule = service.access_schedule(db, schedule_id)
    doctor = org_service.access_practitioner(db, db.get_one(Hospital, schedule.hospital_id),
                                             body.practitioner)
    stopclinic.substitute(db, principal=principal, schedule_id=schedule_id,
                          practitioner_id=doctor.id, reason=body.reason, now=now)
    return StopRead(schedule_id=schedule_id, status=schedule.status, offers=[])


@router.get("/rebooking-offers", response_model=list[OfferRead])
def list_offers(db: DbSession, principal: CurrentPrincipal,
                patient_id: Annotated[int, Query(gt=0)]) -> list[OfferRead]:
    identity_service.access_patient(db, principal, patient_id)
    return [_offer_read(o) for o in stopclinic.offers_for(db, patient_id=patient_id)]


@router.post("/rebooking-offers/{offer_id}/accept", response_model=AppointmentRead)
def accept_offer(offer_id: int, body: OfferAccept, request: Request, db: DbSession,
                 principal: CurrentPrincipal, now: Now,
                 idempotency_key: IdemKey = None) -> JSONResponse:
    return idempotent(db, principal, idempotency_key, request.url.path, body.model_dump(),
                      now, 200, lambda: _appointment_json(stopclinic.accept_offer(
                          db, principal=principal, offer_id=offer_id, slot_id=body.slot_id,
                          now=now)))


@router.post("/rebooking-offers/{offer_id}/decline", response_model=OfferRead)
def decline_offer(offer_id: int, db: DbSession, principal: CurrentPrincipal,
                  now: Now) -> OfferRead:
    return _offer_read(stopclinic.decline_offer(db, principal=principal, offer_id=offer_id,
                                                now=now))


@router.get("/hospitals/{code}/booking-policy", response_model=PolicyRead)
def read_policy(code: str, db: DbSession) -> PolicyRead:
    h = org_service.access_hospital(db, code)
    pools, penalty = service.policy_for(db, h.id)
    return PolicyRead(hospital=h.code, pools=pools.model_dump(mode="json"),
                      penalty=penalty.model_dump(mode="json"))


@router.put("/hospitals/{code}/booking-policy", response_model=PolicyRead)
def write_policy(code: str, body: PolicyWrite, db: DbSession,
                 principal: CurrentPrincipal) -> PolicyRead:
    """Pool shares and timers, penalty rule; refused below the policy floors (BK-2, BK-4)."""
    h = org_service.access_hospital(db, code)
    if not may_administer_hospital(principal.role, principal.hospital_id, h.id):
        raise PermissionDenied()
    row = service.set_policy(db, hospital=h, pools=body.pools, penalty=body.penalty,
                             by=principal)
    return PolicyRead(hospital=h.code, pools=row.pools, penalty=row.penalty)


@router.get("/indicators/booking", response_model=BookingIndicatorsRead)
def read_booking_indicators(
        db: DbSession, principal: CurrentPrincipal, now: Now,
        start: Annotated[str | None, Query(alias="from", description="2026-10-01")] = None,
        end: Annotated[str | None, Query(alias="to", description="2026-10-31")] = None,
        month: Annotated[str | None, Query(description="2026-10, instead of from and to")] = None,
        hospital: str | None = None) -> BookingIndicatorsRead:
    """Booking indicators of the period (国考 22 and 23, BK-2, BK-6, BK-9, BK-10), per hospital
    and department: a hospital's admins see theirs, department admins their departments, the
    regional admin and the regulator every hospital (or the one named)."""
    first, last = indicators.period(start, end, month)
    hospitals, departments = indicators.viewable(db, principal, hospital)
    rows = indicators.figures(db, hospitals, first, last, departments,
                              today=now.astimezone(get_settings().tz).date())
    return BookingIndicatorsRead.model_validate({
        "from": first, "to": last,
        "region": {**indicators.region_total(rows).to_dict(), **indicators.region_kiosks(rows)},
        "hospitals": [{**r.total.to_dict(), **r.kiosk_dict(), "hospital": r.hospital.code,
                       "name": r.hospital.name,
                       "departments": [{**f.to_dict(), "code": d.code, "name": d.name}
                                       for d, f in r.departments]} for r in rows]})
