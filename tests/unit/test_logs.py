"""Logs: JSON lines unless a person is watching a terminal, readable lines then, colours only where they work."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from punchclock import logs
from punchclock.settings import LogFormat

ESC = "\x1b["


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stdout does under `make run` in a shell."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure() sets process-wide logging; put it back as it was after each test."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    yield
    logs.configure(stream=io.StringIO())  # the access-log line back to JSON
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def emit() -> None:
    """One line from punchclock's own logger and one from the standard library, as uvicorn logs."""
    structlog.get_logger("punchclock.test").info("serving", commit_mode="group")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)


@pytest.mark.parametrize(
    ("stream", "log_format"),
    [(io.StringIO(), LogFormat.AUTO), (io.StringIO(), LogFormat.JSON), (Terminal(), LogFormat.JSON)],
)
def test_json_is_one_object_per_line(stream: io.StringIO, log_format: LogFormat) -> None:
    """auto writes JSON when stdout is not a terminal; json writes it even on a terminal."""
    logs.configure("INFO", log_format, stream=stream)
    emit()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["event"], first["commit_mode"], first["level"]) == ("serving", "group", "info")
    assert (second["event"], second["logger"]) == ("Started server process [42]", "uvicorn.error")


def test_auto_on_a_terminal_is_readable_and_coloured() -> None:
    """auto on a terminal renders structlog's console lines, with colours."""
    stream = Terminal()
    logs.configure("INFO", LogFormat.AUTO, stream=stream)
    emit()
    text = stream.getvalue()
    assert ESC in text
    assert not text.lstrip().startswith("{")
    assert "Started server process [42]" in text


@pytest.mark.parametrize(("stream", "no_color"), [(Terminal(), True), (io.StringIO(), False)])
def test_console_has_no_colours_under_no_color_or_off_a_terminal(stream: io.StringIO, no_color: bool) -> None:
    """NO_COLOR, or a stdout that is not a terminal, gives readable lines without escape codes."""
    logs.configure("INFO", LogFormat.CONSOLE, no_color=no_color, stream=stream)
    emit()
    first, second = stream.getvalue().splitlines()
    assert ESC not in stream.getvalue()
    assert "[info     ] serving" in first
    assert first.endswith("commit_mode=group")
    assert "Started server process [42]" in second


async def test_access_lines_follow_the_format() -> None:
    """The access log, written apart from structlog for speed, renders in the format configured."""
    logs.configure("INFO", LogFormat.CONSOLE, stream=io.StringIO())
    readable_stream = io.BytesIO()
    readable = logs.AccessLog(readable_stream)
    logs.configure("INFO", LogFormat.JSON, stream=io.StringIO())
    machine_stream = io.BytesIO()
    machine = logs.AccessLog(machine_stream)

    for access_log in (readable, machine):
        access_log.request(method="POST", path="/app", status=201)
        access_log.flush()

    line = readable_stream.getvalue().decode()
    assert "[info     ] request" in line
    assert "method=POST path=/app status=201" in line
    assert line.endswith("\n")
    fields = json.loads(machine_stream.getvalue())
    assert (fields["event"], fields["method"], fields["status"]) == ("request", "POST", 201)
