"""Per-API-key request rate limit: a token bucket in Redis, shared by every API process.

One Lua script refills the key's bucket by the time elapsed (Redis's own clock, so API
processes on hosts with skewed clocks agree), takes a token if there is one, and tells
how long to wait otherwise. Defaults are the seed API's: 25 requests/s sustained, 50 burst.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from claimpay.keys import StoreKeys

BUCKET_SCRIPT = """
-- KEYS[1] bucket hash {tokens, ts}; ARGV: rate per second, burst
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
if now > last then
  tokens = math.min(burst, tokens + (now - last) * rate)
  last = now
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(last))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The bucket's answer: allowed, or how many seconds until the next token."""

    allowed: bool
    retry_after_s: float = 0.0


class RateLimiter:
    """Token buckets per API key ID under the deployment's key prefix."""

    def __init__(self, redis: Redis, keys: StoreKeys, per_s: float, burst: int) -> None:
        self._keys = keys
        self._per_s = per_s
        self._burst = burst
        self._take = redis.register_script(BUCKET_SCRIPT)

    def hit(self, key_id: str) -> RateDecision:
        """Spend one request of `key_id`'s budget."""
        wait = float(
            self._take(keys=[self._keys.rate_bucket(key_id)], args=[self._per_s, self._burst])
        )
        return RateDecision(allowed=wait <= 0, retry_after_s=wait)
