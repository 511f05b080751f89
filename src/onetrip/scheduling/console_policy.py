"""Pool-policy settings (号池设置) from the console, for hospital and regional admins (the
policy is the hospital's: a department admin cannot open it).

The floors are policy (BK-2: at least 80% of slots bookable online; BK-4: at least 40% of
the online slots reserved for referrals); ``rules.PoolPolicy`` enforces them and names the
setting at fault, so each message is shown beside its field. Shares are typed in percent.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from onetrip.deps import DbSession
from onetrip.identity.service import Principal
from onetrip.numbers import parse_digits
from onetrip.org import service as org_service
from onetrip.org.models import Hospital
from onetrip.scheduling import service
from onetrip.scheduling.console_pages import PolicyAdmin, console_hospital, page, parse_clock
from onetrip.scheduling.rules import (
    POOL_LABELS,
    PolicyInvalid,
    PoolPolicy,
    allocate_pools,
    floor_problems,
)

router = APIRouter(prefix="/console/policy", include_in_schema=False)

PERCENT = {"online_share": "线上号源（含转诊）占比",
           "referral_share_of_online": "转诊预留占线上号源",
           "priority_share": "优先号占比", "clinic_share": "诊间号占比"}
INTEGER = {"online_release_days": "线上提前放号天数", "referral_release_days": "转诊提前放号天数",
           "referral_return_days": "转诊号未用回收天数", "hold_minutes": "锁号分钟",
           "waitlist_offer_minutes": "候补确认分钟", "late_after_minutes": "迟到顺延分钟",
           "check_in_opens_minutes": "提前报到分钟", "max_active_appointments": "每人有效预约上限",
           "slot_minutes": "默认每号分钟"}
CLOCK = {"online_release_time": "每日放号时间", "same_day_open_time": "当日挂号开放时间",
         "next_day_cutoff": "次日号预约截止", "cancel_deadline_time": "退号截止（前一工作日）"}
SAMPLE_CAPACITY = 20


def _shown(policy: PoolPolicy) -> dict[str, str]:
    """The stored policy as the form shows it (shares in percent)."""
    out = {k: f"{getattr(policy, k) * 100:g}" for k in PERCENT}
    out |= {k: str(getattr(policy, k)) for k in INTEGER}
    out |= {k: getattr(policy, k).strftime("%H:%M") for k in CLOCK}
    return out


def read_policy_form(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values and the fields that could not be read."""
    typed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for k in PERCENT:
        try:
            share = float(values.get(k, "").strip().rstrip("%")) / 100
        except ValueError:
            share = math.nan
        if math.isfinite(share):
            typed[k] = share
        else:
            errors[k] = "请填写0到100之间的数字"
    for k in INTEGER:
        raw = values.get(k, "").strip()
        number = parse_digits(raw) if len(raw) <= 5 else None
        if number is not None:
            typed[k] = number
        else:
            errors[k] = "请填写整数"
    for k in CLOCK:
        clock = parse_clock(values.get(k, ""))
        if clock is None:
            errors[k] = "时间格式应为 时:分（24小时制），如 07:00"
        else:
            typed[k] = clock
    return typed, errors


def _bound(err: Any, field: str) -> str:
    ctx = err.get("ctx") or {}
    scale = 100 if field in PERCENT else 1
    if "ge" in ctx:
        return f"不能小于{float(ctx['ge']) * scale:g}"
    if "le" in ctx:
        return f"不能大于{float(ctx['le']) * scale:g}"
    return "取值无效"


def policy_problems(typed: dict[str, Any]) -> dict[str, str]:
    """Each broken limit or policy floor, by field (empty when the policy is valid)."""
    try:
        PoolPolicy.model_validate(typed)
    except ValidationError as exc:
        # Every broken floor, not only the first the model stops at; a bound beside its
        # field wins over a floor computed from the same out-of-range value.
        problems = floor_problems(PoolPolicy.model_construct(**typed))
        for err in exc.errors():
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, PolicyInvalid):
                problems.setdefault(cause.field or "online_share", str(cause))
            elif err["loc"]:
                problems[str(err["loc"][0])] = _bound(err, str(err["loc"][0]))
        return problems
    return {}


def _ctx(hospital: Hospital, values: dict[str, str], errors: dict[str, str],
         policy: PoolPolicy) -> dict[str, Any]:
    layout = Counter(allocate_pools(SAMPLE_CAPACITY, policy))
    return {"hospital": hospital, "values": values, "errors": errors,
            "PERCENT": PERCENT, "INTEGER": INTEGER, "CLOCK": CLOCK,
            "sample": [(POOL_LABELS[p], n) for p, n in layout.items()],
            "sample_capacity": SAMPLE_CAPACITY}


#: Flash codes; a link brings a code, never the words shown.
FLASHES = {"saved": "号池设置已保存，之后生成的排班按新比例分配号源"}


@router.get("")
def policy_page(request: Request, db: DbSession, principal: PolicyAdmin,
                hospital: Annotated[str | None, Query(max_length=40)] = None,
                flash: str = "") -> Response:
    h = console_hospital(db, principal, hospital)
    policy, _rule = service.policy_for(db, h.id)
    return page(request, "console_policy.html", principal, {
        **_ctx(h, _shown(policy), {}, policy), "flash": FLASHES.get(flash),
        "hospitals": _hospitals(db, principal)})


def _hospitals(db: DbSession, principal: Principal) -> list[Hospital]:
    return org_service.list_hospitals(db) if principal.role.value == "regional_admin" else []


@router.post("")
async def save_policy(request: Request, db: DbSession, principal: PolicyAdmin) -> Response:
    """Store the pool policy; refused field by field below the floors (BK-2, BK-4)."""
    form = await request.form()
    h = console_hospital(db, principal, str(form.get("hospital", "")) or None)
    values = {k: str(form.get(k, ""))[:20] for k in (*PERCENT, *INTEGER, *CLOCK)}
    typed, errors = read_policy_form(values)
    if not errors:
        errors = policy_problems(typed)
    current, rule = service.policy_for(db, h.id)
    if errors:
        return page(request, "console_policy.html", principal, {
            **_ctx(h, values, errors, current), "hospitals": _hospitals(db, principal)},
            status_code=422)
    merged = current.model_dump() | typed
    service.set_policy(db, hospital=h, pools=merged, penalty=rule.model_dump(mode="json"),
                       by=principal)
    return RedirectResponse("/console/policy?" + urlencode(
        {"hospital": h.code, "flash": "saved"}), status_code=303)
