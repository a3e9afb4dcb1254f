"""Logging on stdout, for punchclock's own events, the server's and the access log: one JSON object per line,
or structlog's readable console lines when a person is watching (``PUNCHCLOCK_LOG_FORMAT``)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO, TextIO

import orjson
import structlog

from punchclock.settings import LogFormat

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _json_line(fields: dict[str, Any]) -> bytes:
    return orjson.dumps(fields) + b"\n"


# How a new AccessLog turns a request's fields into a line. Like structlog's own configuration it is process-wide,
# set by configure() at start-up; tests that want another hand AccessLog a ``line``.
_access_line: Callable[[dict[str, Any]], bytes] = _json_line


def configure(
    level: str = "INFO", log_format: LogFormat = LogFormat.JSON, *, no_color: bool = False, stream: TextIO | None = None
) -> None:
    """Route structlog, the standard library (uvicorn, asyncpg) and the access log through one renderer: JSON,
    or readable lines for ``console`` (and for ``auto`` when ``stream``, stdout by default, is a terminal),
    coloured only on a terminal and without ``no_color``."""
    global _access_line
    stream = stream if stream is not None else sys.stdout
    terminal = stream.isatty()
    console = log_format is LogFormat.CONSOLE or (log_format is LogFormat.AUTO and terminal)
    final: list[structlog.typing.Processor]
    if console:
        readable = structlog.dev.ConsoleRenderer(colors=terminal and not no_color)
        _access_line = _console_line(readable)
        final = [readable]  # it formats exceptions itself
    else:
        _access_line = _json_line
        final = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=lambda obj, **_: orjson.dumps(obj).decode()),
        ]
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *_SHARED],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _console_line(renderer: structlog.dev.ConsoleRenderer) -> Callable[[dict[str, Any]], bytes]:
    def line(fields: dict[str, Any]) -> bytes:
        return (str(renderer(None, "info", dict(fields))) + "\n").encode()

    return line


class AccessLog:
    """Access lines in the same shape as every other line (the format ``configure`` chose when this was made),
    written in blocks: one write per ``flush_seconds`` (or per ``max_buffer`` bytes) instead of a write and
    a flush per request."""

    def __init__(
        self,
        stream: BinaryIO | None = None,
        flush_seconds: float = 0.1,
        max_buffer: int = 65536,
        line: Callable[[dict[str, Any]], bytes] | None = None,
    ) -> None:
        self._stream = stream
        self._line = line if line is not None else _access_line
        self._buffer = bytearray()
        self._flush_seconds = flush_seconds
        self._max = max_buffer
        self._timer: asyncio.TimerHandle | None = None

    def request(self, **fields: object) -> None:
        fields["event"] = "request"
        fields["level"] = "info"
        fields["timestamp"] = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        self._buffer += self._line(fields)
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
