"""claimpay worker: Celery tasks that apply stored chunks of rows to SQL databases."""
