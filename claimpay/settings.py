"""One settings class, read through one accessor (`get_settings`)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from claimpay.keyring import configured_digest
from claimpay.passwords import is_password_hash
from claimpay.safety import production_problems

_DATABASE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_DATABASES = {"demo": "sqlite:///var/demo.db"}
MAX_CHUNK_SIZE = 50_000
"""The largest chunk, of the setting and of a batch call's `chunkSize`."""
JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"
]


class UserConfig(BaseModel):
    """A user of `POST /user-authentication` (`claimpay hash-password` makes the hash)."""

    model_config = ConfigDict(extra="forbid")

    password_hash: SecretStr
    databases: list[str] = Field(default_factory=list)
    """Databases the user may use (`["*"]` = all); the API key must allow them too."""

    @field_validator("password_hash")
    @classmethod
    def _argon2_hash(cls, value: SecretStr) -> SecretStr:
        if not is_password_hash(value.get_secret_value()):
            raise ValueError("password_hash must be an Argon2 hash (`claimpay hash-password`)")
        return value


class Settings(BaseSettings):
    """Every knob of claimpay, from `CLAIMPAY_*` environment variables (or a `.env` file)."""

    # `hide_input_in_errors`: a refusal to start never prints the secrets it was given.
    model_config = SettingsConfigDict(
        env_prefix="CLAIMPAY_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["dev", "prod"] = "dev"
    """`prod` refuses unsafe configuration (weak secrets, Flower without auth)."""
    redis_url: str | None = None
    databases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DATABASES))
    api_keys: dict[str, list[str]] = Field(default_factory=dict)
    jwt_secret: SecretStr | None = None
    jwt_algorithm: JwtAlgorithm = "HS256"
    """Algorithm of the tokens claimpay signs (`claimpay token`, `/user-authentication`)."""
    jwt_leeway_s: Annotated[int, Field(ge=0, le=300)] = 30
    max_wait_s: Annotated[float, Field(ge=0, le=600)] = 60.0
    """Longest `Prefer: wait=N` honoured on a batch call before answering 202."""
    idempotency_ttl_s: Annotated[int, Field(ge=60)] = 24 * 3600
    """How long an `Idempotency-Key` is remembered."""
    webhook_secret: SecretStr | None = None
    """HMAC-SHA256 key of completion webhooks; `callbackUrl` is refused while unset."""
    webhook_allowed_hosts: list[str] = Field(default_factory=list)
    """Hosts a `callbackUrl` may name: exact names, or `*.example.com` for its subdomains.
    Empty allows any host; set it where workers can reach what clients must not."""
    webhook_max_retries: Annotated[int, Field(ge=0, le=100)] = 8
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    """Wall-clock deadline of one webhook attempt, from connecting to the answer's status."""
    webhook_concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    """Webhook attempts a worker node runs at once (threads of its main process)."""
    flower_basic_auth: SecretStr | None = None
    """`user:password[,user2:password2]` for Flower; required unless it binds to loopback."""

    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] = "claimpay"
    queue: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "claimpay"
    chunk_size: Annotated[int, Field(ge=1, le=MAX_CHUNK_SIZE)] = 2_000
    result_ttl_s: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    intake_buffer_bytes: Annotated[int, Field(ge=0, le=2**30)] = 256 * 1024
    """The body is parsed in runs of whole rows of about this size, whatever its size: the
    producer holds about 4 times this in parsed rows at a time (24 for rows of `{}`);
    0: a row at a time."""

    max_retries: Annotated[int, Field(ge=0, le=100)] = 8
    retry_backoff_s: Annotated[float, Field(gt=0, le=600)] = 1.0
    retry_backoff_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    visibility_timeout_s: Annotated[int, Field(ge=60)] = 3600
    lease_ttl_s: Annotated[int, Field(ge=2, le=600)] = 30
    sweep_interval_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    stuck_after_s: Annotated[float, Field(gt=0)] = 15.0
    max_deliveries: Annotated[int, Field(ge=2, le=1000)] = 20
    db_statement_timeout_s: Annotated[int, Field(ge=1, le=3600)] = 300

    # -- several hosts (issue 15) -------------------------------------------------------
    db_idle_in_transaction_timeout_s: Annotated[int, Field(ge=0, le=3600)] = 15
    """PostgreSQL ends a worker session idle inside a transaction this long, freeing its
    row locks (a worker host that vanished mid-chunk); 0 = off."""
    db_tcp_user_timeout_s: Annotated[int, Field(ge=0, le=600)] = 15
    """A worker's PostgreSQL connection whose sent data stays unacknowledged this long is
    dropped (libpq `tcp_user_timeout`); 0 = the kernel's default (minutes)."""
    db_keepalives_idle_s: Annotated[int, Field(ge=0, le=3600)] = 5
    """TCP keepalive probes start after this long idle on a worker's PostgreSQL
    connection; 0 = no keepalives (the kernel's default)."""
    db_keepalives_interval_s: Annotated[int, Field(ge=1, le=600)] = 2
    """Seconds between unanswered keepalive probes."""
    db_keepalives_count: Annotated[int, Field(ge=1, le=100)] = 3
    """Unanswered keepalive probes that end the connection."""
    db_call_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """A chunk whose database work has not returned after this long is given up by its
    worker: its lease is no longer renewed (another worker takes the chunk), the call is
    cancelled, and `claimpay worker-health` fails for the node until it returns."""

    # -- operations (issue 6) -----------------------------------------------------------
    fast_queue_max_rows: Annotated[int, Field(ge=0, le=10_000_000)] = 1_000
    """Jobs of at most this many rows go to `<queue>.fast`, so they never wait behind a
    huge batch; 0 sends every job to `queue`."""
    job_window_chunks: Annotated[int, Field(ge=0, le=1_000_000)] = 32
    """Chunks of one job in the broker queue at a time: the first are queued when the job
    is accepted, and each chunk a worker finishes queues the job's next one, so the jobs
    of several tenants take turns instead of each waiting for every earlier job's last
    chunk. Set it above the deployment's worker processes (it caps one job's parallelism);
    0 queues every chunk at once."""
    log_format: Literal["json", "text"] = "json"
    """`json`: one JSON object per line (production); `text`: for people (`claimpay dev`)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    worker_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """Port of a worker node's Prometheus `/metrics` (its main process); 0 = off."""
    worker_metrics_address: str = "127.0.0.1"
    """Interface the worker metrics listen on (`0.0.0.0` in a container)."""
    readiness_timeout_s: Annotated[float, Field(gt=0, le=60)] = 3.0
    """Time each `/health/ready` check (Redis, every database) may take."""

    # -- security (issue 5) -------------------------------------------------------------
    jwt_algorithms: list[JwtAlgorithm] | None = None
    """Algorithms a bearer token may be signed with; unset: only `jwt_algorithm`."""
    jwt_public_key: str | None = None
    """PEM public key (inline, or the path of a PEM file) verifying RS*/ES* tokens."""
    jwt_private_key: SecretStr | None = None
    """PEM private key (inline or path) signing claimpay's tokens when `jwt_algorithm` is
    RS*/ES*; unset, claimpay only verifies such tokens."""
    jwt_issuer: str | None = None
    """When set, tokens must carry this `iss` (and claimpay's tokens do)."""
    jwt_audience: str | None = None
    """When set, tokens must carry this `aud` (and claimpay's tokens do)."""
    token_ttl_s: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 24 * 3600
    """Validity of the tokens `POST /user-authentication` issues."""
    users: dict[str, UserConfig] = Field(default_factory=dict)
    """Users of `POST /user-authentication`: name -> password hash and databases."""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 512 * 2**20
    """Largest batch body; a larger one is refused with 413 before it is read."""
    max_rows: Annotated[int, Field(ge=1)] = 1_000_000
    """Most rows in one batch; the request is refused with 413 at the next row."""
    max_row_bytes: Annotated[int, Field(ge=256, le=2**24)] = 64 * 1024
    """Largest JSON text of one row (long strings included): 413 beyond it."""
    max_json_depth: Annotated[int, Field(ge=2, le=64)] = 8
    """Deepest nesting of the body (the array is 1, a row 2): 400 beyond it."""
    rate_limit_per_s: Annotated[float, Field(ge=0)] = 25.0
    """Sustained requests per second per API key, shared by every API process; 0 = off."""
    rate_limit_burst: Annotated[int, Field(ge=1)] = 50
    """Requests an idle API key may send at once."""
    max_active_jobs_per_key: Annotated[int, Field(ge=0)] = 100
    """Unfinished jobs one API key may have at a time (429 beyond it); 0 = no limit."""

    # -- policy (issue 14): page sizes, TTLs of locks and claims, waits ----------------
    results_page_size: Annotated[int, Field(ge=1)] = 100
    """`pageSize` of `GET /jobs/{id}/results` when only `page` is given."""
    results_max_page_size: Annotated[int, Field(ge=1)] = 10_000
    """Largest `pageSize` of `GET /jobs/{id}/results` (400 beyond)."""
    rows_page_size: Annotated[int, Field(ge=1)] = 100
    """`pageSize` of `GET /<entity>` (read back rows) when none is given."""
    rows_max_page_size: Annotated[int, Field(ge=1)] = 1_000
    """Largest `pageSize` of `GET /<entity>` (400 beyond)."""
    jobs_page_size: Annotated[int, Field(ge=1)] = 50
    """`pageSize` of `GET /jobs` when none is given."""
    jobs_max_page_size: Annotated[int, Field(ge=1)] = 1_000
    """Largest `pageSize` of `GET /jobs` (400 beyond)."""
    retry_after_s: Annotated[int, Field(ge=1, le=3600)] = 5
    """`Retry-After` of a 503 while Redis is down and of a 429 for too many unfinished jobs."""
    idempotency_claim_ttl_s: Annotated[int, Field(ge=3, le=3600)] = 15
    """An `Idempotency-Key` taken by a request whose API stops showing life (it renews the
    claim every third of this while the body arrives) is free again after this long."""
    rerun_lock_ttl_s: Annotated[int, Field(ge=1, le=3600)] = 120
    """Longest a `POST /jobs/{id}/retry` may take preparing; a lock that outlives a crashed
    API is gone after this long."""
    stuck_busy_after_s: Annotated[float | None, Field(gt=0)] = None
    """A job without progress this long gets its unfinished chunks queued again even while
    its queue is not empty; unset: 10 x `stuck_after_s`."""

    # -- isolation (issue 12) ------------------------------------------------------------
    login_concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    """Password checks an API process runs at once, on threads of their own (each takes
    the hash's memory cost, 64 MiB by default)."""
    login_queue: Annotated[int, Field(ge=0, le=10_000)] = 8
    """Password checks that may wait for one of those threads; beyond: 503 at once."""
    login_busy_retry_after_s: Annotated[int, Field(ge=1, le=3600)] = 1
    """`Retry-After` of that 503 (`login-busy`)."""
    login_max_failures: Annotated[int, Field(ge=0, le=1000)] = 5
    """Failed logins for one user name before it is locked (429); 0 = never locked."""
    login_lockout_s: Annotated[int, Field(ge=1, le=7 * 24 * 3600)] = 300
    """How long a locked user name stays locked, from its last failed login."""
    readiness_cache_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    """How long a `/health/ready` answer is reused; one caller at a time computes it."""
    max_headers: Annotated[int, Field(ge=10, le=10_000)] = 100
    """Most headers in a request (431 beyond)."""
    max_header_bytes: Annotated[int, Field(ge=1024, le=2**24)] = 32 * 1024
    """Largest request head, request line and headers together (431 beyond)."""
    header_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    """Time a request head may take from its first byte (408 beyond; `claimpay api`)."""
    body_idle_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    """Longest wait for the next part of a request body (408 beyond)."""
    body_min_bytes_per_s: Annotated[int, Field(ge=0)] = 1024
    """Slowest average a request body may arrive at, past its first idle timeout (408
    below it); 0 = no minimum rate."""

    @field_validator("databases")
    @classmethod
    def _databases_named_sanely(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _DATABASE_NAME.fullmatch(name):
                raise ValueError(f"database name {name!r}: 1-64 ASCII letters, digits, '-', '_'")
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys_well_formed(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key in value:
            if not key:
                raise ValueError("an API key is empty")
            configured_digest(key)  # raises for a malformed `sha256:` entry
        return value

    @model_validator(mode="after")
    def _production_is_locked_down(self) -> Settings:
        if self.env != "prod":
            return self
        problems = production_problems(
            self.api_keys,
            [*self.accepted_jwt_algorithms(), self.jwt_algorithm],
            self.jwt_secret.get_secret_value() if self.jwt_secret else "",
            None if self.webhook_secret is None else self.webhook_secret.get_secret_value(),
        )
        if problems:
            raise ValueError("env=prod refuses to start: " + "; ".join(problems))
        return self

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

    @model_validator(mode="after")
    def _defaults_within_their_bounds(self) -> Settings:
        for default, largest in (
            ("results_page_size", "results_max_page_size"),
            ("rows_page_size", "rows_max_page_size"),
            ("jobs_page_size", "jobs_max_page_size"),
        ):
            if getattr(self, default) > getattr(self, largest):
                raise ValueError(f"{default} must not exceed {largest}")
        return self

    def stuck_whatever_the_queue_s(self) -> float:
        """`stuck_busy_after_s`, or its default of 10 x `stuck_after_s`."""
        return self.stuck_busy_after_s or 10 * self.stuck_after_s

    def jwt_secret_value(self) -> str:
        """The bearer-token secret; refuses to run without one."""
        if self.jwt_secret is None or not self.jwt_secret.get_secret_value():
            raise RuntimeError("CLAIMPAY_JWT_SECRET is not set")
        return self.jwt_secret.get_secret_value()

    def accepted_jwt_algorithms(self) -> list[str]:
        """The algorithms a bearer token may use (`jwt_algorithms`, else `jwt_algorithm`)."""
        return list(self.jwt_algorithms or [self.jwt_algorithm])

    def callback_host_allowed(self, host: str) -> bool:
        """Whether a `callbackUrl` may name `host` (`webhook_allowed_hosts`)."""
        if not self.webhook_allowed_hosts:
            return True
        host = host.lower().rstrip(".")
        for allowed in (entry.lower().rstrip(".") for entry in self.webhook_allowed_hosts):
            if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
                return True
        return False

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
