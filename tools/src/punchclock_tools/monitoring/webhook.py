"""A webhook receiver on a loopback port that keeps every notification Alertmanager posts to it, by path."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Notification:
    path: str  # the receiver's URL path: /page, /ticket
    status: str  # firing | resolved
    alertnames: list[str]
    body: dict[str, Any]


@dataclass
class Inbox:
    url: str
    received: list[Notification] = field(default_factory=list)

    def wait_for(self, found: Callable[[Notification], bool], timeout: float) -> Notification:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for notification in list(self.received):
                if found(notification):
                    return notification
            time.sleep(0.2)
        seen = [(n.path, n.status, n.alertnames) for n in self.received]
        raise TimeoutError(f"no such notification within {timeout}s; received {seen}")


@contextlib.contextmanager
def receiving(port: int = 0) -> Iterator[Inbox]:
    """Serve on 127.0.0.1:``port`` (0: any free port) for the block."""
    inbox = Inbox("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            names = sorted({alert["labels"]["alertname"] for alert in body.get("alerts", [])})
            inbox.received.append(Notification(self.path, body.get("status", ""), names, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    inbox.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield inbox
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
