"""Logging set-up, once per process: every line names the role it came from."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Literal

# The request being served by this task: every log line written meanwhile carries its id, in
# the gateway and (the id travels in PredictRequest.request_id) in the worker.
current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _RoleFilter(logging.Filter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = self.role
        return True


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            request_id = current_request_id.get()
            if request_id:
                record.request_id = request_id
        return True


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO    worker     message [request 1f2e...]`: one line per event."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(role)-10s %(message)s", "%H:%M:%S")
        self.converter = time.localtime

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", "")
        return f"{line} [request {request_id}]" if request_id else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "role": getattr(record, "role", "-"),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _OneLineFilter(logging.Filter):
    """gRPC logs a full traceback for every undecodable request; a bad client must not be able
    to flood the log with them, so keep the message and drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def configure_logging(
    role: str, level: str = "INFO", fmt: Literal["text", "json"] = "text"
) -> None:
    """Send this process's logs to stderr (the supervisor forwards its children's)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RoleFilter(role))
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter stays at WARNING unless we debug.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "grpc"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    logging.getLogger("grpc._cython.cygrpc").addFilter(_OneLineFilter())
