"""Authentication: bearer tokens, staff sign-in (argon2 password + TOTP), sign-in sessions.

Secrets are shown once and stored as SHA-256 hashes. Bearer tokens start with ``ot_``,
sign-in sessions with ``os_``; both travel in ``Authorization: Bearer`` or the session
cookie. Staff sessions end after ``staff_idle_minutes`` without a request (30 by default);
every sign-in issues a fresh session secret.

Sign-in functions return a :class:`SignInOutcome` instead of raising, so that a failure
counter (lockout after 5 failures) is committed together with the refusal.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any, cast

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.db import among_bound, read_built, utcnow
from onetrip.errors import InvalidInput, NotAuthenticated, OnetripError
from onetrip.identity.crypto import keyring
from onetrip.identity.errors import (
    AccountLocked,
    DepartmentNotApplicable,
    DepartmentRequired,
    InvalidCredentials,
    PractitionerAlreadyLinked,
    PractitionerNotApplicable,
    SessionExpired,
    TokenAmbiguous,
    TokenNotFound,
    UsernameTaken,
)
from onetrip.identity.models import (
    Account,
    ApiToken,
    FamilyMember,
    SignInSession,
    Staff,
)
from onetrip.identity.principal import Principal
from onetrip.identity.rules import (
    DEPARTMENT_SCOPED,
    HOSPITAL_SCOPED,
    PRACTITIONER_ROLES,
    TOTP_REQUIRED,
    Role,
)
from onetrip.numbers import parse_id
from onetrip.org import service as org_service

log = logging.getLogger(__name__)

TOKEN_PREFIX = "ot_"
SESSION_PREFIX = "os_"
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=30)
_hasher = PasswordHasher()
# Verified against when a username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("onetrip-no-such-user")


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    message = "令牌无效或已吊销"


class HospitalScopeRequired(InvalidInput):
    code = "hospital_required"
    message = "该角色必须指定所属医院"


class NotAStaffRole(InvalidInput):
    code = "not_a_staff_role"
    message = "患者和家属通过手机验证码登录，不能创建为工作人员"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def secret_key(secret: str) -> str:
    """A secret named without itself: its kind (a sign-in session or an API token, told by
    its prefix) and its hash, as ``holders`` looks it up."""
    kind = "session" if secret.startswith(SESSION_PREFIX) else "token"
    return f"{kind}:{_hash(secret)}"


def holders(db: Session, keys: Collection[str]) -> dict[str, str]:
    """Who holds each of these secrets (by ``secret_key``), the same for every sign-in of
    theirs: ``account:<id>``, ``staff:<id>`` or ``api-token:<id>``; one read for each kind
    present. Unknown ones are absent."""
    sessions = {k.removeprefix("session:") for k in keys if k.startswith("session:")}
    tokens = {k.removeprefix("token:") for k in keys if k.startswith("token:")}
    out: dict[str, str] = {}
    if sessions:
        out |= {f"session:{h}": f"account:{account}" if account is not None else f"staff:{staff}"
                for h, account, staff in db.execute(select(
                    SignInSession.token_hash, SignInSession.account_id,
                    SignInSession.staff_id).where(SignInSession.token_hash.in_(sessions)))}
    if tokens:
        out |= {f"token:{h}": f"api-token:{token}" for h, token in db.execute(select(
            ApiToken.token_hash, ApiToken.id).where(ApiToken.token_hash.in_(tokens)))}
    return out


@dataclass(frozen=True)
class Scope:
    """Where a staff account or token acts: its hospital, a department admin's department,
    a doctor's own practitioner record."""

    hospital_id: int | None = None
    department_id: int | None = None
    practitioner_id: int | None = None


def resolve_scope(db: Session, role: Role, hospital_code: str | None,
                  department_code: str | None = None,
                  practitioner_code: str | None = None) -> Scope:
    """The ids of the hospital, department and practitioner codes a role is given; raises
    when the role needs one it lacks or is given one it cannot have."""
    if hospital_code is None:
        if role in HOSPITAL_SCOPED:
            raise HospitalScopeRequired()
        if department_code or practitioner_code:
            raise HospitalScopeRequired("科室和医生按医院编码查找，请同时指定医院")
        return Scope()
    hospital = org_service.access_hospital(db, hospital_code)
    if department_code and role not in DEPARTMENT_SCOPED:
        raise DepartmentNotApplicable(detail={"role": role.value})
    if role in DEPARTMENT_SCOPED and not department_code:
        raise DepartmentRequired(detail={"role": role.value})
    if practitioner_code and role not in PRACTITIONER_ROLES:
        raise PractitionerNotApplicable(detail={"role": role.value})
    department = org_service.access_department(db, hospital, department_code) \
        if department_code else None
    practitioner = org_service.access_practitioner(db, hospital, practitioner_code) \
        if practitioner_code else None
    return Scope(hospital.id, department.id if department else None,
                 practitioner.id if practitioner else None)


def check_practitioner_free(db: Session, practitioner_id: int,
                            staff_id: int | None = None) -> None:
    """One staff account per practitioner; raises PractitionerAlreadyLinked."""
    other = db.scalar(select(Staff).where(Staff.practitioner_id == practitioner_id,
                                          Staff.id != (staff_id or 0)))
    if other is not None:
        raise PractitionerAlreadyLinked(detail={"username": other.username})


# --- bearer tokens --------------------------------------------------------------------------


def create_token(db: Session, *, role: Role, hospital_code: str | None = None,
                 department_code: str | None = None, label: str = "") -> tuple[ApiToken, str]:
    """Create a bearer token; returns the row and the secret, shown once and never stored."""
    scope = resolve_scope(db, role, hospital_code, department_code)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(token_hash=_hash(secret), prefix=secret[:10], role=role.value,
                   hospital_id=scope.hospital_id, department_id=scope.department_id,
                   label=label)
    db.add(row)
    db.flush()
    return row, secret


def list_tokens(db: Session, *, hospital_code: str | None = None,
                include_revoked: bool = False) -> list[ApiToken]:
    """Tokens, newest first (of one hospital when a code is given)."""
    stmt = select(ApiToken).order_by(ApiToken.id.desc())
    if hospital_code is not None:
        stmt = stmt.where(ApiToken.hospital_id == org_service.access_hospital(
            db, hospital_code).id)
    if not include_revoked:
        stmt = stmt.where(ApiToken.revoked_at.is_(None))
    return list(db.scalars(stmt))


def revoke_token(db: Session, which: str) -> tuple[ApiToken, bool]:
    """Revoke a token named by its id, its printed prefix or the secret itself (a kiosk
    taken out of service). Returns the row and whether it was revoked now (False: it
    already was, and keeps its first revocation time)."""
    which = which.strip()
    if (token_id := parse_id(which)) is not None:
        rows = [r for r in [db.get(ApiToken, token_id)] if r is not None]
    elif len(which) > 12:
        rows = list(db.scalars(select(ApiToken).where(ApiToken.token_hash == _hash(which))))
    else:
        rows = list(db.scalars(select(ApiToken).where(ApiToken.prefix == which))) \
            if which.startswith(TOKEN_PREFIX) and len(which) >= 6 else []
    if not rows:
        raise TokenNotFound(detail={"token": which[:10]})
    if len(rows) > 1:
        raise TokenAmbiguous(detail={"ids": [r.id for r in rows]})
    row = rows[0]
    if row.revoked_at is not None:
        return row, False
    row.revoked_at = utcnow()
    db.flush()
    log.info("token %s (%s) revoked", row.id, row.prefix)
    return row, True


def authenticate_token(db: Session, secret: str, *, request_id: str = "",
                       client_ip: str = "") -> Principal:
    """Resolve a bearer token or session secret to its principal; raises InvalidToken or
    SessionExpired."""
    [found] = authenticate_many(db, [(secret, request_id, client_ip)])
    if isinstance(found, OnetripError):
        raise found
    return found


def authenticate_many(db: Session, requests: Sequence[tuple[str, str, str]],
                      ) -> list[Principal | OnetripError]:
    """``authenticate_token`` for a batch of requests (secret, request id, client address):
    the bearer tokens with one read, sign-in sessions one by one; each answer is the
    principal or the error that refused it."""
    hashes = {_hash(s) for s, _rid, _ip in requests if not s.startswith(SESSION_PREFIX)}
    tokens = {row.token_hash: row for row in read_built(
        db, _tokens_statement, {"hashes": list(hashes)})} if hashes else {}
    out: list[Principal | OnetripError] = []
    for secret, request_id, client_ip in requests:
        if secret.startswith(SESSION_PREFIX):
            try:
                out.append(_session_principal(db, secret, request_id=request_id,
                                              client_ip=client_ip))
            except OnetripError as exc:
                out.append(exc)
            continue
        row = tokens.get(_hash(secret))
        if row is None or row.revoked_at is not None:
            out.append(InvalidToken())
            continue
        out.append(Principal(role=Role(row.role), hospital_id=row.hospital_id,
                             department_id=row.department_id, token_id=row.id,
                             label=row.label, request_id=request_id, client_ip=client_ip))
    return out


@lru_cache(maxsize=4)
def _tokens_statement(dialect: str) -> Any:
    """The tokens of a batch's requests (what a principal needs), built once per dialect."""
    t = cast(Table, ApiToken.__table__).c
    return select(t.token_hash, t.id, t.role, t.hospital_id, t.department_id, t.label,
                  t.revoked_at).where(among_bound(dialect, t.token_hash, "hashes"))


# --- sessions -------------------------------------------------------------------------------


def start_session(db: Session, *, staff: Staff | None = None, account: Account | None = None,
                  client_ip: str = "") -> str:
    """Open a new session (never reuse one: no session fixation); returns its secret."""
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    db.add(SignInSession(token_hash=_hash(secret), staff_id=staff.id if staff else None,
                         account_id=account.id if account else None, client_ip=client_ip[:45]))
    db.flush()
    return secret


def end_session(db: Session, secret: str) -> None:
    row = db.scalar(select(SignInSession).where(SignInSession.token_hash == _hash(secret)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        db.flush()


def _session_principal(db: Session, secret: str, *, request_id: str,
                       client_ip: str) -> Principal:
    row = db.scalar(select(SignInSession).where(SignInSession.token_hash == _hash(secret)))
    if row is None or row.revoked_at is not None:
        raise InvalidToken()
    now = utcnow()
    settings = get_settings()
    idle = settings.staff_idle_minutes if row.staff_id else settings.patient_idle_minutes
    if now - row.last_seen_at > timedelta(minutes=idle):
        raise SessionExpired()
    if now - row.last_seen_at > timedelta(seconds=30):
        row.last_seen_at = now
    if row.staff_id is not None:
        staff = db.get(Staff, row.staff_id)
        if staff is None or not staff.is_active:
            raise InvalidToken()
        return Principal(role=Role(staff.role), hospital_id=staff.hospital_id,
                         department_id=staff.department_id,
                         practitioner_id=staff.practitioner_id, staff_id=staff.id,
                         session_id=row.id, label=staff.username,
                         request_id=request_id, client_ip=client_ip)
    assert row.account_id is not None
    return Principal(role=account_role(db, row.account_id), account_id=row.account_id,
                     session_id=row.id, patient_ids=account_patient_ids(db, row.account_id),
                     request_id=request_id, client_ip=client_ip)


def account_patient_ids(db: Session, account_id: int) -> frozenset[int]:
    """ID-6: the patients a phone account may act for (itself and its family members)."""
    return frozenset(db.scalars(select(FamilyMember.patient_id)
                                .where(FamilyMember.account_id == account_id)))


def account_role(db: Session, account_id: int) -> Role:
    """An account with its own 本人 record acts as a patient; otherwise as a proxy."""
    own = db.scalar(select(FamilyMember.id).where(FamilyMember.account_id == account_id,
                                                  FamilyMember.relation == "self").limit(1))
    return Role.patient if own is not None else Role.proxy


# --- staff ---------------------------------------------------------------------------------


def staff_id_of(db: Session, who: str) -> int | None:
    """A staff member's id from its id or username."""
    if (staff_id := parse_id(who)) is not None:
        return db.scalar(select(Staff.id).where(Staff.id == staff_id))
    return db.scalar(select(Staff.id).where(Staff.username == who))


@dataclass(frozen=True)
class NewStaff:
    staff: Staff
    password: str
    totp_secret: str | None


def create_staff(db: Session, *, username: str, name: str, role: Role,
                 hospital_code: str | None = None, department_code: str | None = None,
                 practitioner_code: str | None = None, password: str | None = None,
                 totp_secret: str | None = None) -> NewStaff:
    """Create a staff member; admins (department admins included) get a TOTP secret (MLPS
    level 3: two factors). A department admin names its department, a doctor may name its
    practitioner. Returns the password and TOTP secret, to be shown once."""
    if role in (Role.patient, Role.proxy):
        raise NotAStaffRole()
    if db.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        raise UsernameTaken(detail={"username": username})
    scope = resolve_scope(db, role, hospital_code, department_code, practitioner_code)
    if scope.practitioner_id is not None:
        check_practitioner_free(db, scope.practitioner_id)
    password = password or secrets.token_urlsafe(12)
    if role in TOTP_REQUIRED:
        totp_secret = totp_secret or pyotp.random_base32()
    staff = Staff(username=username, name=name, role=role.value, hospital_id=scope.hospital_id,
                  department_id=scope.department_id, practitioner_id=scope.practitioner_id,
                  password_hash=_hasher.hash(password),
                  totp_cipher=keyring().encrypt(totp_secret, purpose="totp")
                  if totp_secret else None)
    db.add(staff)
    db.flush()
    return NewStaff(staff, password, totp_secret)


@dataclass(frozen=True)
class SignInOutcome:
    """A session secret, or the error to show (after the failure has been counted)."""

    secret: str | None = None
    error: OnetripError | None = None


def _totp_ok(staff: Staff, code: str) -> bool:
    if staff.totp_cipher is None:
        return True
    secret = keyring().decrypt(staff.totp_cipher, purpose="totp")
    return pyotp.TOTP(secret).verify(code.strip(), valid_window=1)


def sign_in_staff(db: Session, *, username: str, password: str, totp: str = "",
                  client_ip: str = "") -> SignInOutcome:
    """Password (argon2) plus TOTP where set; 5 failures lock the account for 30 minutes."""
    now = utcnow()
    staff = db.scalar(select(Staff).where(Staff.username == username.strip()))
    if staff is None or not staff.is_active:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return SignInOutcome(error=InvalidCredentials())
    if staff.locked_until is not None and staff.locked_until > now:
        return SignInOutcome(error=AccountLocked())
    password_ok: bool
    try:
        password_ok = _hasher.verify(staff.password_hash, password)
    except (VerificationError, InvalidHashError):
        password_ok = False
    if not password_ok or not _totp_ok(staff, totp):
        staff.failed_attempts += 1
        if staff.failed_attempts >= MAX_FAILURES:
            staff.failed_attempts = 0
            staff.locked_until = now + LOCKOUT
            log.warning("staff %s locked after %d failed sign-ins", staff.id, MAX_FAILURES)
            db.flush()
            return SignInOutcome(error=AccountLocked())
        db.flush()
        return SignInOutcome(error=InvalidCredentials())
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = _hasher.hash(password)
    staff.failed_attempts = 0
    staff.locked_until = None
    staff.last_sign_in_at = now
    return SignInOutcome(secret=start_session(db, staff=staff, client_ip=client_ip))
