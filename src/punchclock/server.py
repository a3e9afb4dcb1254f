"""Serving punchclock with uvicorn (uvloop + httptools, with the limits of ``punchclock.edge``), draining
gracefully on SIGTERM.

On the first SIGTERM or SIGINT, ``/readyz`` turns 503 at once while the server keeps answering for
``drain_delay_seconds``, long enough for load balancers to stop sending new requests. Then it stops
accepting connections, lets in-flight requests finish for at most ``drain_seconds``, commits what is queued
and closes the pool. A second signal skips the delay.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

import structlog
import uvicorn

from punchclock import worker_metrics
from punchclock.app import create_app
from punchclock.edge import EdgeLimits, protocol_for
from punchclock.lifecycle import Lifecycle
from punchclock.settings import Settings

log = structlog.get_logger("punchclock.server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_delay: float, drain: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_delay = drain_delay
        self.drain = drain
        self._exit_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._exit_at is None and self.drain_delay > 0 and self.started:
            self.lifecycle.draining = True
            self._exit_at = time.monotonic() + self.drain_delay
            log.info(
                "draining: readiness now fails; still serving until load balancers notice",
                signal=signal.Signals(sig).name,
                delay_s=self.drain_delay,
            )
            return
        self.lifecycle.draining = True
        super().handle_exit(sig, frame)
        # uvicorn re-raises a captured signal after shutting down, which turns a clean drain into death by
        # SIGTERM (exit status 143); a drained punchclock exits 0.
        self._captured_signals.clear()

    async def on_tick(self, counter: int) -> bool:
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            log.info("drain delay over: closing the listener and finishing in-flight requests")
            self.should_exit = True
        exiting = await super().on_tick(counter)
        if exiting:
            self.lifecycle.listener_closed(self.drain)
        return exiting


def _config(settings: Settings, lifecycle: Lifecycle, metrics_dir: Path | None) -> uvicorn.Config:
    exposition = worker_metrics.exposition(metrics_dir) if metrics_dir is not None else None
    return uvicorn.Config(
        create_app(settings, lifecycle=lifecycle, exposition=exposition),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=protocol_for(
            EdgeLimits(
                max_header_bytes=settings.max_header_bytes,
                max_headers=settings.max_headers,
                header_timeout=settings.header_timeout_seconds,
                body_timeout=settings.body_timeout_seconds,
                max_connections=settings.max_connections,
            )
        ),  # httptools with the edge's limits
        ws="none",  # no route speaks WebSocket; an Upgrade header gets a plain HTTP answer
        lifespan="on",
        access_log=False,  # punchclock writes its own access line per request
        log_config=None,  # logging is configured by punchclock.logs
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=settings.keepalive_seconds,
        timeout_graceful_shutdown=max(settings.drain_seconds, 0.1),  # type: ignore[arg-type]  # a float works
        backlog=4096,
    )


def _serve_one(settings: Settings, sockets: list[socket.socket] | None = None, metrics_dir: Path | None = None) -> None:
    lifecycle = Lifecycle()
    server = DrainingServer(
        _config(settings, lifecycle, metrics_dir), lifecycle, settings.drain_delay_seconds, settings.drain_seconds
    )
    server.run(sockets=sockets)
    if not server.started:
        sys.exit(3)  # start-up failed; the reason is in the log


def serve(settings: Settings) -> None:
    """Serve until SIGTERM. With ``workers`` > 1, forked workers share one listening socket and one metrics
    directory, so any worker's /metrics reports them all; if one dies unexpectedly the others are stopped and
    the process exits non-zero, for the supervisor to restart."""
    if settings.workers == 1:
        _serve_one(settings)
        return
    with worker_metrics.shared_directory() as metrics_dir:
        _serve_workers(settings, metrics_dir)


def _serve_workers(settings: Settings, metrics_dir: Path) -> None:
    sock = uvicorn.Config(app=None, host=settings.host, port=settings.port).bind_socket()  # type: ignore[arg-type]
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                _serve_one(settings, [sock], metrics_dir)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                os._exit(code)
        children.append(pid)
    stopping = False

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            os.kill(child, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    log.info("workers started", pids=children)
    failed = False
    while children:
        pid, status = os.wait()
        children.remove(pid)
        worker_metrics.worker_exited(pid, metrics_dir)
        if not stopping and not failed:
            failed = True
            log.error("a worker exited unexpectedly; stopping the others", pid=pid, status=status)
            for child in children:
                os.kill(child, signal.SIGTERM)
    sys.exit(1 if failed else 0)
