"""Exam errors: stable codes the API and pages show (Chinese messages)."""

from __future__ import annotations

from onetrip.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class UnknownExam(InvalidInput):
    code = "unknown_exam"
    message = "检查目录中没有该检查项目"


class CatalogueRejected(InvalidInput):
    code = "catalogue_invalid"
    message = "检查目录或规则有误"


class CreatinineRequired(InvalidInput):
    code = "creatinine_required"
    message = "碘对比剂增强检查需要近30天内的肌酐结果（60岁及以上、肾病或糖尿病患者）"


class ResourceInvalid(InvalidInput):
    code = "resource_invalid"
    message = "检查设备设置有误"


class CalendarOverlap(Conflict):
    code = "calendar_overlap"
    message = "检查设备的号源时段互相重叠"


class ResourceNotFound(NotFound):
    code = "exam_resource_not_found"
    message = "未找到该检查设备"


class OrderNotFound(NotFound):
    code = "exam_order_not_found"
    message = "未找到该检查申请"


class ExamBookingNotFound(NotFound):
    code = "exam_booking_not_found"
    message = "未找到该检查预约"


class ExamSlotFull(Conflict):
    code = "exam_slot_full"
    message = "所选检查号源已约满，请重新安排"


class PlanBreaksRules(Conflict):
    code = "plan_breaks_rules"
    message = "该安排不符合检查准备或先后规则"


class OrderNotPending(Conflict):
    code = "exam_order_not_pending"
    message = "该检查申请已预约或已取消"


class ChannelNotAllowed(PermissionDenied):
    code = "exam_channel_not_allowed"
    message = "此渠道只能预约单项、无需特殊准备的检查，多项或复杂检查请到检查预约中心"


class NotCancellable(Conflict):
    code = "exam_not_cancellable"
    message = "该检查预约已无法取消"


class FollowupUnavailable(Conflict):
    code = "followup_unavailable"
    message = "复诊门诊号源已约满，检查与复诊均未预约，请重新安排行程"


class FastingInvalid(InvalidInput):
    code = "fasting_since_invalid"
    message = "末次进食时间须在过去24小时内"
