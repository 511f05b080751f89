"""Staff pages: sign-in (password + TOTP, or a bearer token for kiosks and consoles), patient
search, possible duplicates with merge/unmerge, and the audit search. Patient pages live in
``patient_pages``, the staff accounts page in ``staff_pages``; both are mounted on the same
router."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.deps import TOKEN_COOKIE, DbSession
from onetrip.errors import NotAuthenticated, OnetripError
from onetrip.identity import audit, auth, empi, patient_pages, service, staff_pages
from onetrip.identity.models import Patient, PatientMerge
from onetrip.identity.principal import Principal
from onetrip.identity.rules import (
    CARE_STAFF,
    DOCUMENT_LABELS,
    EMPI_ADMINS,
    REGISTRARS,
    DocumentType,
)
from onetrip.numbers import parse_id
from onetrip.web import link_int, render_page

router = APIRouter(include_in_schema=False)
router.include_router(patient_pages.router)
router.include_router(staff_pages.router)


def _safe_next(target: str) -> str:
    # Only local paths: never redirect a signed-in user to another site.
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _signed_in(request: Request, secret: str, target: str) -> Response:
    response = RedirectResponse(_safe_next(target), status_code=303)
    response.set_cookie(TOKEN_COOKIE, secret, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.get("/staff/sign-in")
def sign_in_page(request: Request, next: str = "/staff/patients") -> Response:
    return render_page(request, "staff_sign_in.html", {"next": _safe_next(next)})


@router.post("/staff/sign-in")
def sign_in(request: Request, db: DbSession,
            token: Annotated[str, Form(max_length=200)] = "",
            username: Annotated[str, Form(max_length=64)] = "",
            password: Annotated[str, Form(max_length=200)] = "",
            totp: Annotated[str, Form(max_length=10)] = "",
            next: Annotated[str, Form()] = "/staff/patients") -> Response:
    """Username + password (+ TOTP for admins), or a bearer token."""
    ctx = {"next": _safe_next(next), "username": username}
    if token.strip():
        try:
            service.authenticate_token(db, token.strip())
        except NotAuthenticated as exc:
            return render_page(request, "staff_sign_in.html", {**ctx, "token_error": exc.text},
                               status_code=401)
        return _signed_in(request, token.strip(), next)
    outcome = auth.sign_in_staff(db, username=username, password=password, totp=totp,
                                 client_ip=request.client.host if request.client else "")
    if outcome.secret is None:
        error = outcome.error or auth.InvalidToken()
        return render_page(request, "staff_sign_in.html", {**ctx, "error": error.text},
                           status_code=error.http_status)
    return _signed_in(request, outcome.secret, next)


@router.get("/staff/sign-out")
def sign_out(request: Request, db: DbSession) -> Response:
    return patient_pages.signed_out(request, db)


CareStaff = Annotated[Principal, Depends(staff_pages.staff_only(CARE_STAFF))]
EmpiAdmin = Annotated[Principal, Depends(staff_pages.staff_only(EMPI_ADMINS))]


# --- patient search -------------------------------------------------------------------------


def _search_ctx(principal: Principal) -> dict[str, object]:
    return {"doc_types": list(DocumentType), "doc_labels": DOCUMENT_LABELS, "errors": {},
            "values": {}, "results": None, "masked": service.masked_id_number,
            "masked_phone": service.masked_phone, "can_audit": principal.role in EMPI_ADMINS}


@router.get("/staff/patients")
def patients_page(request: Request, principal: CareStaff) -> Response:
    return render_page(request, "staff_patients.html", _search_ctx(principal))


def search_by_form(db: Session, principal: Principal, *, by: str, document_type: str,
                   document_number: str, phone: str, name: str,
                   ) -> tuple[list[Patient] | None, dict[str, str]]:
    """A staff search form's answer: the patients found, or the message for each field.

    Shared by the patient search and the console's window desk; refusals are raised."""
    field = {"document": "document_number", "phone": "phone", "name": "name"}[by]
    try:
        if by == "document":
            return service.search_patients(
                db, principal, document_type=DocumentType(document_type),
                document_number=document_number), {}
        if by == "phone":
            return service.search_patients(db, principal, phone=phone), {}
        return service.search_patients(db, principal, name=name), {}
    except ValueError:
        return None, {"document_type": "请选择证件类型"}
    except OnetripError as exc:
        if exc.http_status in (401, 403):
            raise
        return None, {field: exc.text}


@router.post("/staff/patients")
def search_patients(request: Request, db: DbSession, principal: CareStaff,
                    by: Annotated[str, Form(pattern="^(document|phone|name)$")] = "document",
                    document_type: Annotated[str, Form(max_length=40)] = "resident_id_card",
                    document_number: Annotated[str, Form(max_length=80)] = "",
                    phone: Annotated[str, Form(max_length=24)] = "",
                    name: Annotated[str, Form(max_length=50)] = "") -> Response:
    """By document number or phone (exact, blind index) or by name; the form is a POST so
    that numbers never reach a URL or an access log."""
    ctx = _search_ctx(principal)
    values = {"by": by, "document_type": document_type, "name": name}
    ctx["values"] = values
    results, errors = search_by_form(db, principal, by=by, document_type=document_type,
                                     document_number=document_number, phone=phone, name=name)
    if errors:
        ctx["errors"] = errors
        values |= {"document_number": document_number, "phone": phone}
        return render_page(request, "staff_patients.html", ctx, status_code=422)
    ctx["results"] = results
    return render_page(request, "staff_patients.html", ctx)


# --- desk registration (ID-1, ID-5 offline) -------------------------------------------------


Registrar = Annotated[Principal, Depends(staff_pages.staff_only(REGISTRARS))]


def _desk_form(values: dict[str, str], errors: dict[str, str]) -> dict[str, object]:
    return {**patient_pages.form_context(True, values, errors), "staff_mode": True,
            "form_action": "/staff/patients/new"}


@router.get("/staff/patients/new")
def desk_registration_page(request: Request, principal: Registrar) -> Response:
    return render_page(request, "family_member_form.html",
                       _desk_form({"document_type": DocumentType.resident_id_card.value}, {}))


@router.post("/staff/patients/new")
def desk_register(request: Request, db: DbSession, principal: Registrar,
                  form: Annotated[patient_pages.RegistrationForm,
                                  Depends(patient_pages.read_form)]) -> Response:
    """A window clerk registers a patient from the document in hand."""
    reg, errors = patient_pages.register_from_form(db, principal, form)
    if reg is None:
        return render_page(request, "family_member_form.html",
                           _desk_form(asdict(form), errors), status_code=422)
    ctx = _desk_form({"document_type": form.document_type}, {})
    ctx.update(registered=reg.patient, registered_text="已登记" if reg.created
               else "该证件已有档案，已关联到原就诊人")
    return render_page(request, "family_member_form.html", ctx,
                       status_code=201 if reg.created else 200)


# --- EMPI: possible duplicates, merge, unmerge ----------------------------------------------


def _merge_flash(db: Session, flash: str, merge: str) -> str | None:
    """The message after a merge or unmerge, for the merge row the link names and only if
    that row is in the state the message tells (a link is not OneTrip's word)."""
    merge_id = link_int(merge)
    row = db.get(PatientMerge, merge_id) if merge_id is not None else None
    if row is None:
        return None
    if flash == "merged" and row.unmerged_at is None:
        return f"已合并（记录{row.id}）"
    if flash == "unmerged" and row.unmerged_at is not None:
        return f"已撤销合并（记录{row.id}）"
    return None


@router.get("/staff/duplicates")
def duplicates_page(request: Request, db: DbSession, principal: EmpiAdmin,
                    flash: str = "", merge: str = "") -> Response:
    return render_page(request, "staff_duplicates.html", {
        "groups": empi.list_duplicates(db, principal, limit=30),
        "merges": empi.list_merges(db, limit=20), "doc_labels": DOCUMENT_LABELS,
        "masked": service.masked_id_number, "flash": _merge_flash(db, flash, merge)})


@router.post("/staff/merges")
def merge(db: DbSession, principal: EmpiAdmin, source: Annotated[int, Form()],
          target: Annotated[int, Form()],
          reason: Annotated[str, Form(max_length=200)] = "") -> Response:
    m = empi.merge_patients(db, principal, source_id=source, target_id=target, reason=reason)
    return RedirectResponse(f"/staff/duplicates?flash=merged&merge={m.id}", status_code=303)


@router.post("/staff/merges/{merge_id}/unmerge")
def unmerge(merge_id: int, db: DbSession, principal: EmpiAdmin) -> Response:
    empi.unmerge_patients(db, principal, merge_id)
    return RedirectResponse(f"/staff/duplicates?flash=unmerged&merge={merge_id}",
                            status_code=303)


# --- audit search ---------------------------------------------------------------------------


@router.get("/staff/audit")
def audit_page(request: Request, db: DbSession, principal: EmpiAdmin,
               patient_id: Annotated[str, Query(max_length=12)] = "",
               staff: Annotated[str, Query(max_length=64)] = "") -> Response:
    """By patient (with the records merged into it) or by staff member (id or username)."""
    rows, error = None, None
    pid = parse_id(patient_id.strip())
    staff_id = auth.staff_id_of(db, staff.strip()) if staff.strip() else None
    if patient_id.strip() and pid is None:
        error = "就诊人编号应为数字"
    elif staff.strip() and staff_id is None:
        error = "未找到该工作人员"
    elif pid is not None or staff_id is not None:
        ids = empi.merged_into(db, pid) if pid is not None else None
        rows = audit.search(db, patient_ids=ids, staff_id=staff_id)
        audit.record(db, principal, action="audit.search", patient_id=pid,
                     detail={"staff_id": staff_id} if staff_id else None)
    return render_page(request, "staff_audit.html", {"rows": rows, "patient_id": patient_id,
                                                     "staff": staff, "error": error},
                       status_code=422 if error else 200)
