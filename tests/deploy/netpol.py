"""NetworkPolicy semantics, enough to ask whether the rendered policies admit one connection (offline).

Supports what the manifests use: ``matchLabels`` selectors, ``namespaceSelector``/``podSelector`` peers (alone
or together), ``ipBlock`` peers and numbered ports. Anything else fails loudly rather than guessing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from punchclock_tools.manifests import Manifest


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection: a pod (namespace and labels) or, with ``ip``, a host-network address."""

    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def _matches(selector: Manifest, labels: dict[str, str]) -> bool:
    if set(selector) - {"matchLabels"}:
        raise NotImplementedError(f"selector {selector} uses more than matchLabels")
    wanted: dict[str, str] = selector.get("matchLabels", {})
    return wanted.items() <= labels.items()


def _peer_matches(peer: Manifest, other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if other.ip is None:
            return False
        address = ipaddress.ip_address(other.ip)
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(address in ipaddress.ip_network(c) for c in block.get("except", []))
    if other.ip is not None:
        return False  # host-network traffic is never matched by a pod or namespace selector
    if "namespaceSelector" in peer:
        namespace_ok = _matches(peer["namespaceSelector"], other.namespace_labels)
    else:
        namespace_ok = other.namespace == policy_namespace
    return namespace_ok and _matches(peer.get("podSelector", {}), other.labels)


def _port_matches(rule: Manifest, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") in (None, port) and p.get("protocol", "TCP") == protocol for p in ports)


def admits(policies: list[Manifest], source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
    """Whether the policies let ``source`` open a connection to ``destination`` on ``port``: the source's
    egress (if any policy selects it for Egress) and the destination's ingress must both allow it."""
    return _direction(policies, "Egress", source, destination, port, protocol) and _direction(
        policies, "Ingress", destination, source, port, protocol
    )


def _direction(policies: list[Manifest], kind: str, pod: Endpoint, other: Endpoint, port: int, protocol: str) -> bool:
    if pod.ip is not None:
        return True  # policies select pods, never host-network endpoints
    selecting = [
        p
        for p in policies
        if p["metadata"].get("namespace", "") == pod.namespace
        and kind in p["spec"].get("policyTypes", ["Ingress"])
        and _matches(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    key, peers = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    return any(
        _port_matches(rule, port, protocol)
        and (peers not in rule or any(_peer_matches(peer, other, pod.namespace) for peer in rule[peers]))
        for policy in selecting
        for rule in policy["spec"].get(key, [])
    )
