"""The edge's transport for uvicorn: what one event-loop turn writes goes out as one send."""

from __future__ import annotations

import asyncio

from punchclock.edge import _OneSendPerTurn


class Recording:
    """A transport that records each write it is asked for (what would be one send(2) each)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_head_and_body_of_one_turn_go_out_in_one_write() -> None:
    """Given a response's head and body written in one turn, then the next turn sends them as one write."""
    raw = Recording()
    transport = _OneSendPerTurn(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 201 Created\r\n\r\n")
    transport.write(b'{"id":1}')
    assert raw.writes == []
    await asyncio.sleep(0)
    assert raw.writes == [b'HTTP/1.1 201 Created\r\n\r\n{"id":1}']


async def test_close_sends_what_was_written_first() -> None:
    """Given a write then a close in the same turn, then the bytes go out before the close, and nothing after."""
    raw = Recording()
    transport = _OneSendPerTurn(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    transport.close()
    transport.write(b"late")
    await asyncio.sleep(0)
    assert (raw.writes, raw.closed, transport.is_closing()) == ([b"HTTP/1.1 408 Request Timeout\r\n\r\n"], True, True)
    assert transport.get_extra_info("peername") == "info:peername"  # everything else is the real transport's
