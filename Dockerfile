# syntax=docker/dockerfile:1
# Pishkhan API image.
#   docker build -t pishkhan .
#   docker run -p 8000:8000 -v pishkhan-var:/app/var pishkhan
# State (the default SQLite database, keys) lives in /app/var: mount a volume
# there, or set PISHKHAN_DATABASE_URL to a PostgreSQL database.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: build the wheel and install it, with its dependencies, into a venv
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install /wheels/*.whl

# --- runtime: the venv only, run as an unprivileged user
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system pishkhan \
    && useradd --system --gid pishkhan --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin pishkhan
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
RUN mkdir -p /app/var && chown pishkhan:pishkhan /app/var
USER pishkhan
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["pishkhan", "serve", "--host", "0.0.0.0", "--port", "8000"]
