"""claimpay producer: the thin FastAPI front that stores batches and enqueues chunk jobs."""
