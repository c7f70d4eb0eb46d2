"""One settings class, read through one accessor (`get_settings`)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DATABASE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_DATABASES = {"demo": "sqlite:///var/demo.db"}


class Settings(BaseSettings):
    """Every knob of claimpay, from `CLAIMPAY_*` environment variables (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="CLAIMPAY_", env_file=".env", extra="ignore")

    env: Literal["dev", "prod"] = "dev"
    """`prod` refuses unsafe configuration (weak secrets, Flower without auth)."""
    redis_url: str | None = None
    databases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DATABASES))
    api_keys: dict[str, list[str]] = Field(default_factory=dict)
    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_leeway_s: Annotated[int, Field(ge=0, le=300)] = 30
    webhook_secret: SecretStr | None = None
    """HMAC-SHA256 key of completion webhooks; `callbackUrl` is refused while unset."""
    webhook_max_retries: Annotated[int, Field(ge=0, le=100)] = 8
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    flower_basic_auth: SecretStr | None = None
    """`user:password[,user2:password2]` for Flower; required unless it binds to loopback."""

    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] = "claimpay"
    queue: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "claimpay"
    chunk_size: Annotated[int, Field(ge=1, le=50_000)] = 1_000
    result_ttl_s: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    intake_buffer_bytes: Annotated[int, Field(ge=0, le=2**30)] = 32 * 2**20

    max_retries: Annotated[int, Field(ge=0, le=100)] = 8
    retry_backoff_s: Annotated[float, Field(gt=0, le=600)] = 1.0
    retry_backoff_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    visibility_timeout_s: Annotated[int, Field(ge=60)] = 3600
    lease_ttl_s: Annotated[int, Field(ge=2, le=600)] = 30
    sweep_interval_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    stuck_after_s: Annotated[float, Field(gt=0)] = 60.0
    max_deliveries: Annotated[int, Field(ge=2, le=1000)] = 20
    db_statement_timeout_s: Annotated[int, Field(ge=1, le=3600)] = 300

    @field_validator("databases")
    @classmethod
    def _databases_named_sanely(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _DATABASE_NAME.fullmatch(name):
                raise ValueError(f"database name {name!r}: 1-64 ASCII letters, digits, '-', '_'")
        return value

    @model_validator(mode="after")
    def _deliveries_outnumber_retries(self) -> Settings:
        if self.max_deliveries <= self.max_retries + 1:
            raise ValueError(
                "max_deliveries must exceed max_retries + 1, or a chunk that is only "
                "being retried would be taken for poison"
            )
        return self

    @model_validator(mode="after")
    def _visibility_outlasts_retries(self) -> Settings:
        longest = self.retry_backoff_max_s + self.db_statement_timeout_s
        if self.visibility_timeout_s <= longest:
            raise ValueError(
                "visibility_timeout_s must exceed db_statement_timeout_s + retry_backoff_max_s "
                f"({longest:g}s), or Redis redelivers chunks that are still running"
            )
        return self

    def jwt_secret_value(self) -> str:
        """The bearer-token secret; refuses to run without one."""
        if self.jwt_secret is None or not self.jwt_secret.get_secret_value():
            raise RuntimeError("CLAIMPAY_JWT_SECRET is not set")
        return self.jwt_secret.get_secret_value()

    def require_redis_url(self) -> str:
        """The Redis URL; `claimpay dev` sets one for its children when the user gave none."""
        if not self.redis_url:
            raise RuntimeError(
                "CLAIMPAY_REDIS_URL is not set (run `claimpay dev` for an embedded one)"
            )
        return self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
