"""The Ansible roles' defaults, read as plain YAML: the one home of every HA decision.

deploy/ansible/roles/<role>/defaults/main.yml lists and explains each role's variables. The loopback harness
(punchclock_tools.cluster) keeps its own transport (supervisord on 127.0.0.1, no TLS: it comes up in about
20 s, where site.yml takes about 280 s on six podman hosts, and the HA scenarios depend on that speed), but it
renders Patroni's, etcd's and HAProxy's timing and safety settings from these files, so the two deployments
cannot drift apart. A value that is a Jinja expression (a path built from ``deployment``, a password lookup)
is Ansible's to resolve and no decision: :func:`decisions` leaves it out.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import yaml

from punchclock_tools.paths import REPO

ROLES = REPO / "deploy" / "ansible" / "roles"


@functools.cache
def _read(role: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {})


def defaults(role: str) -> dict[str, Any]:
    """Every variable of ``role``'s defaults/main.yml, as YAML reads it (a fresh copy: callers may change it)."""
    return copy.deepcopy(_read(role))


def _templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def decisions(role: str) -> dict[str, Any]:
    """``role``'s defaults without the Jinja expressions: the values that mean the same wherever they are read."""
    return {name: value for name, value in defaults(role).items() if not _templated(value)}
