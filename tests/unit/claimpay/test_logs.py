"""Structured logs: one JSON object per line, the job's context on every line, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from claimpay.logs import (
    ContextFilter,
    JsonFormatter,
    RedactUrls,
    TextFormatter,
    bind,
    current_context,
    log_context,
    logging_config,
    reset_context,
)

ROW_VALUE = "GRP-SECRET-777"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("claimpay.test-logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_carries_the_job_context(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, _ = captured
    with log_context(jobId="9f00", chunk=3):
        bind(database="acme")
        logger.info("chunk %s recorded", 3, extra={"rows": 500})
    logger.info("outside")
    inside, outside = lines(stream)
    assert inside["msg"] == "chunk 3 recorded"
    assert inside["level"] == "INFO"
    assert inside["logger"] == "claimpay.test-logs"
    assert (inside["jobId"], inside["chunk"], inside["database"]) == ("9f00", 3, "acme")
    assert inside["rows"] == 500
    assert str(inside["ts"]).endswith("+00:00")
    assert "jobId" not in outside
    assert "database" not in outside


def test_nested_contexts_restore_the_outer_one() -> None:
    with log_context(activityID="a1"):
        with log_context(jobId="j1", chunk=None):
            assert dict(current_context()) == {"activityID": "a1", "jobId": "j1"}
        assert dict(current_context()) == {"activityID": "a1"}
    assert dict(current_context()) == {}


def test_reset_context_replaces_everything() -> None:
    reset_context(jobId="j2", chunk=0)
    assert dict(current_context()) == {"jobId": "j2", "chunk": 0}
    reset_context()
    assert dict(current_context()) == {}


def test_exceptions_keep_their_type_and_frames_but_not_their_message(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, _ = captured
    try:
        try:
            raise ValueError(f"duplicate key value ({ROW_VALUE})")
        except ValueError as exc:
            raise RuntimeError(f"wrapped {ROW_VALUE}") from exc
    except RuntimeError:
        logger.exception("chunk failed")
    (entry,) = lines(stream)
    assert ROW_VALUE not in stream.getvalue()
    rendered = entry["exc"]
    assert isinstance(rendered, dict)
    assert rendered["type"] == "RuntimeError"
    assert "builtins.ValueError (message withheld)" in rendered["stack"]
    assert "builtins.RuntimeError (message withheld)" in rendered["stack"]
    assert "test_logs.py" in rendered["stack"]


def test_text_format_is_readable_with_the_context_at_the_end() -> None:
    formatter = TextFormatter()
    record = logging.LogRecord("claimpay.worker", logging.INFO, "x.py", 1, "applied", (), None)
    with log_context(jobId="j3", chunk=7, database="demo"):
        ContextFilter().filter(record)
    line = formatter.format(record)
    assert line.endswith("INFO claimpay.worker applied [jobId=j3 chunk=7 database=demo]")


def test_text_format_withholds_exception_messages() -> None:
    try:
        raise KeyError(ROW_VALUE)
    except KeyError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("claimpay", logging.ERROR, "x.py", 1, "boom", (), exc_info)
    line = TextFormatter().format(record)
    assert "builtins.KeyError (message withheld)" in line
    assert ROW_VALUE not in line


@pytest.mark.parametrize(("fmt", "formatter"), [("json", JsonFormatter), ("text", TextFormatter)])
def test_logging_config_sends_the_root_logger_to_stderr_in_the_format(
    fmt: str, formatter: type[logging.Formatter]
) -> None:
    config = logging_config("json" if fmt == "json" else "text", "WARNING")
    assert config["formatters"]["claimpay"]["()"] is formatter
    assert config["root"] == {"level": "WARNING", "handlers": ["stderr"]}
    assert config["handlers"]["stderr"]["filters"] == ["context", "redact"]
    assert config["filters"]["redact"]["()"] is RedactUrls
    assert config["disable_existing_loggers"] is False


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_urls_lose_userinfo_and_query_in_every_logger_s_lines(
    formatter: logging.Formatter,
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactUrls())
    handler.setFormatter(formatter)
    url = httpx.URL("https://hook:Pw-LEAK@hooks.example.com:8443/in/claimpay?token=TOK-LEAK#F")
    for name in ("httpx", "uvicorn.access", "celery.app.trace", "claimpay.webhooks"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        saved = logger.propagate, logger.level
        logger.propagate, logger.level = False, logging.INFO
        try:
            if name == "httpx":  # exactly as httpx logs a request
                logger.info('HTTP Request: %s %s "%s %d %s"', "POST", url, "HTTP/1.1", 200, "OK")
            elif name == "uvicorn.access":
                path = "/claim-prompt-pays-batch?callbackUrl=https%3A%2F%2Fu%3Ap%40h%3Ft%3DTOK-LEAK"
                logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "PUT", path, "1.1", 202)
            else:
                logger.info("calling %s", url, extra={"url": str(url)})
        finally:
            logger.removeHandler(handler)
            logger.propagate, logger.level = saved
    text = stream.getvalue()
    assert "LEAK" not in text
    assert "hook:" not in text
    text = text.replace('\\"', '"')  # JSON escapes the quotes
    assert 'POST https://***@hooks.example.com:8443/in/claimpay?***#*** "HTTP/1.1' in text
    assert '"PUT /claim-prompt-pays-batch?*** HTTP/1.1" 202' in text
