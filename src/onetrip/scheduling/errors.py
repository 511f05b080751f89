"""Scheduling errors: stable codes the API and pages show (Chinese messages)."""

from __future__ import annotations

from onetrip.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class ScheduleNotFound(NotFound):
    code = "schedule_not_found"
    message = "未找到该排班"


class SlotNotFound(NotFound):
    code = "slot_not_found"
    message = "未找到该号源"


class AppointmentNotFound(NotFound):
    code = "appointment_not_found"
    message = "未找到该预约"


class SlotTaken(Conflict):
    code = "slot_taken"
    message = "该号源已被预约"


class ScheduleFull(Conflict):
    code = "schedule_full"
    message = "该出诊已无可预约号源"


class PoolClosed(Conflict):
    code = "pool_closed"
    message = "该号源当前未向此渠道开放"


class ScheduleNotOpen(Conflict):
    code = "schedule_stopped"
    message = "该出诊已停诊或已替诊"


class ScheduleOver(Conflict):
    code = "schedule_over"
    message = "该出诊已结束，不能再停诊或替诊"


class SlotInPast(Conflict):
    code = "slot_in_past"
    message = "该号源时间已过"


class LimitReached(Conflict):
    code = "limit_reached"
    message = "已达到预约数量限制"


class PatientRestricted(Conflict):
    code = "patient_restricted"
    message = "因失约记录，暂不能线上预约"


class ChannelNotAllowed(PermissionDenied):
    code = "channel_not_allowed"
    message = "当前身份不能使用该预约渠道"


class HoldExpired(Conflict):
    code = "hold_expired"
    message = "锁号已过期，请重新选择号源"


class NotCancellable(Conflict):
    code = "not_cancellable"
    message = "该预约当前不能取消"


class CancelDeadlinePassed(Conflict):
    code = "cancel_deadline_passed"
    message = "已过取消截止时间，请到窗口办理"


class PolicyRejected(InvalidInput):
    code = "policy_invalid"
    message = "号池设置不符合政策要求"


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    message = "同一幂等键已用于不同的请求内容"


class CheckInRefused(Conflict):
    code = "check_in_refused"
    message = "当前不能报到"


class NoShowRefused(Conflict):
    code = "noshow_refused"
    message = "该预约当前不能登记爽约"


class WaitlistClosed(Conflict):
    code = "waitlist_unavailable"
    message = "当前不能候补"


class OfferUnavailable(Conflict):
    code = "offer_unavailable"
    message = "该改约或候补机会已失效"


class OutsideDepartment(PermissionDenied):
    code = "outside_department"
    message = "只能管理本科室（含下属专科）的排班"
