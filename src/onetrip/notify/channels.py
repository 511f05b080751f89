"""Channels behind one interface: a channel delivers one message and returns the provider's
message id.

``console`` (the default) only logs a masked line. ``identity`` hands the text to the SMS
sender identity already uses for sign-in codes (``ONETRIP_SMS_SENDER``), so a deployment
plugs in its gateway once. Identity's sender takes (session, phone, text) and returns
nothing; reminders also need the gateway's template code and parameters and our message key
(``out_id``, which the common Chinese gateways accept) so that a retry is idempotent, hence
this slightly wider interface around it.
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


@dataclass(frozen=True)
class Outgoing:
    """One message as a channel sees it; ``phone`` is decrypted only for this call."""

    out_id: str
    phone: str
    template_code: str
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""


Channel = Callable[[Session, Outgoing], str]


def console_channel(db: Session, msg: Outgoing) -> str:
    """Development channel: log the masked phone and template; the id derives from out_id."""
    log.info("notify console to=%s template=%s out_id=%s", mask_phone(msg.phone),
             msg.template_code, msg.out_id)
    return "console-" + hashlib.sha256(msg.out_id.encode()).hexdigest()[:16]


def identity_sms_channel(db: Session, msg: Outgoing) -> str:
    """Deliver through identity's configured SMS sender (the gateway used for sign-in)."""
    sms.SENDERS[get_settings().sms_sender](db, msg.phone, msg.text)
    return f"sms-{msg.out_id}"


CHANNELS: dict[str, Channel] = {"console": console_channel, "identity": identity_sms_channel}


def register_channel(name: str, channel: Channel) -> None:
    """Plug in a gateway; select it with ``ONETRIP_NOTIFY_SMS_CHANNEL=name``."""
    CHANNELS[name] = channel
