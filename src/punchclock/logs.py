"""Logging: one JSON object per line on stdout, for punchclock's own events and the server's."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import BinaryIO

import orjson
import structlog

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(level: str = "INFO") -> None:
    """Route structlog and the standard library (uvicorn, asyncpg) through one JSON renderer."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *_SHARED],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(serializer=lambda obj, **_: orjson.dumps(obj).decode()),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class AccessLog:
    """Access lines in the same JSON shape as every other line, written in blocks: one write per
    ``flush_seconds`` (or per ``max_buffer`` bytes) instead of a write and a flush per request."""

    def __init__(self, stream: BinaryIO | None = None, flush_seconds: float = 0.1, max_buffer: int = 65536) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._flush_seconds = flush_seconds
        self._max = max_buffer
        self._timer: asyncio.TimerHandle | None = None

    def request(self, **fields: object) -> None:
        fields["event"] = "request"
        fields["level"] = "info"
        fields["timestamp"] = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        self._buffer += orjson.dumps(fields)
        self._buffer += b"\n"
        if len(self._buffer) >= self._max:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._flush_seconds, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._buffer:
            data, self._buffer = bytes(self._buffer), bytearray()
            stream = self._stream or sys.stdout.buffer
            stream.write(data)
            stream.flush()
