"""Patient pages (H5, mobile first): SMS sign-in, my family, register 本人 or a family member.

Forms post back to themselves; a refused field is shown under that field in Chinese and
the form keeps what was typed (the number and phone are never put in a URL).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from onetrip.config import get_settings
from onetrip.deps import TOKEN_COOKIE, DbSession, OptionalPrincipal
from onetrip.errors import OnetripError
from onetrip.identity import audit, auth, service, sms
from onetrip.identity.models import Account
from onetrip.identity.principal import Principal
from onetrip.identity.rules import (
    ACCOUNT_ROLES,
    CITIZEN_NUMBER_TYPES,
    DOCUMENT_LABELS,
    RELATIONSHIP_LABELS,
    DocumentType,
    Relationship,
)
from onetrip.identity.service import Registration
from onetrip.web import render_page

router = APIRouter(include_in_schema=False)

#: Which form field an error belongs to when its detail does not say.
_FIELD_OF_CODE = {"invalid_name": "name", "document_name_mismatch": "name",
                  "invalid_phone": "phone", "phone_mismatch": "phone",
                  "guardian_required": "relationship",
                  "self_already_registered": "relationship",
                  "birth_date_required": "birth_date", "birth_date_mismatch": "birth_date"}


def field_errors(exc: OnetripError) -> dict[str, str]:
    """``{field: Chinese message}`` for a form; ``_form`` when no field is at fault."""
    field = exc.detail.get("field") if isinstance(exc.detail, dict) else None
    return {field or _FIELD_OF_CODE.get(exc.code, "_form"): exc.text}


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/me/family"


def account_principal(principal: Principal | None) -> Principal | None:
    if principal is None or principal.role not in ACCOUNT_ROLES or principal.account_id is None:
        return None
    return principal


def to_sign_in(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/sign-in?next={next_path}", status_code=303)


# --- sign-in by SMS code --------------------------------------------------------------------


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/me/family") -> Response:
    return render_page(request, "patient_sign_in.html", {"next": _safe_next(next),
                                                          "errors": {}, "phone": ""})


@router.post("/sign-in")
def sign_in(request: Request, db: DbSession,
            phone: Annotated[str, Form(max_length=24)] = "",
            action: Annotated[str, Form(pattern="^(send|sign_in)$")] = "sign_in",
            code: Annotated[str, Form(max_length=8)] = "",
            next: Annotated[str, Form()] = "/me/family") -> Response:
    """``action=send`` sends a code (htmx gets the status line only); else signs in."""
    target = _safe_next(next)
    ctx: dict[str, object] = {"next": target, "phone": phone, "errors": {}, "sent": False}
    if not phone.strip():
        ctx["errors"] = {"phone": "请输入手机号码"}
        name = "patient_sign_in_status.html" if action == "send" and \
            request.headers.get("hx-request") == "true" else "patient_sign_in.html"
        return render_page(request, name, ctx, status_code=422)
    if action == "sign_in" and not code.strip():
        return render_page(request, "patient_sign_in.html",
                           {**ctx, "errors": {"code": "请输入短信验证码"}}, status_code=422)
    if action == "send":
        try:
            sms.request_code(db, phone)
            ctx["sent"] = True
        except OnetripError as exc:
            ctx["errors"] = {"phone": exc.text}
        name = "patient_sign_in_status.html" if request.headers.get("hx-request") == "true" \
            else "patient_sign_in.html"
        return render_page(request, name, ctx, status_code=200 if ctx["sent"] else 422)
    try:
        outcome = sms.sign_in(db, phone, code,
                              client_ip=request.client.host if request.client else "")
    except OnetripError as exc:
        return render_page(request, "patient_sign_in.html", {**ctx, "errors": {"phone":
                                                                              exc.text}}, 422)
    if outcome.secret is None:
        text = outcome.error.text if outcome.error else "验证码错误"
        return render_page(request, "patient_sign_in.html", {**ctx, "errors": {"code": text}},
                           status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(TOKEN_COOKIE, outcome.secret, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


def signed_out(request: Request, db: Session) -> Response:
    """End the signed-in session on the server (a copy of the cookie no longer signs in)
    and clear the cookie: the patient's and the staff's sign-out."""
    secret = request.cookies.get(TOKEN_COOKIE, "")
    if secret.startswith(auth.SESSION_PREFIX):
        auth.end_session(db, secret)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response


@router.get("/sign-out")
def sign_out(request: Request, db: DbSession) -> Response:
    return signed_out(request, db)


# --- my family ------------------------------------------------------------------------------


@router.get("/me/family")
def my_family(request: Request, db: DbSession, principal: OptionalPrincipal,
              flash: str | None = None) -> Response:
    me = account_principal(principal)
    if me is None or me.account_id is None:
        return to_sign_in("/me/family")
    members = service.family_of(db, me.account_id)
    for m in members:
        audit.record(db, me, action="family.read", patient_id=m.patient_id)
    account = db.get(Account, me.account_id)
    limit = get_settings().max_family_members
    return render_page(request, "my_family.html", {
        "members": members, "labels": RELATIONSHIP_LABELS, "doc_labels": DOCUMENT_LABELS,
        "phone": service.masked_phone(account) if account else "",
        "flash": _FLASHES.get(flash or ""),
        "can_add": len(members) < limit, "limit": limit,
        "masked": service.masked_id_number, "masked_phone": service.masked_phone})


_FLASHES = {"added": "已添加，实名信息已登记",
            "existing": "该证件已登记过，已关联到已有就诊人档案（同一人只有一份档案）"}


def read_form(name: Annotated[str, Form(max_length=50)] = "",
          relationship: Annotated[str, Form(max_length=16)] = "self",
          document_type: Annotated[str, Form(max_length=40)] = "resident_id_card",
          document_number: Annotated[str, Form(max_length=80)] = "",
          birth_date: Annotated[str, Form(max_length=10)] = "",
          gender: Annotated[str, Form(max_length=8)] = "",
          phone: Annotated[str, Form(max_length=24)] = "") -> RegistrationForm:
    return RegistrationForm(name, relationship, document_type, document_number, birth_date,
                            gender, phone)


def form_context(members_have_self: bool, values: dict[str, str],
              errors: dict[str, str]) -> dict[str, object]:
    relationships = [r for r in Relationship if not (members_have_self and r is
                                                     Relationship.self_)]
    return {"values": values, "errors": errors, "relationships": relationships,
            "labels": RELATIONSHIP_LABELS, "doc_types": list(DocumentType),
            "doc_labels": DOCUMENT_LABELS,
            "citizen_types": [t.value for t in CITIZEN_NUMBER_TYPES]}


@router.get("/me/family/new")
def new_member_page(request: Request, db: DbSession, principal: OptionalPrincipal) -> Response:
    me = account_principal(principal)
    if me is None or me.account_id is None:
        return to_sign_in("/me/family/new")
    has_self = any(m.relation == "self" for m in service.family_of(db, me.account_id))
    values = {"relationship": "child" if has_self else "self",
              "document_type": DocumentType.resident_id_card.value}
    return render_page(request, "family_member_form.html", form_context(has_self, values, {}))


@dataclass
class RegistrationForm:
    """The registration form as typed; ``check`` gives field errors before the service."""

    name: str = ""
    relationship: str = "self"
    document_type: str = "resident_id_card"
    document_number: str = ""
    birth_date: str = ""
    gender: str = ""
    phone: str = ""

    def check(self) -> tuple[date | None, dict[str, str]]:
        errors: dict[str, str] = {}
        if not self.name.strip():
            errors["name"] = "请填写姓名"
        if not self.document_number.strip():
            errors["document_number"] = "请填写证件号码"
        if self.relationship not in {r.value for r in Relationship}:
            errors["relationship"] = "请选择与本人关系"
        if self.document_type not in {t.value for t in DocumentType}:
            errors["document_type"] = "请选择证件类型"
        born: date | None = None
        if self.birth_date:
            try:
                born = date.fromisoformat(self.birth_date)
            except ValueError:
                errors["birth_date"] = "日期格式应为YYYY-MM-DD"
        return born, errors


def register_from_form(db: Session, principal: Principal, form: RegistrationForm, *,
                       default_phone: str = "") -> tuple[Registration | None, dict[str, str]]:
    """Register through the service inside a savepoint; a refusal becomes field errors."""
    born, errors = form.check()
    if errors:
        return None, errors
    try:
        with db.begin_nested():
            reg = service.register_patient(
                db, principal, name=form.name, document_type=DocumentType(form.document_type),
                document_number=form.document_number,
                phone=form.phone.strip() or default_phone, birth_date=born,
                gender=form.gender if form.gender in ("male", "female") else "",
                relationship=Relationship(form.relationship)
                if principal.role in ACCOUNT_ROLES else None)
    except OnetripError as exc:
        if exc.http_status >= 500 or exc.http_status in (401, 403):
            raise
        return None, field_errors(exc)
    return reg, {}


@router.post("/me/family/new")
def add_member(request: Request, db: DbSession, principal: OptionalPrincipal,
               form: Annotated[RegistrationForm, Depends(read_form)]) -> Response:
    """ID-1/ID-6: register 本人 or a family member, each real-name."""
    me = account_principal(principal)
    if me is None or me.account_id is None:
        return to_sign_in("/me/family/new")
    has_self = any(m.relation == "self" for m in service.family_of(db, me.account_id))
    account = db.get(Account, me.account_id)
    reg, errors = register_from_form(
        db, me, form, default_phone=service.patient_phone(account) if account else "")
    if reg is None:
        return render_page(request, "family_member_form.html",
                           form_context(has_self, asdict(form), errors), status_code=422)
    flash = "existing" if not reg.created else "added"
    return RedirectResponse(f"/me/family?flash={flash}", status_code=303)
