"""The CapabilityStatement served at ``/fhir/metadata`` (what this server does, in FHIR)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from onetrip import __version__
from onetrip.fhir.params import instant

IHE = "https://profiles.ihe.net/ITI/Scheduling"
SMART_LINKS = "http://hl7.org/fhir/uv/smart-scheduling-links/ImplementationGuide/" \
              "hl7.fhir.uv.smart-scheduling-links"

#: Resource type -> search parameters (name, type, what it matches) and _include values.
SEARCHES: dict[str, tuple[list[tuple[str, str, str]], list[str]]] = {
    "Patient": ([("identifier", "token", "证件号（document system|number），仅限 POST _search"),
                 ("_id", "token", "就诊人编号")], []),
    "Organization": ([("identifier", "token", "医院代码"), ("name", "string", "医院名称")], []),
    "Location": ([("organization", "reference", "所属医院"), ("name", "string", "名称")],
                 ["Location:organization"]),
    "HealthcareService": ([("organization", "reference", "所属医院"),
                           ("specialty", "token", "科室代码"), ("name", "string", "科室名称"),
                           ("active", "token", "是否开诊")], ["HealthcareService:organization"]),
    "Practitioner": ([("name", "string", "姓名或拼音首字母"),
                      ("identifier", "token", "医院代码/工号")], []),
    "PractitionerRole": ([("practitioner", "reference", "医生"),
                          ("organization", "reference", "医院"),
                          ("specialty", "token", "科室代码"),
                          ("service", "reference", "科室门诊")],
                         ["PractitionerRole:practitioner", "PractitionerRole:organization"]),
    "Schedule": ([("actor", "reference", "医生、科室门诊或地点"),
                  ("date", "date", "出诊开始时间"), ("specialty", "token", "科室代码"),
                  ("organization", "reference", "医院"), ("active", "token", "未停诊")],
                 ["Schedule:actor"]),
    "Slot": ([("schedule", "reference", "排班"), ("start", "date", "开始时间"),
              ("status", "token", "free | busy | busy-unavailable | busy-tentative"),
              ("specialty", "token", "科室代码"), ("service-type", "token", "门诊级别")],
             ["Slot:schedule"]),
    "Appointment": ([("patient", "reference", "就诊人"), ("actor", "reference", "就诊人"),
                     ("date", "date", "就诊时间"),
                     ("status", "token", "pending | booked | arrived | fulfilled | cancelled | "
                                         "noshow | waitlist")],
                    ["Appointment:slot", "Appointment:patient", "Appointment:actor"]),
}

OPERATIONS = [("find", f"{IHE}/OperationDefinition/appointment-find"),
              ("hold", f"{IHE}/OperationDefinition/appointment-hold"),
              ("book", f"{IHE}/OperationDefinition/appointment-book")]


def _resource(kind: str) -> dict[str, Any]:
    params, includes = SEARCHES[kind]
    out: dict[str, Any] = {
        "type": kind,
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [{"name": n, "type": t, "documentation": d} for n, t, d in params]}
    if includes:
        out["searchInclude"] = includes
    if kind == "Appointment":
        out["operation"] = [{"name": n, "definition": d} for n, d in OPERATIONS]
        out["supportedProfile"] = [f"{IHE}/StructureDefinition/ihe-sched-appt"]
    if kind == "Patient":
        out["documentation"] = "证件号与手机号均为脱敏值（前6后4），资源带 MASKED 安全标签。"
    return out


def capability_statement(base: str, now: datetime) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement", "id": "onetrip", "status": "active",
        "date": instant(now), "publisher": "OneTrip 最多跑一次", "kind": "instance",
        "software": {"name": "OneTrip", "version": __version__},
        "implementation": {"description": "OneTrip FHIR R4 接口：号源目录、预约与IHE调度操作",
                           "url": base},
        "fhirVersion": "4.0.1", "format": ["json"],
        "implementationGuide": [IHE, SMART_LINKS],
        "rest": [{
            "mode": "server",
            "documentation": "只读资源公开；就诊人与预约需要 /api/v1 同一套 Bearer 令牌。"
                             "SMART Scheduling Links 目录见 $bulk-publish。",
            "security": {"cors": False, "service": [{"text": "Bearer token (OneTrip)"}],
                         "description": "Authorization: Bearer <OneTrip 令牌或登录会话>"},
            "resource": [_resource(kind) for kind in SEARCHES],
            "operation": [{"name": "bulk-publish", "definition":
                           "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/bulk-publish"}],
        }],
    }
