"""OneTrip rows as FHIR R4 resources (JSON dicts). No queries beyond the rows' own links.

Identifiers name OneTrip's own codes under ``urn:onetrip:*`` systems. Patient identity
numbers and phones leave masked (first 6 + last 4; ``138****5678``) and the resource is
labelled MASKED (PIPL; docs/identity.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from onetrip.fhir.params import instant
from onetrip.identity import service as identity_service
from onetrip.identity.models import Patient
from onetrip.identity.rules import DOCUMENT_LABELS, DocumentType
from onetrip.org.models import Department, Hospital, Location, Practitioner
from onetrip.org.rules import KIND_LABELS, LEVEL_LABELS, SERVICE_LEVEL_LABELS, TITLE_LABELS
from onetrip.scheduling.models import Appointment, Schedule, Slot, WaitlistEntry
from onetrip.scheduling.rules import POOL_LABELS, SESSION_LABELS, Pool, SessionOfDay

SYSTEM = "urn:onetrip"
DOCUMENT_SYSTEM = f"{SYSTEM}:document"  # + ":" + document type
HOSPITAL_SYSTEM = f"{SYSTEM}:hospital"
DEPARTMENT_SYSTEM = f"{SYSTEM}:department"
PRACTITIONER_SYSTEM = f"{SYSTEM}:practitioner"
LOCATION_SYSTEM = f"{SYSTEM}:location"
SERVICE_LEVEL_SYSTEM = f"{SYSTEM}:service-level"
TITLE_SYSTEM = f"{SYSTEM}:title"
DOCUMENT_TYPE_SYSTEM = f"{SYSTEM}:document-type"
SMART = "http://fhir-registry.smarthealthit.org/StructureDefinition"
DEEP_LINK = f"{SMART}/booking-deep-link"
BOOKING_PHONE = f"{SMART}/booking-phone"
MASKED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
          "code": "MASKED", "display": "masked"}
_PHYSICAL = {"campus": ("si", "Site"), "building": ("bu", "Building"), "floor": ("lvl", "Level"),
             "room": ("ro", "Room")}
_GENDER = {"male": "male", "female": "female"}

#: OneTrip appointment status -> FHIR Appointment.status ("held" is a hold: pending).
APPOINTMENT_STATUS = {"held": "pending", "booked": "booked", "arrived": "arrived",
                      "fulfilled": "fulfilled", "cancelled": "cancelled", "noshow": "noshow",
                      "expired": "cancelled"}


def ref(kind: str, ident: object, display: str | None = None) -> dict[str, str]:
    out = {"reference": f"{kind}/{ident}"}
    if display:
        out["display"] = display
    return out


def site_id(hospital_id: int) -> str:
    """The Location id of a hospital's site as a whole (the address patients travel to)."""
    return f"site-{hospital_id}"


def document_system(doc_type: DocumentType) -> str:
    return f"{DOCUMENT_SYSTEM}:{doc_type.value}"


def department_concept(d: Department) -> dict[str, Any]:
    return {"coding": [{"system": DEPARTMENT_SYSTEM, "code": d.code, "display": d.name}],
            "text": d.name}


def service_level_concept(level: str) -> dict[str, Any]:
    label = SERVICE_LEVEL_LABELS.get(level, level)
    return {"coding": [{"system": SERVICE_LEVEL_SYSTEM, "code": level, "display": label}],
            "text": label}


def _phone(h: Hospital) -> list[dict[str, str]]:
    return [{"system": "phone", "value": h.phone, "use": "work"}] if h.phone else []


def _address(h: Hospital) -> dict[str, Any] | None:
    if not h.address:
        return None
    out = {"use": "work", "type": "physical", "text": h.address, "line": [h.address],
           "city": h.region.name, "state": h.region.province, "postalCode": h.postal_code,
           "country": "CN"}
    return {k: v for k, v in out.items() if v}


def patient(p: Patient) -> dict[str, Any]:
    """A real-name patient with every identity number and the phone masked."""
    identifiers = []
    for doc in p.documents:
        kind = DocumentType(doc.document_type)
        label = DOCUMENT_LABELS[kind]
        identifiers.append({
            "use": "official",
            "type": {"coding": [{"system": DOCUMENT_TYPE_SYSTEM, "code": kind.value,
                                 "display": label}], "text": label},
            "system": document_system(kind),
            "value": identity_service.masked_id_number(doc)})
    out: dict[str, Any] = {
        "resourceType": "Patient", "id": str(p.id), "meta": {"security": [MASKED]},
        "identifier": identifiers, "active": p.status == "active",
        "name": [{"use": "official", "text": p.name}],
        "telecom": [{"system": "phone", "value": identity_service.masked_phone(p),
                     "use": "mobile"}],
        "gender": _GENDER.get(p.gender, "unknown"), "birthDate": p.birth_date.isoformat()}
    if p.merged_into_id is not None:
        out["link"] = [{"other": ref("Patient", p.merged_into_id), "type": "replaced-by"}]
    return out


def organization(h: Hospital) -> dict[str, Any]:
    kind = f"{LEVEL_LABELS.get(h.level, '')}{KIND_LABELS.get(h.kind, '')}"
    out: dict[str, Any] = {
        "resourceType": "Organization", "id": str(h.id),
        "identifier": [{"system": HOSPITAL_SYSTEM, "value": h.code}], "active": True,
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                              "code": "prov", "display": "Healthcare Provider"}], "text": kind}],
        "name": h.name}
    if h.short_name:
        out["alias"] = [h.short_name]
    if h.phone:
        out["telecom"] = _phone(h)
    address = _address(h)
    if address:
        out["address"] = [address]
    return out


def site_location(h: Hospital) -> dict[str, Any]:
    """The hospital's site: name, phone and address (a SMART Scheduling Links Location)."""
    out: dict[str, Any] = {
        "resourceType": "Location", "id": site_id(h.id),
        "identifier": [{"system": LOCATION_SYSTEM, "value": h.code}], "status": "active",
        "name": h.name, "mode": "instance", "telecom": _phone(h),
        "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                               "location-physical-type", "code": "si",
                                     "display": "Site"}]},
        "managingOrganization": ref("Organization", h.id, h.name)}
    if not out["telecom"]:
        del out["telecom"]
    address = _address(h)
    if address:
        out["address"] = address
    return out


def location(loc: Location, h: Hospital) -> dict[str, Any]:
    """A campus, building, floor or room of a hospital, part of its parent (or the site)."""
    code, display = _PHYSICAL[loc.kind]
    out: dict[str, Any] = {
        "resourceType": "Location", "id": str(loc.id),
        "identifier": [{"system": LOCATION_SYSTEM, "value": f"{h.code}/{loc.code}"}],
        "status": "active", "name": loc.name, "mode": "instance",
        "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                               "location-physical-type", "code": code,
                                     "display": display}]},
        "managingOrganization": ref("Organization", h.id, h.name),
        "partOf": ref("Location", loc.parent_id or site_id(h.id))}
    address = _address(h)
    if address:
        out["address"] = address
    return out


def healthcare_service(d: Department) -> dict[str, Any]:
    """A department's outpatient clinic."""
    h = d.hospital
    out: dict[str, Any] = {
        "resourceType": "HealthcareService", "id": str(d.id),
        "identifier": [{"system": DEPARTMENT_SYSTEM, "value": f"{h.code}/{d.code}"}],
        "active": d.is_clinical, "providedBy": ref("Organization", h.id, h.name),
        "specialty": [department_concept(d)], "name": d.name,
        "location": [ref("Location", d.location_id or site_id(h.id))],
        "appointmentRequired": True}
    if d.introduction:
        out["comment"] = d.introduction[:500]
    if h.phone:
        out["telecom"] = _phone(h)
    return out


def practitioner(p: Practitioner) -> dict[str, Any]:
    title = TITLE_LABELS.get(p.title, p.title)
    out: dict[str, Any] = {
        "resourceType": "Practitioner", "id": str(p.id),
        "identifier": [{"system": PRACTITIONER_SYSTEM,
                        "value": f"{_hospital_code(p)}/{p.code}"}],
        "active": True, "name": [{"use": "official", "text": p.name}],
        "qualification": [{"code": {"coding": [{"system": TITLE_SYSTEM, "code": p.title,
                                                "display": title}], "text": title}}]}
    if p.gender in _GENDER:
        out["gender"] = _GENDER[p.gender]
    return out


def _hospital_code(p: Practitioner) -> str:
    return p.departments[0].hospital.code if p.departments else str(p.hospital_id)


def role_id(p: Practitioner, d: Department) -> str:
    return f"{p.id}-{d.id}"


def practitioner_role(p: Practitioner, d: Department) -> dict[str, Any]:
    """A practitioner seeing patients in one department, at a service level."""
    out: dict[str, Any] = {
        "resourceType": "PractitionerRole", "id": role_id(p, d), "active": True,
        "practitioner": ref("Practitioner", p.id, p.name),
        "organization": ref("Organization", d.hospital_id, d.hospital.name),
        "code": [service_level_concept(p.service_level)],
        "specialty": [department_concept(d)],
        "healthcareService": [ref("HealthcareService", d.id, d.name)]}
    if d.location_id:
        out["location"] = [ref("Location", d.location_id)]
    return out


def schedule_doctor(s: Schedule) -> int | None:
    """Who sees the patients: the substitute once one took the session (替诊)."""
    return s.substitute_practitioner_id or s.practitioner_id


def schedule(s: Schedule, d: Department, doctor: Practitioner | None) -> dict[str, Any]:
    actors = [ref("HealthcareService", d.id, d.name),
              ref("Location", s.location_id or site_id(s.hospital_id))]
    if doctor is not None:
        actors.insert(0, ref("Practitioner", doctor.id, doctor.name))
    words = [d.name, doctor.name if doctor else "", s.day.isoformat(),
             SESSION_LABELS[SessionOfDay(s.session)],
             SERVICE_LEVEL_LABELS.get(s.service_level, s.service_level), f"挂号费{s.fee}元"]
    if s.status != "open":
        words.append({"stopped": "已停诊", "substituted": "已替诊"}.get(s.status, s.status))
        if s.status_reason:
            words.append(s.status_reason)
    return {"resourceType": "Schedule", "id": str(s.id), "active": s.status != "stopped",
            "serviceType": [service_level_concept(s.service_level)],
            "specialty": [department_concept(d)], "actor": actors,
            "planningHorizon": {"start": instant(s.start_at), "end": instant(s.end_at)},
            "comment": " ".join(w for w in words if w)}


def booking_extensions(site: str, s: Schedule, h: Hospital,
                       doctor: Practitioner | None, slot_id: int) -> list[dict[str, str]]:
    """SMART Scheduling Links: where a person books this slot, on the web or by phone."""
    page = (f"{site}/hospitals/{h.code}/practitioners/{doctor.code}" if doctor is not None
            else f"{site}/hospitals/{h.code}")
    out = [{"url": DEEP_LINK, "valueUrl": f"{page}?slot={slot_id}"}]
    if h.phone:
        out.append({"url": BOOKING_PHONE, "valueString": h.phone})
    return out


def slot(row: Slot, s: Schedule, status: str, pool: str | None,
         extensions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Slot", "id": str(row.id)}
    if extensions:
        out["extension"] = extensions
    out.update({"serviceType": [service_level_concept(s.service_level)],
                "schedule": ref("Schedule", s.id), "status": status,
                "start": instant(row.start_at),
                "end": instant(row.start_at + timedelta(minutes=s.slot_minutes))})
    if pool:
        out["comment"] = POOL_LABELS[Pool(pool)]
    return out


def _participants(patient_id: int | None, s: Schedule, doctor: Practitioner | None,
                  status: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if patient_id is not None:
        out.append({"actor": ref("Patient", patient_id), "required": "required",
                    "status": status})
    if doctor is not None:
        out.append({"actor": ref("Practitioner", doctor.id, doctor.name),
                    "required": "required", "status": "accepted"})
    out.append({"actor": ref("Location", s.location_id or site_id(s.hospital_id)),
                "required": "required", "status": "accepted"})
    return out


def _visit(s: Schedule, d: Department) -> dict[str, Any]:
    return {"serviceType": [service_level_concept(s.service_level)],
            "specialty": [department_concept(d)]}


def appointment(a: Appointment, d: Department, doctor: Practitioner | None) -> dict[str, Any]:
    s = a.schedule
    status = APPOINTMENT_STATUS[a.status]
    out: dict[str, Any] = {"resourceType": "Appointment", "id": str(a.id), "status": status}
    if status in ("cancelled", "noshow"):
        reason = a.cancel_reason or ("锁号超时未确认" if a.status == "expired" else "")
        if reason:
            out["cancelationReason"] = {"text": reason}
    out.update(_visit(s, d))
    out.update({"start": instant(a.start_at),
                "end": instant(a.start_at + timedelta(minutes=s.slot_minutes)),
                "minutesDuration": s.slot_minutes, "slot": [ref("Slot", a.slot_id)],
                "created": instant(a.created_at),
                "participant": _participants(a.patient_id, s, doctor, "accepted")})
    return out


def proposed_id(slot_id: int, patient_id: int | None) -> str:
    """Ids of $find answers: ``proposed-<slot>[-<patient>]`` ($hold/$book read them back)."""
    return f"proposed-{slot_id}" + (f"-{patient_id}" if patient_id is not None else "")


def proposed(row: Slot, s: Schedule, d: Department, doctor: Practitioner | None,
             patient_id: int | None) -> dict[str, Any]:
    """IHE ITI-115: a potential appointment on a free slot, not yet held or booked."""
    out: dict[str, Any] = {"resourceType": "Appointment", "id": proposed_id(row.id, patient_id),
                           "status": "proposed"}
    out.update(_visit(s, d))
    out.update({"start": instant(row.start_at),
                "end": instant(row.start_at + timedelta(minutes=s.slot_minutes)),
                "minutesDuration": s.slot_minutes, "slot": [ref("Slot", row.id)],
                "participant": _participants(patient_id, s, doctor, "needs-action")})
    return out


def waitlisted(e: WaitlistEntry, s: Schedule, d: Department,
               doctor: Practitioner | None) -> dict[str, Any]:
    """候补: a patient waiting for a slot of a session (Appointment.status waitlist)."""
    out: dict[str, Any] = {"resourceType": "Appointment", "id": f"waitlist-{e.id}",
                           "status": "waitlist"}
    out.update(_visit(s, d))
    out.update({"start": instant(s.start_at), "end": instant(s.end_at),
                "created": instant(e.created_at),
                "participant": _participants(e.patient_id, s, doctor, "needs-action")})
    return out
