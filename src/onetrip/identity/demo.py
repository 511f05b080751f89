"""The identity part of the demo region 示范市 (deterministic for a seed, bulk-inserted).

10,000 patients with valid, distinct resident ID numbers (children under 16 by household
register, some adults also by social-security card or health card), a few of every other
document type, a handful of deliberate duplicates for the EMPI list, phone accounts with
families and proxies, and one staff account per staff role: the doctor's account is linked to
a 心血管内科 practitioner and the department admin manages 心血管内科, so the console opens
on that doctor's sessions and that department. Demo passwords and TOTP secrets derive from
the seed so that ``onetrip demo`` can print them; they are for the demo only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from faker import Faker
from sqlalchemy import insert
from sqlalchemy.orm import Session

from onetrip.db import utcnow
from onetrip.identity import auth
from onetrip.identity.crypto import keyring
from onetrip.identity.models import Account, FamilyMember, Patient, PatientDocument
from onetrip.identity.rules import (
    TOTP_REQUIRED,
    DocumentType,
    Role,
    age_on,
    index_purpose,
    resident_id_check_char,
)
from onetrip.org.models import Region

PATIENTS = 10_000
ACCOUNTS = 2_000
#: Districts and counties of 绍兴 (the demo region's phone area 0575), GB/T 2260.
DISTRICTS = ("330602", "330603", "330604", "330624", "330681", "330683")
_MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
                    "151", "152", "155", "156", "158", "159", "180", "185", "186", "187",
                    "188", "189")
_TODAY = date(2026, 11, 1)  # fixed, so the same seed gives the same people every year
_OTHER_DOCUMENTS: list[tuple[DocumentType, str]] = [
    (DocumentType.passport, "E{:08d}"),
    (DocumentType.hk_macao_permit, "H{:08d}"),
    (DocumentType.taiwan_permit, "{:08d}"),
    (DocumentType.foreigner_permanent_residence, "USA{:012d}"),
]


@dataclass(frozen=True)
class DemoStaff:
    username: str
    name: str
    role: Role
    hospital_code: str | None
    password: str
    totp_secret: str | None
    department_code: str | None = None
    practitioner_code: str | None = None


#: The demo department admin's department, and the practitioner the demo doctor's account
#: is (the first doctor the demo creates at 示范市人民医院, in 心血管内科).
DEMO_DEPARTMENT = ("xxgnk", "心血管内科")
DEMO_PRACTITIONER_CODE = "d0001"


def demo_staff(seed: int) -> list[DemoStaff]:
    """One staff account per staff role, with credentials derived from the seed."""
    rng = random.Random(f"staff-{seed}")
    rows = [("window", "窗口收费员", Role.window, "sfsrmyy"),
            ("doctor", "门诊医生", Role.doctor, "sfsrmyy"),
            ("pharmacist", "门诊药师", Role.pharmacist, "sfsrmyy"),
            ("exam", "检查预约中心", Role.exam_centre, "sfsrmyy"),
            ("hadmin", "医院信息科", Role.hospital_admin, "sfsrmyy"),
            ("radmin", "区域平台管理员", Role.regional_admin, None),
            ("regulator", "卫健委监管员", Role.regulator, None),
            ("dadmin", "心内科排班员", Role.department_admin, "sfsrmyy")]
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    out = []
    for user, name, role, hospital in rows:
        password = "".join(rng.choice(alphabet) for _ in range(12))
        totp = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(32))
        out.append(DemoStaff(
            f"demo-{user}", name, role, hospital, password,
            totp if role in TOTP_REQUIRED else None,
            department_code=DEMO_DEPARTMENT[0] if role is Role.department_admin else None,
            practitioner_code=DEMO_PRACTITIONER_CODE if role is Role.doctor else None))
    return out


#: Phones of a demo patient account (本人 with a child) and a proxy account (no 本人) that
#: sign in with an SMS code from the outbox (``onetrip identity sms-outbox PHONE``).
DEMO_PATIENT_PHONE = "13957500001"
DEMO_PROXY_PHONE = "13957500002"


def _mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _birth(rng: random.Random, min_age: int, max_age: int) -> date:
    start = _TODAY - timedelta(days=365 * max_age + max_age // 4)
    end = _TODAY - timedelta(days=365 * min_age + min_age // 4 + 1)
    return start + timedelta(days=rng.randrange((end - start).days))


#: BK-10: the demo hospitals' kiosks by level, one token each (the secrets are not kept; a
#: kiosk set up to try gets its own, ``onetrip token create --role kiosk``). The second-level
#: hospital has one for about 90,000 visits a year: the indicator shows it short.
DEMO_KIOSKS = {"tertiary": 10, "secondary": 1, "primary": 1}


def load_identity(db: Session, region: Region, seed: int) -> dict[str, int]:
    """Bulk-load demo patients, documents, accounts, families and staff."""
    rng = random.Random(f"identity-{seed}")
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    kr = keyring()
    people: list[dict[str, Any]] = []
    docs: list[tuple[int, DocumentType, str]] = []  # (person index, type, number)
    used: set[str] = set()
    for i in range(PATIENTS):
        born = _birth(rng, 0, 95)
        while True:
            first17 = f"{rng.choice(DISTRICTS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
            if first17 not in used:
                used.add(first17)
                break
        number = first17 + resident_id_check_char(first17)
        male = int(number[16]) % 2 == 1
        people.append({"name": fake.name_male() if male else fake.name_female(),
                       "gender": "male" if male else "female", "birth_date": born,
                       "phone": _mobile(rng)})
        age = age_on(born, _TODAY)
        docs.append((i, DocumentType.household_register if age < 16
                     else DocumentType.resident_id_card, number))
        if age >= 16 and rng.random() < 0.08:  # ID-1: insured, also registered by SSC
            docs.append((i, DocumentType.social_security_card, number))
        if rng.random() < 0.03:  # ID-4: the resident e-health card
            docs.append((i, DocumentType.health_card, f"{rng.getrandbits(256):064X}"))
    for n, (doc_type, pattern) in enumerate(_OTHER_DOCUMENTS * 4):
        people.append({"name": fake.name(), "gender": "", "phone": _mobile(rng),
                       "birth_date": _birth(rng, 18, 80)})
        number = pattern.format((n + 1) * 10**6 + rng.randrange(10**6))  # distinct by n
        docs.append((len(people) - 1, doc_type, number))
    for n in range(5):  # ID-3: the same person registered again with a passport
        twin = people[rng.randrange(PATIENTS)]
        if age_on(twin["birth_date"], _TODAY) < 18:
            continue
        people.append(dict(twin))
        docs.append((len(people) - 1, DocumentType.passport, f"E9{n:07d}"))
    plan = _plan_families(rng, people)
    ids = _insert_people(db, kr, people)
    db.execute(insert(PatientDocument), [
        {"patient_id": ids[i], "document_type": t.value,
         "number_cipher": kr.encrypt(number, purpose="document"),
         "number_index": kr.blind_index(number, purpose=index_purpose(t))}
        for i, t, number in docs])
    accounts, members = _insert_families(db, kr, plan, ids)
    for s in demo_staff(seed):
        auth.create_staff(db, username=s.username, name=s.name, role=s.role,
                          hospital_code=s.hospital_code, department_code=s.department_code,
                          practitioner_code=s.practitioner_code, password=s.password,
                          totp_secret=s.totp_secret)
    kiosks = 0
    for h in region.hospitals:
        for n in range(1, DEMO_KIOSKS.get(h.level, 1) + 1):
            row, _secret = auth.create_token(db, role=Role.kiosk, hospital_code=h.code,
                                             label=f"门诊大厅{n}号自助机")
            row.created_at = utcnow() - timedelta(days=365)  # in service all the demo's past
            kiosks += 1
    return {"patients": len(people), "documents": len(docs), "accounts": accounts,
            "family_members": members, "staff": len(demo_staff(seed)), "kiosks": kiosks}


def _insert_people(db: Session, kr: Any, people: list[dict[str, Any]]) -> list[int]:
    rows = [{"name": p["name"], "gender": p["gender"], "birth_date": p["birth_date"],
             "phone_cipher": kr.encrypt("+86" + p["phone"], purpose="phone"),
             "phone_index": kr.blind_index("+86" + p["phone"], purpose="phone")}
            for p in people]
    result = db.execute(insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
                        rows)
    return [row[0] for row in result]


Plan = list[tuple[str, list[tuple[int, str]]]]


def _plan_families(rng: random.Random, people: list[dict[str, Any]]) -> Plan:
    """ID-6: accounts of adults with children and parents; some proxies without 本人.
    Returns (account phone, [(person index, relation)]) per account."""
    ages = [age_on(p["birth_date"], _TODAY) for p in people[:PATIENTS]]
    adults = [i for i, a in enumerate(ages) if 25 <= a <= 55]
    children = [i for i, a in enumerate(ages) if a < 14]
    elderly = [i for i, a in enumerate(ages) if a >= 65]
    for pool in (adults, children, elderly):
        rng.shuffle(pool)
    holder = adults.pop()
    people[holder]["phone"] = DEMO_PATIENT_PHONE
    plan: Plan = [(DEMO_PATIENT_PHONE, [(holder, "self"), (children.pop(), "child")]),
                  (DEMO_PROXY_PHONE, [(elderly.pop(), "parent"), (elderly.pop(), "parent")])]
    phones = {DEMO_PATIENT_PHONE, DEMO_PROXY_PHONE}
    while len(plan) < ACCOUNTS and adults:
        holder = adults.pop()
        phone = people[holder]["phone"]
        if phone in phones:
            continue
        phones.add(phone)
        if rng.random() < 0.1:  # a son or daughter managing parents only: a proxy
            plan.append((phone, [(elderly.pop(), "parent")]))
            continue
        family = [(holder, "self")]
        if rng.random() < 0.5:
            family.append((children.pop(), "child"))
        if rng.random() < 0.3:
            family.append((elderly.pop(), "parent"))
        plan.append((phone, family))
    return plan


def _insert_families(db: Session, kr: Any, plan: Plan, ids: list[int]) -> tuple[int, int]:
    account_rows = [{"phone_cipher": kr.encrypt("+86" + phone, purpose="phone"),
                     "phone_index": kr.blind_index("+86" + phone, purpose="phone")}
                    for phone, _family in plan]
    account_ids = [r[0] for r in db.execute(
        insert(Account).returning(Account.id, sort_by_parameter_order=True), account_rows)]
    member_rows = [{"account_id": acc, "patient_id": ids[i], "relation": rel}
                   for acc, (_phone, family) in zip(account_ids, plan, strict=True)
                   for i, rel in family]
    db.execute(insert(FamilyMember), member_rows)
    return len(account_ids), len(member_rows)
