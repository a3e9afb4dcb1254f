"""punchclock's exceptions. Each carries the HTTP status and problem title it maps to at the edge."""

from __future__ import annotations


class PunchclockError(Exception):
    """Root of every error punchclock raises on purpose."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(PunchclockError):
    status = 400
    title = "Bad Request"

    def __init__(self, detail: str, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.parameter = parameter


class NotFound(PunchclockError):
    status = 404
    title = "Not Found"


class PayloadTooLarge(PunchclockError):
    status = 413
    title = "Content Too Large"


class Unavailable(PunchclockError):
    """The request could not be served now; the client may retry after ``retry_after`` seconds."""

    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Overloaded(Unavailable):
    """The write queue is full."""


class DatabaseUnavailable(Unavailable):
    """The database did not accept the write within the failover budget."""


class StorageError(PunchclockError):
    """A database failure that is not about reachability (bad schema, constraint...)."""


class SchemaOutdated(StorageError):
    """The database schema is older than this version of punchclock needs."""


class TransientStorageError(StorageError):
    """The database could not be reached or cannot take writes right now (connection lost, failover in
    progress, read-only node). The outcome of a write that failed this way is unknown: retry it with the
    same keys. A read that fails this way is answered 503."""

    status = 503
    title = "Service Unavailable"
    retry_after = 1
