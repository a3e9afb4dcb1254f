"""An inventory's settings reach the roles. Ansible ranks a playbook's group_vars/all above an inventory's group
variables, so a setting kept there would silently win over the `all: vars:` of the example inventory (the
floating address would stay empty and keepalived would never run): settings live in roles/deployment's defaults,
the lowest precedence, and group_vars/all holds only what hosts set per host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from punchclock_tools.paths import REPO

ANSIBLE = REPO / "deploy" / "ansible"
EXAMPLE = ANSIBLE / "inventory" / "example" / "hosts.yml"


def _group_vars(group: dict[str, Any]) -> set[str]:
    """Every variable an inventory sets on a group, its children's included."""
    names = set(group.get("vars") or {})
    for child in (group.get("children") or {}).values():
        names |= _group_vars(child or {})
    return names


def _playbook_group_vars() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((ANSIBLE / "group_vars").rglob("*.yml")):
        for name in yaml.safe_load(path.read_text()) or {}:
            found[name] = path
    return found


def test_no_setting_the_example_inventory_makes_is_overridden_by_playbook_group_vars() -> None:
    inventory_sets = _group_vars(yaml.safe_load(EXAMPLE.read_text())["all"])
    overridden = {
        name: str(path.relative_to(REPO)) for name, path in _playbook_group_vars().items() if name in inventory_sets
    }
    assert overridden == {}


def test_playbook_group_vars_hold_only_per_host_values() -> None:
    """private_address is read of other hosts through hostvars (which carry no role defaults), and set per host."""
    assert set(_playbook_group_vars()) == {"private_address"}


def test_every_role_depends_on_the_deployment_settings() -> None:
    roles = sorted(path.name for path in (ANSIBLE / "roles").iterdir() if path.name != "deployment")
    missing = [
        role
        for role in roles
        if "deployment"
        not in (yaml.safe_load((ANSIBLE / "roles" / role / "meta" / "main.yml").read_text()) or {}).get(
            "dependencies", []
        )
    ]
    assert missing == []


def test_pgbackrest_names_patronis_data_directory() -> None:
    """roles/pgbackrest lists every database node's data directory (read of other hosts, so not from patroni's
    defaults): its default must be the path patroni_data_dir gives."""
    patroni = yaml.safe_load((ANSIBLE / "roles/patroni/defaults/main.yml").read_text())
    pgbackrest = yaml.safe_load((ANSIBLE / "roles/pgbackrest/defaults/main.yml").read_text())
    assert patroni["patroni_scope"] == "{{ deployment }}"
    assert pgbackrest["pgbackrest_pg_path"] == patroni["patroni_data_dir"].replace(
        "{{ patroni_scope }}", "{{ deployment }}"
    )
