"""Structured logs: one JSON object per line, with the request id of the request being served.

Each line has `ts` (UTC, ISO 8601), `level`, `logger`, `message`, `request_id` (null outside a
request), and the members of `extra={"fields": {...}}` (they never replace those). An
exception is logged as its type and stack frames (`file:line function`), never its message:
messages may quote stored values, i.e. personal data.

`install_request_ids(app)` takes the client's `X-Request-Id` when it is a plain token
(REQUEST_ID_PATTERN), else makes one, echoes it in the response, and logs one access line per
request: method, route template, status and duration. Never the raw path, query string, headers
or body: paths and queries may carry national IDs, headers carry bearer tokens.

Uvicorn's own access log prints the raw request line, and httpx/httpcore log whole URLs at INFO:
configure_logging silences the first and keeps the others at WARNING or above. The server should
also run with `access_log=False` and `log_config=None` (so uvicorn installs no formatters of its
own over ours).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import route_template

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
ACCESS_LOGGER = "pishkhan.access"
# Loggers that print raw request lines (paths with identifiers, query strings).
SILENCED_LOGGERS = ("uvicorn.access",)
# HTTP client libraries log every outbound URL at INFO; URLs may carry identifiers.
QUIETED_LOGGERS = ("httpx", "httpcore")
QUIETED_LEVEL = logging.WARNING
# Loggers of the server that should go through our handler rather than their own.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error")
# Status recorded when the application raised without answering (the server answers 500).
UNANSWERED_STATUS = 500
# The core members of a line; `fields` may not overwrite them.
CORE_KEYS = frozenset({"ts", "level", "logger", "message", "request_id", "exception"})

_request_id: ContextVar[str | None] = ContextVar("pishkhan_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this context, None outside a request."""
    return _request_id.get()


def is_valid_request_id(value: str) -> bool:
    """Whether a client-sent request id is a plain token we may echo and log."""
    return REQUEST_ID_PATTERN.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid.uuid4().hex


def _exception_member(exc_type: type[BaseException], tb: TracebackType | None) -> dict[str, object]:
    frames = [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(tb)]
    return {"type": exc_type.__qualname__, "frames": frames}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring); exception messages left out."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id.get(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if str(key) not in CORE_KEYS:
                    line[str(key)] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = _exception_member(record.exc_info[0], record.exc_info[2])
        # default=str: a field value that is not JSON (a datetime, a UUID) is still one line.
        return json.dumps(line, ensure_ascii=False, default=str)


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging installed, so calling it again replaces it."""


def configure_logging(level: str | int = "INFO", *, stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stderr) as JSON lines, at `level` and above.

    Handlers installed by an earlier call are replaced; other handlers are left alone.
    Raises ValueError for an unknown level name.
    """
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            raise ValueError(f"unknown log level {level!r}")
        level = resolved
    handler = _JsonHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    for name in QUIETED_LOGGERS:
        logging.getLogger(name).setLevel(max(level, QUIETED_LEVEL))
    for name in SILENCED_LOGGERS:
        silenced = logging.getLogger(name)
        silenced.handlers.clear()
        silenced.propagate = False
        silenced.disabled = True


access_logger = logging.getLogger(ACCESS_LOGGER)


class RequestIdMiddleware:
    """Bind a request id to each HTTP request, echo it, and log one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent_id = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = sent_id if sent_id and is_valid_request_id(sent_id) else new_request_id()
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())
        status = UNANSWERED_STATUS
        started_s = time.perf_counter()

        async def tagging_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                kept = [h for h in message.get("headers", []) if h[0].lower() != header[0]]
                message = {**message, "headers": [*kept, header]}
            await send(message)

        token = _request_id.set(request_id)
        try:
            await self.app(scope, receive, tagging_send)
        finally:
            _log_access(scope, status, time.perf_counter() - started_s)
            _request_id.reset(token)


def _log_access(scope: Scope, status: int, duration_s: float) -> None:
    # Exactly these four fields: the raw path, query, headers and body stay out of the log.
    fields = {
        "method": str(scope.get("method", "")),
        "route": route_template(scope),
        "status": status,
        "duration_ms": round(duration_s * 1000, 3),
    }
    access_logger.info("request", extra={"fields": fields})


def install_request_ids(app: FastAPI) -> None:
    """Add the request-id and access-log middleware; install it last, so it is outermost."""
    app.add_middleware(RequestIdMiddleware)
