"""``make bench``: punchclock's durable write path measured side by side with the limits of its stack.

One run starts its own PostgreSQL 15 (fsync and synchronous_commit on), measures pgbench's one-row commit
ceiling, the HTTP ceiling (``GET /healthz``), ``POST /app`` with group and per-request commits and on SQLite,
a concurrency sweep and a table-size scan of ``GET /app``, checks that every 2xx left exactly one row, and
writes ``results/bench.json`` plus a plot. ``python -m bench`` runs it; see ``bench/settings.py``.
"""
