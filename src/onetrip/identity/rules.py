"""Pure identity rules: roles, document formats, masking, family and access rules.

No database here; every function takes plain values. Rules taken from policy cite their
requirement (ID-1..ID-6).
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

import phonenumbers


class Role(StrEnum):
    patient = "patient"
    proxy = "proxy"
    window = "window"
    kiosk = "kiosk"
    doctor = "doctor"
    pharmacist = "pharmacist"
    exam_centre = "exam_centre"
    department_admin = "department_admin"
    hospital_admin = "hospital_admin"
    regional_admin = "regional_admin"
    regulator = "regulator"


ROLE_LABELS: dict[Role, str] = {
    Role.patient: "患者",
    Role.proxy: "家属代理",
    Role.window: "窗口",
    Role.kiosk: "自助机",
    Role.doctor: "医生",
    Role.pharmacist: "药师",
    Role.exam_centre: "检查预约中心",
    Role.department_admin: "科室管理员",
    Role.hospital_admin: "医院管理员",
    Role.regional_admin: "区域管理员",
    Role.regulator: "卫健委监管",
}

#: Roles that act within one hospital and must be scoped to it.
HOSPITAL_SCOPED = frozenset(
    {Role.window, Role.kiosk, Role.doctor, Role.pharmacist, Role.exam_centre,
     Role.department_admin, Role.hospital_admin}
)

#: Roles that act for one department of their hospital (and the sub-departments under it)
#: and must name it: the department admin (科室管理员) keeps that department's schedules.
DEPARTMENT_SCOPED = frozenset({Role.department_admin})

#: Roles whose accounts may name the practitioner they are (医生账号关联医生).
PRACTITIONER_ROLES = frozenset({Role.doctor})

#: Admins who manage staff accounts (their department, their practitioner link).
STAFF_ADMINS = frozenset({Role.hospital_admin, Role.regional_admin})

#: People who sign in with a phone and act for the patients of their account (ID-6).
ACCOUNT_ROLES = frozenset({Role.patient, Role.proxy})

#: Staff who care for patients and may open any patient's record in the region.
CARE_STAFF = frozenset({Role.window, Role.doctor, Role.pharmacist, Role.exam_centre,
                        Role.hospital_admin, Role.regional_admin})

#: Staff who may register patients and add documents at a desk or kiosk (ID-5, offline).
REGISTRARS = frozenset({Role.window, Role.kiosk, Role.hospital_admin})

#: Staff who see the full identity number when checking a document at the desk.
REVEALERS = frozenset({Role.window, Role.hospital_admin})

#: Staff who run the master patient index and read the audit trail.
EMPI_ADMINS = frozenset({Role.hospital_admin, Role.regional_admin})

#: Staff roles that need a second factor (MLPS 2.0 level 3: two factors for admins).
TOTP_REQUIRED = frozenset({Role.department_admin, Role.hospital_admin, Role.regional_admin})


def may_administer_hospital(role: Role, principal_hospital_id: int | None,
                            hospital_id: int) -> bool:
    """A hospital admin manages its own hospital; a regional admin manages every hospital."""
    if role is Role.regional_admin:
        return True
    return role is Role.hospital_admin and principal_hospital_id == hospital_id


def may_manage_department(role: Role, principal_hospital_id: int | None,
                          managed: frozenset[int], hospital_id: int, department_id: int) -> bool:
    """Whether a role may change the schedules of one department (templates, generation,
    import, stop-clinic, substitute).

    A regional admin may for every hospital, a hospital admin for every department of its
    hospital, a department admin only for ``managed`` (its department and the
    sub-departments under it, e.g. 内科 and 心血管内科) within its hospital.
    """
    if role is Role.department_admin:
        return principal_hospital_id == hospital_id and department_id in managed
    return may_administer_hospital(role, principal_hospital_id, hospital_id)


def may_act_for_patient(role: Role, patient_id: int, own_patient_ids: frozenset[int]) -> bool:
    """Whether a role may read or act on one patient's record.

    ID-6: a patient or proxy only for the patients of its own account; care staff for any
    patient of the region; the regulator never (aggregates only); kiosks only after a card
    is presented (see ``service.access_patient_by_document``): the kiosk pages then act with
    that one patient in ``own_patient_ids``, a kiosk token alone has none.
    """
    if role in ACCOUNT_ROLES or role is Role.kiosk:
        return patient_id in own_patient_ids
    return role in CARE_STAFF


# --- documents (ID-2) ---------------------------------------------------------------------


class DocumentType(StrEnum):
    resident_id_card = "resident_id_card"
    social_security_card = "social_security_card"
    health_card = "health_card"
    household_register = "household_register"
    passport = "passport"
    hk_macao_permit = "hk_macao_permit"
    taiwan_permit = "taiwan_permit"
    foreigner_permanent_residence = "foreigner_permanent_residence"


DOCUMENT_LABELS: dict[DocumentType, str] = {
    DocumentType.resident_id_card: "居民身份证",
    DocumentType.social_security_card: "社会保障卡",
    DocumentType.health_card: "居民电子健康卡",
    DocumentType.household_register: "户口簿",
    DocumentType.passport: "护照",
    DocumentType.hk_macao_permit: "港澳居民来往内地通行证",
    DocumentType.taiwan_permit: "台湾居民来往大陆通行证",
    DocumentType.foreigner_permanent_residence: "外国人永久居留身份证",
}

#: ID-3: these three documents carry the same 公民身份号码 (the social-security number and
#: the number printed in the household register are the citizen's ID number), so one
#: number on any of them is one person.
CITIZEN_NUMBER_TYPES = frozenset({DocumentType.resident_id_card,
                                  DocumentType.social_security_card,
                                  DocumentType.household_register})


def index_purpose(doc_type: DocumentType) -> str:
    """The blind-index namespace of a document type (citizen-number documents share one)."""
    return "citizen" if doc_type in CITIZEN_NUMBER_TYPES else doc_type.value


class DocumentProblem(StrEnum):
    """Why a document number was refused; each has its own error code and message."""

    malformed = "malformed"
    check_digit = "check_digit"
    birth_date = "birth_date"
    future_birth_date = "future_birth_date"
    region_code = "region_code"


_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
# GB/T 2260 province-level codes; 81/82/83 appear on residence permits of HK, Macao, Taiwan.
_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83",
})
_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")
#: The earliest birth date a record may have (a resident ID number's date, or one typed).
OLDEST_BIRTH = date(1890, 1, 1)


def resident_id_check_char(first17: str) -> str:
    """GB 11643-1999 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalise_resident_id(value: str) -> str:
    return value.strip().upper()


def resident_id_birth_date(value: str) -> date | None:
    """The birth date encoded in digits 7-14, or None when it is not a calendar date."""
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def resident_id_gender(value: str) -> str:
    """Digit 17 is odd for men and even for women."""
    return "male" if int(value[16]) % 2 else "female"


def resident_id_problem(value: str, today: date) -> DocumentProblem | None:
    """Why an 18-character resident ID number is invalid, or None when it is valid."""
    v = normalise_resident_id(value)
    if not _RESIDENT_ID.match(v):
        return DocumentProblem.malformed
    if v[:2] not in _PROVINCES or (v[:2] not in {"81", "82", "83"} and v[2:4] == "00"):
        return DocumentProblem.region_code
    born = resident_id_birth_date(v)
    if born is None or born < OLDEST_BIRTH:
        return DocumentProblem.birth_date
    if born > today:
        return DocumentProblem.future_birth_date
    if resident_id_check_char(v[:17]) != v[17]:
        return DocumentProblem.check_digit
    return None


def is_valid_resident_id(value: str) -> bool:
    """ID-2: an 18-character resident ID number with a valid GB 11643 check character, a
    real birth date not in the future and a plausible region code (lowercase x accepted)."""
    return resident_id_problem(value, date.today()) is None


_FORMATS: dict[DocumentType, re.Pattern[str]] = {
    # 居民电子健康卡 virtual card id (EHCID): 64 hexadecimal characters.
    DocumentType.health_card: re.compile(r"^[0-9A-F]{64}$"),
    # ICAO 9303 document number: up to 9 letters and digits; at least 5 in practice.
    DocumentType.passport: re.compile(r"^(?=.*\d)[A-Z0-9]{5,9}$"),
    # 港澳居民来往内地通行证: H (Hong Kong) or M (Macao), 8 digits, optional 2-digit issue count.
    DocumentType.hk_macao_permit: re.compile(r"^[HM]\d{8}(\d{2})?$"),
    # 台湾居民来往大陆通行证 (card since 2015): 8 digits.
    DocumentType.taiwan_permit: re.compile(r"^\d{8}$"),
    # 外国人永久居留身份证, 2004 edition: nationality (3 letters) + 12 digits.
    DocumentType.foreigner_permanent_residence: re.compile(r"^[A-Z]{3}\d{12}$"),
}


def normalise_document(doc_type: DocumentType, number: str) -> str:
    return re.sub(r"\s+", "", number).upper()


def document_problem(doc_type: DocumentType, number: str, today: date) -> DocumentProblem | None:
    """Why ``number`` is not a valid document of ``doc_type`` (ID-2), or None."""
    v = normalise_document(doc_type, number)
    if doc_type in CITIZEN_NUMBER_TYPES:
        return resident_id_problem(v, today)
    if doc_type is DocumentType.foreigner_permanent_residence and v.startswith("9"):
        # 2023 edition: 18 characters with the resident-ID check character, starting with 9.
        if not _RESIDENT_ID.match(v):
            return DocumentProblem.malformed
        return None if resident_id_check_char(v[:17]) == v[17] else DocumentProblem.check_digit
    return None if _FORMATS[doc_type].match(v) else DocumentProblem.malformed


def document_facts(doc_type: DocumentType, number: str) -> tuple[date | None, str]:
    """Birth date and gender a document number carries (citizen numbers only)."""
    if doc_type in CITIZEN_NUMBER_TYPES:
        v = normalise_document(doc_type, number)
        return resident_id_birth_date(v), resident_id_gender(v)
    return None, ""


# --- phones (ID-1) ------------------------------------------------------------------------


def normalise_mobile(value: str) -> str | None:
    """ID-1: a reachable mobile number as E.164 (``+8613812345678``), or None when the
    value is not a valid mobile number. Numbers without a country code are read as Chinese."""
    raw = value.strip()
    if not raw or len(raw) > 24:
        return None
    try:
        parsed = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    kind = phonenumbers.number_type(parsed)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE,
                    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- masking (PIPL) -----------------------------------------------------------------------


def mask_document(number: str) -> str:
    """First 6 and last 4 characters shown: ``330102********1234``."""
    if len(number) <= 10:
        keep = max(1, len(number) // 4)
        return number[:keep] + "*" * (len(number) - 2 * keep) + number[-keep:]
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_phone(e164: str) -> str:
    """``138****5678`` for a Chinese mobile; other countries keep their code: ``+852 ****5678``."""
    if e164.startswith("+86") and len(e164) == 14:
        national = e164[3:]
        return national[:3] + "****" + national[-4:]
    if e164.startswith("+"):
        code = str(phonenumbers.parse(e164).country_code)
        return f"+{code} ****{e164[-4:]}"
    return "****" + e164[-4:]


def mask_name(name: str) -> str:
    """A name as a printed ticket or a public screen shows it: ``张*``, ``王*明``, ``欧**华``."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# --- family members (ID-6) ----------------------------------------------------------------


class Relationship(StrEnum):
    self_ = "self"
    child = "child"
    parent = "parent"
    spouse = "spouse"
    other = "other"


RELATIONSHIP_LABELS: dict[Relationship, str] = {
    Relationship.self_: "本人",
    Relationship.child: "子女",
    Relationship.parent: "父母",
    Relationship.spouse: "配偶",
    Relationship.other: "其他",
}

GUARDIAN_AGE = 14
ADULT_AGE = 18


def age_on(birth_date: date, today: date) -> int:
    years = today.year - birth_date.year
    return years - ((today.month, today.day) < (birth_date.month, birth_date.day))


def needs_guardian(birth_date: date, today: date) -> bool:
    """ID-6: a child under 14 may only be added to an account that has a guardian."""
    return age_on(birth_date, today) < GUARDIAN_AGE


def is_guardian(relationship: Relationship, birth_date: date, today: date) -> bool:
    """The account holder (本人) is the guardian when an adult."""
    return relationship is Relationship.self_ and age_on(birth_date, today) >= ADULT_AGE
