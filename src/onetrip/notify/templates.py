"""Chinese message templates for each step of a visit (RM-1).

Each template names the variables it needs; ``render`` fills them. The SMS gateways of
China take a template code plus parameters, so a real gateway is given ``code`` and the
variables, and the console channel the rendered text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SIGNATURE = "【最多跑一次】"


@dataclass(frozen=True)
class Template:
    code: str
    text: str


TEMPLATES: dict[str, Template] = {
    "booking_confirmed": Template(
        "OT_BOOKED",
        "您已预约{time}{department}{doctor}，就诊地点：{place}。请于就诊前{checkin_minutes}分钟"
        "凭身份证或医保卡在自助机或分诊台签到。{cancel_rule}"),
    "day_before": Template(
        "OT_DAY_BEFORE",
        "温馨提醒：您明天{time}在{place}就诊（{department}）。请携带身份证或医保卡，"
        "提前{checkin_minutes}分钟签到。"),
    "hour_before": Template(
        "OT_HOUR_BEFORE",
        "您预约的{department}将于{time}开始，请在一小时内到达{place}签到候诊。"),
    "cancelled": Template(
        "OT_CANCELLED",
        "您{time}{department}的预约已取消。{reason}如需就诊请重新预约。"),
    "stop_clinic": Template(
        "OT_STOP_CLINIC",
        "抱歉，{department}{time}的门诊因故停诊，该预约已取消。{offer}"),
    "substituted": Template(
        "OT_SUBSTITUTED",
        "您{time}{department}的预约改由{doctor}接诊，就诊时间和地点（{place}）不变。"
        "{cancel_rule}"),
    "waitlist_offer": Template(
        "OT_WAITLIST",
        "您候补的{department}有号源了：{time}。号源为您保留至{expires}，请及时确认，逾期自动释放。"),
    "waitlist_closed": Template(
        "OT_WAITLIST_CLOSED",
        "抱歉，您候补的{department}{time}门诊因故停诊，候补已取消。如需就诊请预约其他时间。"),
    "your_turn": Template(
        "OT_YOUR_TURN",
        "请您到{place}就诊（{department}），医生已叫号。"),
    "no_show": Template(
        "OT_NO_SHOW",
        "您{time}{department}的预约未按时签到，已记为爽约一次。累计爽约将暂停网上预约资格，"
        "如有疑问请联系医院。"),
    # Hooks for the later steps of a visit: exams, reports, pharmacy, payment (RM-1).
    "exam_preparation": Template(
        "OT_EXAM_PREP",
        "您的{exam}安排在{time}，地点：{place}。检查前准备：{instruction}"),
    "report_ready": Template(
        "OT_REPORT_READY",
        "您{time}的{report}报告已出，可在手机上查看或到{place}打印。"),
    "pharmacy_window": Template(
        "OT_PHARMACY",
        "您的药品已备好，请到{place}取药（取药号{ticket}）。"),
    "payment_receipt": Template(
        "OT_PAYMENT",
        "您已支付{amount}元（{item}），支付时间{time}。电子票据可在手机上查看。"),
}


#: What staff and patients see as a message's kind.
LABELS = {"booking_confirmed": "预约成功", "day_before": "就诊前一日提醒",
          "hour_before": "就诊前一小时提醒", "cancelled": "预约取消", "substituted": "替诊通知",
          "stop_clinic": "停诊通知", "waitlist_offer": "候补号源",
          "waitlist_closed": "候补取消", "your_turn": "叫号提醒",
          "no_show": "爽约通知", "exam_preparation": "检查准备", "report_ready": "报告已出",
          "pharmacy_window": "取药提醒", "payment_receipt": "缴费凭证"}


def render(template: str, variables: dict[str, Any]) -> str:
    """The text of one message, signature first; raises KeyError for an unknown template."""
    if "cancel_rule" not in variables and "cancel_deadline" in variables:
        # Queued before messages carried the rule: the deadline was then always ahead.
        variables = {**variables,
                     "cancel_rule": f"如需取消，请在{variables['cancel_deadline']}前操作。"}
    return SIGNATURE + TEMPLATES[template].text.format_map(variables)
