"""Free TCP ports on 127.0.0.1 for the servers the tooling starts."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def free_port() -> int:
    """A port nothing listens on right now, chosen by the kernel (for a server started at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def stable_ports(count: int) -> list[int]:
    """``count`` distinct free ports below the kernel's ephemeral range, for processes that restart on theirs.

    A killed instance or a rolling restart binds the same port again; a port from the ephemeral range could
    meanwhile be taken by any outgoing connection or ``bind(0)`` on the machine.
    """
    high = _ephemeral_low()
    low = max(10000, high - 12000)
    candidates = random.sample(range(low, high), k=min(2000, high - low))
    ports = [port for port in candidates if port_is_free(port)][:count]
    if len(ports) < count:
        raise RuntimeError(f"found only {len(ports)} free ports between {low} and {high}")
    return ports


def accepting(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port`` now."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True
