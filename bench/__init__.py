"""The claimpay benchmark (`make bench`): baselines, end-to-end throughput, memory and latency.

Run by hand against a real PostgreSQL and Redis; speed is never asserted in tests.
"""
