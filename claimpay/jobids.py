"""Job IDs that say which job store issued them, so a job the store lost (Redis reset
without persistence) is told apart from an ID that never existed (a typo).

An ID is 32 lowercase hex digits, as before: the store's *epoch* (8), random (20) and a
check (4) over the other 28 and the deployment's key prefix (a deployment sharing the Redis
under another prefix answers its IDs as unknown, not lost). The epoch is a random tag the
job store keeps without a TTL (`JobStore.epoch`); a store that lost its data has lost its
epoch too and gets a new one.
So an unknown ID whose check holds and whose epoch is not the current one was issued by a
store since reset: its job is lost. A typo breaks the check (but for 1 in 65,536).
"""

from __future__ import annotations

import hashlib
import re
import secrets

EPOCH_HEX = 8
_FORM = re.compile(r"^[0-9a-f]{32}$")


def new_epoch() -> str:
    return secrets.token_hex(EPOCH_HEX // 2)


def _check(scope: str, body: str) -> str:
    return hashlib.blake2s(f"{scope}:{body}".encode(), digest_size=2).hexdigest()


def new_job_id(epoch: str, scope: str) -> str:
    """A fresh job ID issued under store epoch `epoch` by deployment `scope` (key prefix)."""
    body = epoch + secrets.token_hex(10)
    return body + _check(scope, body)


def is_issued(job_id: str, scope: str) -> bool:
    """True when `job_id` has the form and check of an ID deployment `scope` issued."""
    return bool(_FORM.match(job_id)) and _check(scope, job_id[:28]) == job_id[28:]


def epoch_of(job_id: str) -> str:
    """The store epoch an issued ID was made under."""
    return job_id[:EPOCH_HEX]
