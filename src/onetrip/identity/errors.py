"""Identity errors: each a stable code, an HTTP status and a Chinese message.

Messages never contain an identity number or a phone number (PIPL); ``detail`` names the
field at fault and, at most, a masked value.
"""

from __future__ import annotations

from onetrip.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, OnetripError
from onetrip.identity.rules import DocumentProblem


class PatientNotFound(NotFound):
    code = "patient_not_found"
    message = "未找到该就诊人"


class InvalidName(InvalidInput):
    code = "invalid_name"
    message = "姓名应为2至50个汉字或字母，与证件一致"


class InvalidPhone(InvalidInput):
    code = "invalid_phone"
    message = "请输入有效的手机号码"


class InvalidDocument(InvalidInput):
    code = "invalid_document"
    message = "证件号码格式不正确"


class InvalidDocumentCheckDigit(InvalidDocument):
    code = "invalid_check_digit"
    message = "身份证号码校验位不正确，请核对最后一位"


class InvalidDocumentBirthDate(InvalidDocument):
    code = "invalid_birth_date"
    message = "证件号码中的出生日期不存在"


class FutureBirthDate(InvalidDocument):
    code = "future_birth_date"
    message = "出生日期不能晚于今天"


class BirthDateTooEarly(InvalidDocument):
    code = "birth_date_too_early"
    message = "出生日期不能早于1890年"


class UnknownRegionCode(InvalidDocument):
    code = "unknown_region_code"
    message = "身份证号码前六位的地区代码无效"


DOCUMENT_ERRORS: dict[DocumentProblem, type[InvalidDocument]] = {
    DocumentProblem.malformed: InvalidDocument,
    DocumentProblem.check_digit: InvalidDocumentCheckDigit,
    DocumentProblem.birth_date: InvalidDocumentBirthDate,
    DocumentProblem.future_birth_date: FutureBirthDate,
    DocumentProblem.region_code: UnknownRegionCode,
}


class BirthDateRequired(InvalidInput):
    code = "birth_date_required"
    message = "请填写出生日期"


class BirthDateMismatch(InvalidInput):
    code = "birth_date_mismatch"
    message = "出生日期与证件号码不一致"


class DocumentNameMismatch(InvalidInput):
    code = "document_name_mismatch"
    message = "该证件已登记在另一姓名下，请核对姓名或证件号码"


class PhoneMismatch(InvalidInput):
    code = "phone_mismatch"
    message = "该就诊人已登记，请填写其登记时使用的手机号码"


class DocumentBelongsToOther(Conflict):
    code = "document_belongs_to_other"
    message = "该证件已属于另一位就诊人；如为同一人，请由管理员合并档案"


class FamilyFull(Conflict):
    code = "family_full"
    message = "每个账户最多管理{limit}位就诊人"


class GuardianRequired(InvalidInput):
    code = "guardian_required"
    message = "未满14周岁的儿童须由监护人（账户本人，已成年）添加"


class AlreadyFamilyMember(Conflict):
    code = "already_family_member"
    message = "该就诊人已在您的家庭成员中"


class SelfAlreadyRegistered(Conflict):
    code = "self_already_registered"
    message = "本账户已登记本人，请选择其他关系"


class MergeNotAllowed(Conflict):
    code = "merge_not_allowed"
    message = "这两份档案不能合并"


class MergeNotFound(NotFound):
    code = "merge_not_found"
    message = "未找到该合并记录"


class AlreadyUnmerged(Conflict):
    code = "already_unmerged"
    message = "该合并已撤销"


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    message = "用户名、密码或动态口令错误"


class AccountLocked(OnetripError):
    code = "account_locked"
    http_status = 423
    message = "连续登录失败次数过多，账户已锁定30分钟"


class SessionExpired(NotAuthenticated):
    code = "session_expired"
    message = "长时间未操作，请重新登录"


class SmsTooFrequent(OnetripError):
    code = "sms_too_frequent"
    http_status = 429
    message = "验证码发送过于频繁，请1分钟后再试"


class SmsDailyLimit(OnetripError):
    code = "sms_daily_limit"
    http_status = 429
    message = "该手机号今日获取验证码次数已达上限"


class SmsCodeInvalid(NotAuthenticated):
    code = "sms_code_invalid"
    message = "验证码错误或已过期，请重新获取"


class UsernameTaken(Conflict):
    code = "username_taken"
    message = "该用户名已被使用"


class DepartmentRequired(InvalidInput):
    code = "department_required"
    message = "科室管理员必须指定所属科室"


class DepartmentNotApplicable(InvalidInput):
    code = "department_not_applicable"
    message = "只有科室管理员按科室授权，该角色不能指定科室"


class PractitionerNotApplicable(InvalidInput):
    code = "practitioner_not_applicable"
    message = "只有医生账号可以关联医生"


class PractitionerAlreadyLinked(Conflict):
    code = "practitioner_already_linked"
    message = "该医生已关联其他工作人员账号"


class StaffNotFound(NotFound):
    code = "staff_not_found"
    message = "未找到该工作人员账号"


class TokenNotFound(NotFound):
    code = "token_not_found"
    message = "未找到该令牌"


class TokenAmbiguous(Conflict):
    code = "token_ambiguous"
    message = "有多个令牌以此开头，请改用令牌编号"
