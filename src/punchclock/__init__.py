"""punchclock: a highly available service that records a durable timestamp for every POST /app."""

__version__ = "0.1.0"

__all__ = ["__version__"]
