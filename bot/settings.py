"""Settings, from the environment (prefix ``HUIYIN_``) and an optional ``.env`` file.

Every setting is documented in the README ("Configuration"). Nothing else in the code
reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from routing.config import DEFAULT_CONFIG_DIR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUIYIN_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    bot_token: SecretStr | None = Field(
        default=None, description="Telegram bot token; unset → the local sandbox is started"
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/huiyin.sqlite3",
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    redis_url: str | None = Field(
        default=None, description="redis://… for FSM storage and event isolation across workers"
    )
    config_dir: Path = Field(default=DEFAULT_CONFIG_DIR, description="the YAML config folder")
    webhook_url: str | None = Field(
        default=None, description="public https URL Telegram should post updates to"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="X-Telegram-Bot-Api-Secret-Token"
    )
    host: str = Field(default="127.0.0.1", description="address the web server listens on")
    port: int = Field(default=8080, description="port of the web server (sandbox, webhook)")
    telegram_api_url: str | None = Field(
        default=None, description="Bot API server base URL (a local Bot API server or the sandbox)"
    )
    admin_ids: list[int] = Field(default_factory=list, description="Telegram user ids of admins")
    timezone: str = Field(default="Asia/Shanghai")
    retention_days: int = Field(
        default=3650, description="how long closed cases' personal data is kept (个人信息保护法)"
    )
    log_level: str = Field(default="INFO")

    @property
    def sandbox(self) -> bool:
        """No token: run against the local sandbox Bot API server with a demo organisation."""
        return self.bot_token is None
