"""Key rotation: re-encrypt every protected value under the current data key and recompute
every blind index under the current index key (``onetrip identity rekey``).

Procedure (docs/identity.md): put the new data key first in ``ONETRIP_DATA_KEYS`` and keep
the old ones after it, restart, run ``rekey``; once it reports 0 values left under old
keys, remove the old keys. A new index key takes effect for lookups as soon as the setting
changes, so change it and run ``rekey`` in one maintenance window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity.crypto import Keyring, key_id_of, keyring
from onetrip.identity.models import Account, Patient, PatientDocument, SmsOutbox, Staff
from onetrip.identity.rules import DocumentType, index_purpose


def _batches(db: Session, model: Any, size: int) -> Iterator[list[Any]]:
    last = 0
    while True:
        rows = list(db.scalars(select(model).where(model.id > last).order_by(model.id)
                               .limit(size)))
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _phone(kr: Keyring, row: Any) -> bool:
    value = kr.decrypt(row.phone_cipher, purpose="phone")
    index = kr.blind_index(value, purpose="phone")
    changed = key_id_of(row.phone_cipher) != kr.current or row.phone_index != index
    if changed:
        row.phone_cipher = kr.encrypt(value, purpose="phone")
        row.phone_index = index
    return changed


def _document(kr: Keyring, row: PatientDocument) -> bool:
    value = kr.decrypt(row.number_cipher, purpose="document")
    index = kr.blind_index(value, purpose=index_purpose(DocumentType(row.document_type)))
    changed = key_id_of(row.number_cipher) != kr.current or row.number_index != index
    if changed:
        row.number_cipher = kr.encrypt(value, purpose="document")
        row.number_index = index
    return changed


def _totp(kr: Keyring, row: Staff) -> bool:
    if row.totp_cipher is None or key_id_of(row.totp_cipher) == kr.current:
        return False
    row.totp_cipher = kr.encrypt(kr.decrypt(row.totp_cipher, purpose="totp"), purpose="totp")
    return True


def rekey(db: Session, *, batch: int = 1000) -> dict[str, int]:
    """Bring every protected value to the current keys; returns how many changed per table."""
    kr = keyring()
    counts: dict[str, int] = {}
    for name, model, fix in (("patient", Patient, _phone), ("account", Account, _phone),
                             ("sms_outbox", SmsOutbox, _phone),
                             ("patient_document", PatientDocument, _document),
                             ("staff", Staff, _totp)):
        changed = 0
        for rows in _batches(db, model, batch):
            changed += sum(fix(kr, row) for row in rows)
            db.flush()
        counts[name] = changed
    return counts


def values_under_old_keys(db: Session) -> int:
    """How many ciphertexts are still under a key other than the current one."""
    prefix = f"v1:{keyring().current}:"
    total = 0
    for column in (Patient.phone_cipher, Account.phone_cipher, SmsOutbox.phone_cipher,
                   PatientDocument.number_cipher, Staff.totp_cipher):
        total += db.scalar(select(func.count()).where(column.is_not(None),
                                                      ~column.startswith(prefix))) or 0
    return total
