"""One settings object, read from the environment (prefix ``ONETRIP_``) and ``.env``."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic import Field
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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
