"""Shared between the server and the app: whether this process is draining."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Lifecycle:
    draining: bool = False
