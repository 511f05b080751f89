"""Who is acting in a request: built by ``deps`` from a token or a sign-in session."""

from __future__ import annotations

from dataclasses import dataclass

from onetrip.identity.rules import Role


@dataclass(frozen=True)
class Principal:
    """A role, the hospital it is scoped to, where it came from and whom it may act for.

    ``department_id`` is the department a department admin acts for (with the departments
    under it); ``practitioner_id`` the practitioner a doctor's account is linked to.
    ``patient_ids`` holds the patients of a phone account (ID-6: itself and the family
    members it manages); staff and tokens leave it empty. ``request_id`` and ``client_ip``
    go into every audit row the request writes.
    """

    role: Role
    hospital_id: int | None = None
    department_id: int | None = None
    practitioner_id: int | None = None
    token_id: int | None = None
    label: str = ""
    staff_id: int | None = None
    account_id: int | None = None
    session_id: int | None = None
    patient_ids: frozenset[int] = frozenset()
    request_id: str = ""
    client_ip: str = ""

    @property
    def actor(self) -> str:
        """How the audit trail names this principal (never a phone or identity number)."""
        if self.staff_id is not None:
            who = f"staff:{self.staff_id}"
        elif self.account_id is not None:
            who = f"account:{self.account_id}"
        elif self.token_id is not None:
            who = f"token:{self.token_id}"
        else:
            who = "system"
        return f"{who} {self.label}".strip()[:120]
