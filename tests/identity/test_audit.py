"""Audit: one append-only row per read or write of patient data, hash-chained."""

from __future__ import annotations

from itertools import pairwise

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from onetrip.identity import audit, service
from onetrip.identity.models import AuditEvent
from onetrip.identity.principal import Principal
from onetrip.identity.rules import Role
from onetrip.org import service as org_service
from tests.factories import WINDOW, auth, make_patient, make_token


def _rows(db: Session) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_every_read_writes_exactly_one_row_with_who_what_where(client: TestClient,
                                                               db: Session) -> None:
    p = make_patient(db)
    token = make_token(db, Role.doctor, org_service.access_hospital(db, "sfsrmyy"))
    before = len(_rows(db))
    r = client.get(f"/api/v1/patients/{p.id}", headers={**auth(token), "X-Request-ID": "rq-1"})
    assert r.status_code == 200
    new = _rows(db)[before:]
    assert len(new) == 1
    row = new[0]
    assert (row.patient_id, row.action, row.outcome, row.actor_role, row.request_id,
            row.client_ip) == (p.id, "patient.read", "allowed", "doctor", "rq-1", "testclient")
    assert row.token_id is not None and row.at.tzinfo is not None


def test_a_denied_read_is_kept_although_the_request_rolls_back(client: TestClient,
                                                              db: Session) -> None:
    p = make_patient(db)
    token = make_token(db, Role.regulator)
    db.commit()  # the request's rollback must not undo the test's own setup
    before = len(_rows(db))
    r = client.get(f"/api/v1/patients/{p.id}", headers=auth(token))
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    new = _rows(db)[before:]
    assert [(x.patient_id, x.action, x.outcome) for x in new] == [
        (p.id, "patient.read", "denied")]
    assert audit.verify_chain(db).ok


def test_hash_chain_verifies_and_detects_an_edited_row(db: Session) -> None:
    p = make_patient(db)
    for _ in range(3):
        service.access_patient(db, WINDOW, p.id)
    report = audit.verify_chain(db)
    assert report.ok and report.rows >= 4
    target = _rows(db)[-2]
    # A database superuser can switch the guard off; the chain still tells.
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update_delete"))
    else:
        db.execute(text("DROP TRIGGER audit_event_no_update"))
    db.execute(text("UPDATE audit_event SET actor = 'someone else' WHERE id = :i"),
               {"i": target.id})
    assert audit.verify_chain(db).first_broken_id == target.id


@pytest.mark.parametrize("statement", [
    "UPDATE audit_event SET outcome = 'allowed'",
    "DELETE FROM audit_event",
])
def test_the_database_refuses_to_change_audit_rows(db: Session, statement: str) -> None:
    p = make_patient(db)
    service.access_patient(db, WINDOW, p.id)
    count = len(_rows(db))
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text(statement))
    assert len(_rows(db)) == count


def test_a_transaction_extends_one_chain_each_row_linked_to_the_one_before(
        db: Session) -> None:
    patients = [make_patient(db) for _ in range(6)]
    for p in patients:
        service.access_patient(db, Principal(role=Role.pharmacist, hospital_id=1), p.id)
    audit.record_many(db, [audit.Entry(WINDOW, "patient.read", p.id) for p in patients])
    rows = _rows(db)
    assert len({r.chain for r in rows[-12:]}) == 1  # one chain for this transaction
    for chain in {r.chain for r in rows}:
        mine = [r for r in rows if r.chain == chain]
        assert mine[0].prev_hash == audit.GENESIS
        assert all(b.prev_hash == a.hash for a, b in pairwise(mine))
    assert audit.verify_chain(db).ok


def test_concurrent_transactions_extend_different_chains_without_waiting(
        race_engine: Engine) -> None:
    if race_engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: transactions cannot overlap")
    first, second = Session(race_engine), Session(race_engine)
    try:
        for session in (first, second):  # both open at once: neither waits for the other
            audit.record_many(session, [audit.Entry(WINDOW, "patient.read", None)] * 3)
        chains = [{r.chain for r in s.scalars(select(AuditEvent))} for s in (first, second)]
        assert len(chains[0]) == len(chains[1]) == 1 and chains[0] != chains[1]
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
    with Session(race_engine) as db:
        assert audit.verify_chain(db).ok and audit.verify_chain(db).rows == 6


def test_audit_verify_command_reports_an_intact_chain(db: Session) -> None:
    from onetrip.cli import app

    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "审计链完整" in result.output


@pytest.mark.parametrize("query", ["patient_id=-1", "patient_id=0", "staff_id=-5",
                                   f"patient_id={2**63}"])
def test_an_audit_search_for_an_impossible_id_is_refused_and_leaves_no_row(
        client: TestClient, db: Session, query: str) -> None:
    token = make_token(db, Role.regional_admin)
    db.commit()
    before = len(_rows(db))
    r = client.get(f"/api/v1/audit?{query}", headers=auth(token))
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert len(_rows(db)) == before
