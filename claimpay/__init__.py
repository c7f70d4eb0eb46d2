"""claimpay contracts: what the producer and the worker agree on.

Schemas, the 207 envelope, job states, the Redis job store, settings and task names.
Neither side imports the other; both import this package.
"""

__version__ = "0.1.0"
