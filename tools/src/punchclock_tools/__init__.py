"""punchclock's own tooling, one home for what tests, the benchmark and the deployment harnesses share.

- ``postgres``: commands as the postgres user, psql over a socket, throwaway servers (optionally TLS)
- ``ports``: free loopback ports
- ``http``, ``process``, ``service``: punchclock as a real process or in-process on a socket, readiness waits
- ``load``: a bounded POST load that records every acknowledged receipt, and its checks
- ``cluster``: the local HA cluster (etcd, Patroni, PostgreSQL, HAProxy, punchclock) and its fault injection
- ``podman``, ``manifests``: the container image and the Kubernetes manifests as data
- ``freshmachine``: ``make run`` and ``make test`` on a bare Debian root file system
"""
