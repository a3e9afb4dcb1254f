"""Ask Patroni's REST API who leads, who replicates, and whether a node is healthy."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from punchclock_tools.cluster.layout import Layout


def get(port: int, path: str, timeout: float = 1.0) -> tuple[int, Any]:
    """GET a Patroni endpoint; (status, parsed body), or (0, None) when the node does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body or b"null")
        except ValueError:
            return error.code, None
    except (OSError, ValueError):
        return 0, None


def members(layout: Layout) -> list[dict[str, Any]]:
    """The member list as the first answering node sees it (``GET /cluster``), or [] when none answers."""
    for node in layout.nodes:
        status, body = get(node.rest_port, "/cluster")
        if status == 200 and isinstance(body, dict):
            return list(body.get("members", []))
    return []


def leader(layout: Layout) -> str | None:
    """The node whose REST API answers 200 on /primary: the one HAProxy sends writes to."""
    for node in layout.nodes:
        if get(node.rest_port, "/primary")[0] == 200:
            return node.name
    return None


def healthy(layout: Layout) -> bool:
    """A running leader and every other node a streaming replica, one of them synchronous."""
    found = members(layout)
    if len(found) != len(layout.nodes):
        return False
    roles = sorted(member.get("role", "") for member in found)
    running = all(member.get("state") in ("running", "streaming") for member in found)
    return running and roles.count("leader") == 1 and "sync_standby" in roles


def wait(condition: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``condition()`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
