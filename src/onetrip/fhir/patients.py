"""Patient over the identity domain: every read is access-checked and audited there.

Search by ``identifier=<system>|<number>`` goes through the blind index
(identity.service.find_by_document) and is open to care staff only; the number travels in
the body of ``POST Patient/_search``, never in a URL (PIPL).
"""

from __future__ import annotations

from typing import Any

from onetrip.errors import PermissionDenied
from onetrip.fhir import resources as fr
from onetrip.fhir.context import Context, Found, page_list
from onetrip.fhir.outcome import InvalidSearch, Unsupported
from onetrip.fhir.params import Query, resource_id, token
from onetrip.identity import service as identity_service
from onetrip.identity.rules import ACCOUNT_ROLES, DocumentType
from onetrip.numbers import parse_id


def read_patient(ctx: Context, ident: str) -> dict[str, Any]:
    return fr.patient(identity_service.access_patient(ctx.db, ctx.signed_in(),
                                                      resource_id(ident)))


def _document_type(system: str | None) -> DocumentType:
    prefix = fr.DOCUMENT_SYSTEM + ":"
    if system is None or not system.startswith(prefix):
        raise InvalidSearch(f"identifier 须写明证件系统，如 {prefix}resident_id_card|号码",
                            detail=[{"field": "identifier"}])
    try:
        return DocumentType(system.removeprefix(prefix))
    except ValueError as exc:
        raise InvalidSearch("不支持的证件类型", detail=[{"field": "identifier"}]) from exc


def search_patients(ctx: Context, query: Query, *, in_url: bool) -> Found:
    principal = ctx.signed_in()
    identifiers = query.params.get("identifier", [])
    if identifiers and in_url:
        raise Unsupported("证件号不能出现在网址中，请用 POST Patient/_search 并把参数放在请求体",
                          detail=[{"field": "identifier"}])
    if identifiers:
        system, number = token(identifiers[-1])
        found = identity_service.search_patients(ctx.db, principal,
                                                 document_type=_document_type(system),
                                                 document_number=number)
    elif ids := query.all("_id"):
        # _id is a token: one that is no row id matches no patient
        found = [identity_service.access_patient(ctx.db, principal, pid)
                 for pid in map(parse_id, ids) if pid is not None]
    elif principal.role in ACCOUNT_ROLES:
        found = [identity_service.access_patient(ctx.db, principal, pid)
                 for pid in sorted(principal.patient_ids)]
    else:
        raise PermissionDenied("请按证件号或编号查找就诊人", detail={"field": "identifier"})
    return page_list(query, [fr.patient(p) for p in found])
