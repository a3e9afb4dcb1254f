"""Shared between the server and the app: whether this process is draining, and what to do when the
server stops accepting connections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Lifecycle:
    draining: bool = False
    _on_close: list[Callable[[float], None]] = field(default_factory=list)

    def on_listener_closed(self, callback: Callable[[float], None]) -> None:
        """Call ``callback(seconds_left)`` when the server stops accepting and starts its drain bound."""
        self._on_close.append(callback)

    def listener_closed(self, seconds_left: float) -> None:
        self.draining = True
        for callback in self._on_close:
            callback(seconds_left)
