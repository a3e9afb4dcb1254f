"""Prometheus and Alertmanager around punchclock: rules shortened for tests, a Prometheus process, alert polling."""
