"""One settings object, read from the environment (prefix ``ONETRIP_``) and ``.env``."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONETRIP_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///onetrip.db"
    timezone: str = "Asia/Shanghai"
    # Secret used to sign browser sessions; set a long random value in production.
    secret_key: str = Field(default="dev-only-change-me", min_length=8)
    log_level: str = "INFO"
    # Pool size for PostgreSQL; SQLite uses one connection per thread.
    db_pool_size: int = 10
    sql_echo: bool = False
    # BK-8: booking attempts a minute per signed-in account (or token) and per client address.
    booking_rate_per_account: int = Field(default=30, ge=1)
    booking_rate_per_address: int = Field(default=300, ge=1)
    # Under load, how long a booking batch may wait for the requests the last one answered
    # to come back (docs/booking.md, the opening rush); 0 takes only what has queued.
    booking_linger_ms: float = Field(default=2.0, ge=0, le=100)
    # Identity numbers and phones at rest (docs/identity.md, "Key management"): comma-separated
    # "key_id:base64 of 32 bytes"; the first key encrypts, every listed key decrypts. Empty:
    # a development key derived from secret_key.
    data_keys: str = ""
    # Key of the blind index (HMAC-SHA256) for exact lookup; empty: derived from secret_key.
    index_key: str = ""
    # Request bodies (docs/architecture.md, "Request sizes"): JSON and forms, and file uploads
    # (multipart: quality data, schedule sheets), which are spooled to disk as they arrive.
    max_body_bytes: int = Field(default=1_000_000, ge=10_000)
    max_upload_bytes: int = Field(default=200_000_000, ge=10_000)
    max_family_members: int = Field(default=5, ge=1, le=20)
    staff_idle_minutes: int = 30
    patient_idle_minutes: int = 7 * 24 * 60
    # BK-10: a kiosk forgets the identified patient after this many idle seconds.
    kiosk_idle_seconds: int = Field(default=90, ge=15, le=900)
    # SMS sender: "outbox" writes messages to the sms_outbox table (development, demo).
    sms_sender: str = "outbox"
    # Reminders (docs/notifications.md): "console" logs a masked line; "identity" sends through
    # the sms_sender above; "http" posts to notify_sms_url; a gateway may register its own
    # (notify.channels.register_channel).
    notify_sms_channel: str = "console"
    # RM-1: local hour of the day-before reminder, quiet hours for SMS, check-in lead time.
    notify_day_before_hour: int = Field(default=18, ge=0, le=23)
    notify_quiet_start: time = time(22, 0)
    notify_quiet_end: time = time(7, 0)
    notify_checkin_minutes: int = Field(default=15, ge=0)
    notify_max_attempts: int = Field(default=5, ge=1)
    # Channels (docs/notifications.md, "Channels"): push channels in order of preference, e.g.
    # ["wechat", "sms"] (WeChat for patients with a bound openid). Sent messages are all in
    # the inbox; [] sends nothing but the inbox.
    notify_channels: list[str] = Field(default_factory=lambda: ["sms"])
    notify_sms_url: str = ""
    notify_sms_access_key_id: str = ""
    notify_sms_access_key_secret: SecretStr = SecretStr("")
    notify_sms_sign_name: str = "最多跑一次"
    notify_wechat_channel: str = "console"  # "console" or "http"
    notify_wechat_url: str = "https://api.weixin.qq.com"
    notify_wechat_app_id: str = ""
    notify_wechat_app_secret: SecretStr = SecretStr("")
    # Our template name -> the template_id approved for the official account.
    notify_wechat_templates: dict[str, str] = Field(default_factory=dict)
    notify_gateway_timeout: float = Field(default=5.0, gt=0)
    # Base of links printed or sent to patients (the QR code of the paper slip).
    public_url: str = "http://127.0.0.1:8000"
    # Font of the paper slip (a CJK TrueType/OpenType file or collection); empty: the PyPI
    # package noto-cjk-sans-otc, else Debian's fonts-noto-cjk (docs/notifications.md).
    slip_font: str = ""
    # Quality analytics: imported HIS lines live here as Parquet files read by DuckDB.
    analytics_dir: Path = Path("var/analytics")
    # DuckDB threads for analytics (0: one per core).
    analytics_threads: int = 0
    # Overrides of quality.rules.Thresholds, as JSON: {"drug_cost_ratio": 0.28}.
    quality_thresholds: dict[str, Any] = Field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
