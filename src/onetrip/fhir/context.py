"""What every FHIR read and search needs: the session, who asks, when, and the base URLs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from onetrip.errors import NotAuthenticated
from onetrip.fhir.params import Query
from onetrip.identity.service import Principal

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    db: Session
    principal: Principal | None
    now: datetime
    #: The public site (booking deep links) and the FHIR base, without a trailing slash.
    site: str
    base: str
    #: Rows looked up during this request (the session's identity map holds them weakly,
    #: so a file of thousands of slots would otherwise load each doctor again and again).
    seen: dict[tuple[type, int], Any] = field(default_factory=dict)

    def row(self, model: type[T], ident: int) -> T:
        """The row with this primary key (which must exist), loaded once per request."""
        key = (model, ident)
        if key not in self.seen:
            self.seen[key] = self.db.get_one(model, ident)
        row: T = self.seen[key]
        return row

    def signed_in(self) -> Principal:
        if self.principal is None:
            raise NotAuthenticated()
        return self.principal


Found = tuple[list[dict[str, Any]], int]


def page(ctx: Context, query: Query, stmt: Select[*tuple[Any, ...]],
         render: Callable[[Any], dict[str, Any]]) -> Found:
    """One page of ``stmt`` (ordered) as resources, and the total number of matches."""
    total = ctx.db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    count = query.count()
    if count == 0:
        return [], total
    rows = ctx.db.execute(stmt.limit(count).offset(query.offset())).all()
    return [render(row) for row in rows], total


def page_list(query: Query, resources: list[dict[str, Any]]) -> Found:
    """Paging over resources already in memory (small sets: a patient's appointments)."""
    offset, count = query.offset(), query.count()
    return resources[offset:offset + count], len(resources)
