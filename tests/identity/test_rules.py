"""Pure identity rules, tested with plain values."""

from __future__ import annotations

from datetime import date

import pytest

from onetrip.identity.rules import (
    CITIZEN_NUMBER_TYPES,
    HOSPITAL_SCOPED,
    ROLE_LABELS,
    TOTP_REQUIRED,
    DocumentProblem,
    DocumentType,
    Relationship,
    Role,
    age_on,
    document_facts,
    document_problem,
    index_purpose,
    is_guardian,
    is_valid_resident_id,
    mask_document,
    mask_phone,
    may_act_for_patient,
    may_manage_department,
    needs_guardian,
    normalise_mobile,
    resident_id_check_char,
)
from tests.factories import resident_id

TODAY = date(2026, 11, 22)


def test_id2_gb11643_example_from_the_standard_is_valid_and_lowercase_x_is_accepted() -> None:
    assert is_valid_resident_id("11010519491231002X")
    assert is_valid_resident_id("11010519491231002x")
    assert resident_id_check_char("11010519491231002") == "X"


@pytest.mark.parametrize(("value", "problem"), [
    ("110105194912310021", DocumentProblem.check_digit),
    ("11010519491231002", DocumentProblem.malformed),
    ("1101051949123100211", DocumentProblem.malformed),
    ("11010519491231002Y", DocumentProblem.malformed),
    ("11010519490230002X", DocumentProblem.birth_date),  # 30 February
    ("11010518800101002X", DocumentProblem.birth_date),  # before 1890
    ("99010519491231002X", DocumentProblem.region_code),  # no province 99
    ("11000019491231002X", DocumentProblem.region_code),  # province only, no city
])
def test_id2_resident_id_problems_are_told_apart(value: str, problem: DocumentProblem) -> None:
    assert document_problem(DocumentType.resident_id_card, value, TODAY) is problem
    assert not is_valid_resident_id(value)


def test_id2_future_birth_date_is_refused() -> None:
    tomorrow = resident_id(date(2026, 11, 23))
    assert document_problem(DocumentType.resident_id_card, tomorrow, TODAY) is \
        DocumentProblem.future_birth_date
    assert document_problem(DocumentType.resident_id_card, resident_id(TODAY), TODAY) is None


def test_id2_hk_macao_taiwan_residence_permit_numbers_pass_the_resident_id_check() -> None:
    first17 = "81000019900101123"
    assert is_valid_resident_id(first17 + resident_id_check_char(first17))


@pytest.mark.parametrize(("doc_type", "good", "bad"), [
    (DocumentType.health_card, "A" * 32 + "0123456789abcdef" * 2, "A" * 63),
    (DocumentType.passport, "E12345678", "AB-12"),
    (DocumentType.passport, "ea1234567", "ABCDEFGH"),
    (DocumentType.hk_macao_permit, "H12345678", "K12345678"),
    (DocumentType.hk_macao_permit, "M1234567801", "M123"),
    (DocumentType.taiwan_permit, "12345678", "1234567A"),
    (DocumentType.foreigner_permanent_residence, "USA330619830101", "US3306198301"),
])
def test_id2_every_document_type_has_its_own_format(doc_type: DocumentType, good: str,
                                                    bad: str) -> None:
    assert document_problem(doc_type, good, TODAY) is None
    assert document_problem(doc_type, bad, TODAY) is DocumentProblem.malformed


def test_id2_at_least_five_document_types_and_new_permanent_residence_card_checksum() -> None:
    assert len(DocumentType) >= 5
    first17 = "93310519900101123"
    good = first17 + resident_id_check_char(first17)
    bad = first17 + ("0" if good[-1] != "0" else "1")
    doc = DocumentType.foreigner_permanent_residence
    assert document_problem(doc, good, TODAY) is None
    assert document_problem(doc, bad, TODAY) is DocumentProblem.check_digit


def test_id3_citizen_number_documents_share_one_index_namespace() -> None:
    assert {index_purpose(t) for t in CITIZEN_NUMBER_TYPES} == {"citizen"}
    assert index_purpose(DocumentType.passport) == "passport"
    number = resident_id(date(1980, 5, 17), seq="123")
    assert document_facts(DocumentType.social_security_card, number) == (date(1980, 5, 17),
                                                                       "male")


def test_id1_mobile_numbers_are_validated_and_normalised() -> None:
    assert normalise_mobile("138 1234 5678") == "+8613812345678"
    assert normalise_mobile("+86 13812345678") == "+8613812345678"
    assert normalise_mobile("+852 5123 4567") == "+85251234567"
    for bad in ("12345678901", "0575-88000120", "1381234567", "", "abc"):
        assert normalise_mobile(bad) is None, bad


def test_pipl_masks_show_first_six_and_last_four_only() -> None:
    assert mask_document("330102199001011234") == "330102********1234"
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_phone("+85251234567") == "+852 ****4567"
    assert "12345" not in mask_document("E12345678")


def test_id6_children_under_14_need_an_adult_account_holder_as_guardian() -> None:
    assert needs_guardian(date(2013, 11, 23), TODAY)  # 13 until tomorrow
    assert not needs_guardian(date(2012, 11, 22), TODAY)
    assert age_on(date(2008, 11, 23), TODAY) == 17
    assert is_guardian(Relationship.self_, date(2008, 11, 22), TODAY)
    assert not is_guardian(Relationship.self_, date(2008, 11, 23), TODAY)
    assert not is_guardian(Relationship.spouse, date(1980, 1, 1), TODAY)


def test_id6_who_may_act_for_a_patient() -> None:
    own = frozenset({1, 2})
    assert may_act_for_patient(Role.patient, 1, own)
    assert not may_act_for_patient(Role.proxy, 3, own)
    for role in (Role.window, Role.doctor, Role.pharmacist, Role.exam_centre,
                 Role.hospital_admin, Role.regional_admin):
        assert may_act_for_patient(role, 3, frozenset())
    assert not may_act_for_patient(Role.regulator, 1, frozenset({1}))
    assert not may_act_for_patient(Role.kiosk, 1, frozenset())


def test_a_department_admin_manages_only_its_departments_of_its_hospital() -> None:
    mine = frozenset({10, 11})  # 内科 and 心血管内科 under it
    admin = Role.department_admin
    assert may_manage_department(admin, 1, mine, 1, 11)
    assert not may_manage_department(admin, 1, mine, 1, 20)  # another department
    assert not may_manage_department(admin, 1, mine, 2, 11)  # same id, another hospital
    assert not may_manage_department(admin, 1, frozenset(), 1, 11)  # none named
    assert may_manage_department(Role.hospital_admin, 1, frozenset(), 1, 20)
    assert not may_manage_department(Role.hospital_admin, 1, frozenset(), 2, 20)
    assert may_manage_department(Role.regional_admin, None, frozenset(), 2, 20)
    for role in (Role.doctor, Role.window, Role.kiosk, Role.regulator):
        assert not may_manage_department(role, 1, mine, 1, 11), role


def test_department_admins_are_hospital_scoped_admins_with_a_second_factor() -> None:
    assert Role.department_admin in HOSPITAL_SCOPED and Role.department_admin in TOTP_REQUIRED
    assert ROLE_LABELS[Role.department_admin] == "科室管理员"
