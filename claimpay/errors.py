"""The root of claimpay's errors.

Each side grows its own branch: `producer.errors` (a request that cannot be served as
asked; the producer answers with a problem response, `producer.problems`) and
`worker.errors` (what goes wrong while applying a chunk; only a transient fault is
retried). Every class says when it is raised.
"""

from __future__ import annotations


class ClaimpayError(Exception):
    """Root of claimpay's own errors; the message never carries a secret or a row value."""
