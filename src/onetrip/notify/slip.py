"""The paper slip (纸质提醒单, RM-1): one printable PDF page per appointment.

For patients without a phone, printed at the window or the kiosk: the visit's steps, time,
place (building, floor, room), preparation, check-in, the cancellation deadline, the masked
name and a QR code linking to the appointment page. The Chinese font is embedded (subset),
so any printer driver or PDF viewer shows the same text.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import qrcode
from fpdf import FPDF
from fpdf.enums import MethodReturnValue, WrapMode
from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.errors import Conflict, OnetripError
from onetrip.exams import service as exams_service
from onetrip.identity import service as identity_service
from onetrip.notify.visit import Place, cancel_rule, deadline_of, doctor_of, place_of, when
from onetrip.org.models import Department, Hospital
from onetrip.scheduling import service as scheduling_service
from onetrip.scheduling.models import Appointment, Schedule, Slot

log = logging.getLogger(__name__)

#: Debian's fonts-noto-cjk, used when the PyPI font package is absent.
DEBIAN_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
#: Face of "Noto Sans CJK SC" (simplified Chinese) in the NotoSansCJK-Regular collection.
SC_FACE = 2
PRINTABLE = ("booked", "arrived")


class SlipSize(StrEnum):
    receipt = "receipt"  # 80 mm thermal receipt printers (kiosks, windows)
    a6 = "a6"  # 105 x 148 mm sheet


class SlipFontMissing(OnetripError):
    code = "slip_font_missing"
    http_status = 503
    message = "未找到中文字体，无法生成提醒单，请安装 noto-cjk-sans-otc 或配置 ONETRIP_SLIP_FONT"


class SlipUnavailable(Conflict):
    code = "slip_unavailable"
    message = "该预约已取消或已结束，无法打印提醒单"


@dataclass(frozen=True)
class Slip:
    """Everything printed on a slip, as text (built from the database by ``slip_for``)."""

    hospital: str
    reference: str
    patient: str
    day: str
    time: str
    department: str
    doctor: str
    place: Place
    steps: list[str]
    preparation: list[str]
    checkin: str
    cancellation: str
    link: str
    printed: str
    notes: list[str] = field(default_factory=list)
    #: The patient's exams of the same day (EX-2's itinerary), one line each.
    exams: list[str] = field(default_factory=list)


def mask_name(name: str) -> str:
    """``张*`` / ``张*三`` / ``欧阳**华``: first and (from three characters) last shown."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def appointment_link(appointment_id: int) -> str:
    """The appointment page the QR code opens (``ONETRIP_PUBLIC_URL`` + path)."""
    return f"{get_settings().public_url.rstrip('/')}/me/appointments/{appointment_id}"


def slip_for(db: Session, appt: Appointment, *, now: datetime) -> Slip:
    """The slip's text for an appointment the caller may already see (access checked)."""
    if appt.status not in PRINTABLE:
        raise SlipUnavailable(detail={"status": appt.status})
    schedule = db.get_one(Schedule, appt.schedule_id)
    slot = db.get_one(Slot, appt.slot_id)
    hospital = db.get_one(Hospital, appt.hospital_id)
    dept = db.get_one(Department, appt.department_id)
    patient = identity_service.get_patient(db, appt.patient_id)
    policy, _ = scheduling_service.policy_for(db, appt.hospital_id)
    place = Place.of(place_of(db, schedule))
    tz = get_settings().tz
    start = appt.start_at.astimezone(tz)
    end = start + timedelta(minutes=schedule.slot_minutes)
    weekday = "一二三四五六日"[start.weekday()]
    opens = appt.start_at - timedelta(minutes=policy.check_in_opens_minutes)
    checkin_by = appt.start_at - timedelta(minutes=get_settings().notify_checkin_minutes)
    where = place.floor or place.building or dept.name
    room = place.room or f"{dept.name}诊区"
    return Slip(
        hospital=hospital.name, reference=f"{appt.id:08d}",
        patient=mask_name(patient.name) if patient else "",
        day=f"{start.year}年{start.month}月{start.day}日 星期{weekday}",
        time=f"{start:%H:%M}–{end:%H:%M}（第{slot.seq}号）",
        department=dept.name, doctor=doctor_of(db, schedule), place=place,
        steps=[f"报到：{when(opens)}起，凭身份证或医保卡在{where}自助机或分诊台签到",
               f"候诊：留意叫号屏，叫到第{slot.seq}号后进入{room}",
               "就诊：医生开具检查、化验或药品后，可在手机上或自助机缴费",
               "检查与取药：按手机提醒或缴费凭条到相应地点，无需再回挂号窗口"],
        preparation=["携带本人身份证或医保卡（代办请携带患者证件）",
                     "既往病历、检查报告和正在服用的药品清单",
                     "如需空腹检查，医生会在开单时告知"],
        checkin=f"请于{when(checkin_by)}前完成签到；报到自{when(opens)}开放，过号需重新排队",
        cancellation=f"{cancel_rule(deadline_of(db, appt), now)}逾期未就诊计爽约",
        link=appointment_link(appt.id), printed=f"打印时间：{now.astimezone(tz):%Y-%m-%d %H:%M}",
        notes=[f"咨询电话：{hospital.phone}"] if hospital.phone else [],
        exams=exams_service.itinerary_lines(db, patient_id=appt.patient_id, day=start.date()))


# --- the PDF --------------------------------------------------------------------------------


def font_path() -> Path:
    """The CJK font: ``ONETRIP_SLIP_FONT``, else PyPI's noto-cjk-sans-otc, else Debian's
    fonts-noto-cjk; raises SlipFontMissing when there is none."""
    configured = get_settings().slip_font
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise SlipFontMissing(detail={"path": configured})
        return path
    try:
        import noto_cjk_sans_otc

        return Path(str(noto_cjk_sans_otc.FONT_PATH))
    except ImportError:
        if DEBIAN_FONT.is_file():
            return DEBIAN_FONT
    raise SlipFontMissing()


@lru_cache(maxsize=8)
def _qr_png(link: str) -> bytes:
    img = qrcode.make(link, error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class _Layout:
    width: float
    height: float | None  # None: as long as the content (a receipt roll)
    margin: float
    body: float
    qr: float


LAYOUTS = {SlipSize.receipt: _Layout(80, None, 4, 8.5, 30),
           SlipSize.a6: _Layout(105, 148, 5, 8, 24)}
#: A sheet too small for the text at the body size gets smaller type, down to this size.
MIN_POINTS = 6.0
_PT = 25.4 / 72  # millimetres per point
_LINE = 1.45  # line height as a multiple of the type size


def _blocks(slip: Slip) -> list[tuple[str, float, str]]:
    """The slip as (text, relative size, alignment) lines, top to bottom."""
    out = [(slip.hospital, 1.45, "C"), ("就诊提醒单", 1.3, "C"),
           (f"就诊人：{slip.patient}    预约号：{slip.reference}", 1, "L"),
           (f"日期：{slip.day}", 1, "L"), (f"时间：{slip.time}", 1, "L"),
           (f"科室：{slip.department}" + (f"    医生：{slip.doctor}" if slip.doctor else ""),
            1, "L")]
    place = slip.place
    out += [(f"{label}：{value}", 1, "L") for label, value in (
        ("院区", place.campus), ("楼宇", place.building), ("楼层", place.floor),
        ("诊室", place.room)) if value]
    out.append(("【就诊步骤】", 1.05, "L"))
    out += [(f"{n}. {step}", 1, "L") for n, step in enumerate(slip.steps, 1)]
    if slip.exams:
        out.append(("【当日检查】（按时间顺序，一次跑完）", 1.05, "L"))
        out += [(f"· {line}", 1, "L") for line in slip.exams]
    out.append(("【就诊准备】", 1.05, "L"))
    out += [(f"· {item}", 1, "L") for item in slip.preparation]
    out += [("【签到】", 1.05, "L"), (slip.checkin, 1, "L"),
            ("【取消】", 1.05, "L"), (slip.cancellation, 1, "L")]
    return out


def _write(pdf: FPDF, lines: list[tuple[str, float, str]], points: float, *,
           dry_run: bool = False) -> float:
    """Write (or measure) the lines at ``points``; returns their height in mm."""
    height = 0.0
    for text, scale, align in lines:
        size = points * scale
        pdf.set_font("cjk", size=size)
        h = size * _PT * _LINE
        if dry_run:
            rows = pdf.multi_cell(0, h, text, align=align, wrapmode=WrapMode.CHAR,
                                  dry_run=True, output=MethodReturnValue.LINES)
            assert isinstance(rows, list)
            height += h * len(rows)
        else:
            pdf.multi_cell(0, h, text, align=align, wrapmode=WrapMode.CHAR,
                           new_x="LMARGIN", new_y="NEXT")
    return height


def _cut_page(pdf: FPDF, height: float) -> None:
    """A receipt is cut where the slip ends: shorten the page, before anything is placed on
    it (fpdf2 turns positions into PDF coordinates with the page height as it writes)."""
    pdf._set_orientation("portrait", pdf.w_pt, height * pdf.k)
    pdf.pages[pdf.page].set_dimensions(pdf.w_pt, pdf.h_pt)


def render_pdf(slip: Slip, size: SlipSize = SlipSize.receipt) -> bytes:
    """One page with the font subset embedded: an 80 mm receipt as long as its content, or
    an A6 sheet (105 x 148 mm) whose type shrinks, if need be, to keep it on one page."""
    lay = LAYOUTS[size]
    path = font_path()
    pdf = FPDF(unit="mm", format=(lay.width, lay.height or 1000))
    pdf.set_title(f"{slip.hospital} 就诊提醒单 {slip.reference}")
    pdf.set_creator("OneTrip")
    pdf.set_margins(lay.margin, lay.margin, lay.margin)
    pdf.set_auto_page_break(auto=False)
    face = SC_FACE if path.suffix.lower() in (".ttc", ".otc") else 0
    pdf.add_font("cjk", fname=str(path), collection_font_number=face)
    lines = _blocks(slip)
    footer = [("扫码查看预约、签到和排队进度", 0.9, "C"),
              *[(note, 0.9, "C") for note in [*slip.notes, slip.printed]]]
    pdf.add_page()
    points = lay.body
    body = lines + footer
    needed = _write(pdf, body, points, dry_run=True) + lay.qr + 3
    while lay.height and needed > lay.height - 2 * lay.margin and points > MIN_POINTS:
        points -= 0.25
        needed = _write(pdf, body, points, dry_run=True) + lay.qr + 3
    if lay.height is None:
        _cut_page(pdf, needed + 2 * lay.margin)
    _write(pdf, lines, points)
    pdf.ln(2)
    pdf.image(io.BytesIO(_qr_png(slip.link)), x=(lay.width - lay.qr) / 2, w=lay.qr, h=lay.qr)
    pdf.ln(1)
    _write(pdf, footer, points)
    return bytes(pdf.output())
