"""预约诊疗指标 in the console: the booking indicators of a period (``indicators``) for the
hospital's admins and the region's, the regulator included.

A hospital's page lists its departments; the region's lists its hospitals, or one
hospital's departments when one is picked. A period that cannot be read is refused in
place, with the current month's figures below the message.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from onetrip.deps import DbSession, Now, require_role
from onetrip.identity.service import Principal
from onetrip.org import service as org_service
from onetrip.scheduling import indicators
from onetrip.scheduling.console_pages import local_today, page

router = APIRouter(prefix="/console/indicators", include_in_schema=False)
Viewer = Annotated[Principal, Depends(require_role(*indicators.VIEWERS))]


@router.get("")
def indicators_page(request: Request, db: DbSession, principal: Viewer, now: Now,
                    start: Annotated[str, Query(alias="from")] = "",
                    end: Annotated[str, Query(alias="to")] = "",
                    month: str = "", hospital: str = "") -> Response:
    today = local_today(now)
    error, status = None, 200
    try:
        first, last = indicators.period(start, end, month) if start or end or month \
            else (today.replace(day=1), today)
    except indicators.IndicatorPeriodInvalid as exc:
        error, status = exc.text, 422
        first, last = today.replace(day=1), today
    hospitals, departments = indicators.viewable(db, principal, hospital or None)
    rows = indicators.figures(db, hospitals, first, last, departments, today=today)
    ctx: dict[str, Any] = {
        "rows": rows, "first": first, "last": last, "error": error,
        "region": indicators.region_total(rows), "region_kiosks": indicators.region_kiosks(rows),
        "regional": principal.role in indicators.REGIONAL and not hospital,
        "picked": hospital,
        "choices": org_service.list_hospitals(db) if principal.role in indicators.REGIONAL
        else [], "floor": indicators.ONLINE_SHARE_FLOOR}
    return page(request, "console_indicators.html", principal, ctx, status_code=status)
