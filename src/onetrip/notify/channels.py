"""Channels behind one interface: a transport delivers one message and returns the
provider's message id, which is stored on the row.

A row's ``channel`` says how it reaches the patient: ``sms`` (through the transport named by
``ONETRIP_NOTIFY_SMS_CHANNEL``), ``wechat`` (template message to the patient's openid,
``ONETRIP_NOTIFY_WECHAT_CHANNEL``) or ``inbox`` (the portal only). Every sent message, of
any channel, is shown in the patient's inbox; the paper slip is printed on demand
(``notify.slip``).

``console`` only logs a masked line. ``identity`` hands the text to the SMS sender identity
uses for sign-in codes (``ONETRIP_SMS_SENDER``); it takes (session, phone, text), while
reminders also carry the gateway's template code, parameters and our message key
(``out_id``, which the common Chinese gateways accept) so that a retry is idempotent, hence
this slightly wider interface. ``http`` is the gateway adapter of ``notify.gateways``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from onetrip.config import get_settings
from onetrip.identity import sms
from onetrip.identity.rules import mask_phone

log = logging.getLogger(__name__)

PUSH_CHANNELS = ("sms", "wechat")
ALL_CHANNELS = (*PUSH_CHANNELS, "inbox")
CHANNEL_LABELS = {"sms": "短信", "wechat": "微信", "inbox": "站内信"}


@dataclass(frozen=True)
class Outgoing:
    """One message as a transport sees it; ``phone`` is decrypted only for this call."""

    out_id: str
    phone: str
    template_code: str
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    template: str = ""
    openid: str = ""
    link: str = ""


class PermanentFailure(Exception):
    """The provider refused the message for good (e.g. an invalid number): no retry."""


Channel = Callable[[Session, Outgoing], str]


def _digest(out_id: str) -> str:
    return hashlib.sha256(out_id.encode()).hexdigest()[:16]


def console_channel(db: Session, msg: Outgoing) -> str:
    """Development channel: log the masked phone and template; the id derives from out_id."""
    log.info("notify console to=%s template=%s out_id=%s", mask_phone(msg.phone),
             msg.template_code, msg.out_id)
    return "console-" + _digest(msg.out_id)


def console_wechat(db: Session, msg: Outgoing) -> str:
    """Development WeChat channel: log the template and a shortened openid."""
    log.info("notify wechat console to=%s*** template=%s out_id=%s", msg.openid[:6],
             msg.template_code, msg.out_id)
    return "wxconsole-" + _digest(msg.out_id)


def identity_sms_channel(db: Session, msg: Outgoing) -> str:
    """Deliver through identity's configured SMS sender (the gateway used for sign-in)."""
    sms.SENDERS[get_settings().sms_sender](db, msg.phone, msg.text)
    return f"sms-{msg.out_id}"


def _http_sms(db: Session, msg: Outgoing) -> str:
    from onetrip.notify.gateways import send_sms

    return send_sms(msg)


def _http_wechat(db: Session, msg: Outgoing) -> str:
    from onetrip.notify.gateways import send_wechat

    return send_wechat(msg)


#: SMS transports by name (``ONETRIP_NOTIFY_SMS_CHANNEL``).
CHANNELS: dict[str, Channel] = {"console": console_channel, "identity": identity_sms_channel,
                                "http": _http_sms}
#: WeChat transports by name (``ONETRIP_NOTIFY_WECHAT_CHANNEL``).
WECHAT_CHANNELS: dict[str, Channel] = {"console": console_wechat, "http": _http_wechat}


def register_channel(name: str, channel: Channel, *, wechat: bool = False) -> None:
    """Plug in a gateway; select it with ``ONETRIP_NOTIFY_SMS_CHANNEL=name`` (or
    ``ONETRIP_NOTIFY_WECHAT_CHANNEL=name`` with ``wechat=True``)."""
    (WECHAT_CHANNELS if wechat else CHANNELS)[name] = channel


def transport(channel: str) -> Channel:
    """The configured transport of a push channel; KeyError for an unknown name."""
    s = get_settings()
    if channel == "wechat":
        return WECHAT_CHANNELS[s.notify_wechat_channel]
    return CHANNELS[s.notify_sms_channel]


def choose(preferred: list[str], *, has_openid: bool) -> str:
    """The channel of a new message: the first configured push channel that reaches the
    patient (WeChat only with a bound openid), else the inbox alone."""
    for name in preferred:
        if name == "sms" or (name == "wechat" and has_openid):
            return name
    return "inbox"
