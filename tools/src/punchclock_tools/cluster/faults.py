"""The scenarios' handle on a running cluster: who leads, and the faults they inject (kill, stop, partition)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pcbackup.pgbackrest import PgBackRest
from punchclock_tools.cluster import balancer, control, patroni, supervisor
from punchclock_tools.cluster.layout import Layout
from punchclock_tools.cluster.watch import ReadyWatch, SyncWatch
from punchclock_tools.postgres import run_as_postgres

NFT_TABLE = "punchclock_partition"  # plus a digest of the state directory: another cluster's heal() spares it


def children_of(pid: int) -> list[int]:
    """Every process whose parent is ``pid`` (a postmaster's backends and auxiliary processes)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@dataclass
class Cluster:
    layout: Layout

    @property
    def url(self) -> str:
        return self.layout.app_url

    def leader(self) -> str | None:
        return patroni.leader(self.layout)

    def wait_leader(self, timeout: float = 60, other_than: str | None = None) -> str:
        def found() -> str | None:
            name = self.leader()
            return name if name and name != other_than else None

        return str(patroni.wait(found, timeout, f"a leader other than {other_than}", interval=0.1))

    def leader_dsn(self) -> str:
        node = self.layout.node(self.wait_leader())
        db = self.layout.database
        return f"postgresql://{db['user']}:{db['password']}@127.0.0.1:{node.pg_port}/{db['name']}"

    def node_dsn(self, name: str, database: str | None = None) -> str:
        """The superuser's DSN of one node, bypassing HAProxy (replicas included)."""
        node, db = self.layout.node(name), self.layout.database
        return (
            f"postgresql://{db['superuser']}:{db['superuser_password']}@127.0.0.1:{node.pg_port}/"
            f"{database or db['name']}"
        )

    @contextlib.contextmanager
    def sync_watch(self, interval: float = 0.1) -> Iterator[SyncWatch]:
        """Poll every node's role and synchronous_standby_names (and HAProxy's check times) while the block runs."""
        watch = SyncWatch(self, interval)
        watch.start()
        try:
            yield watch
        finally:
            watch.stop()

    @contextlib.contextmanager
    def ready_watch(self, interval: float = 0.25) -> Iterator[ReadyWatch]:
        """Poll every instance's own /readyz (not through HAProxy), as a Kubernetes readiness probe would."""
        watch = ReadyWatch([f"http://127.0.0.1:{app.port}" for app in self.layout.apps], interval)
        watch.start()
        try:
            yield watch
        finally:
            watch.stop()

    def pid(self, name: str) -> int | None:
        process = supervisor.processes(self.layout).get(name)
        return process.pid if process else None

    def ctl(self, *args: str) -> str:
        return supervisor.ctl(self.layout, *args)

    def start(self, *names: str) -> None:
        self.ctl("start", *(supervisor.program(self.layout, name) for name in names))

    def stop(self, *names: str) -> None:
        self.ctl("stop", *(supervisor.program(self.layout, name) for name in names))

    def node_pids(self, name: str) -> list[int]:
        """A node's Patroni, its postmaster and every child of the postmaster."""
        postmaster = supervisor.postmaster_pid(self.layout.node(name).data_dir)
        pids = [pid for pid in (self.pid(name), postmaster) if pid]
        return pids + (children_of(postmaster) if postmaster else [])

    def kill_node(self, name: str) -> None:
        """SIGKILL a node's Patroni and its whole PostgreSQL, as a crash of that machine would; it stays down.

        supervisord restarts a Patroni that dies, and a restarted one that is then stopped hands its leader key
        over gracefully: no crash at all. So every process is frozen first (from outside, the machine stops
        answering at that instant), supervisord is told to stop the program (its SIGTERM stays pending on the
        frozen Patroni, which never handles it), and only then is everything killed: supervisord, stopping it
        already, does not restart it. ``start`` brings the node back.
        """
        victims = self.node_pids(name)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        with supervisor.stopping(self.layout, supervisor.program(self.layout, name)):
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        supervisor.wait_gone(victims, 10)

    def freeze_node(self, name: str, stagger: float = 0.0) -> list[int]:
        """SIGSTOP a node's postmaster and all its children, then (``stagger`` seconds later) its Patroni.

        With a stagger longer than ``loop_wait``, Patroni's next cycle has read the DCS (it still holds the
        leader key) and then blocks on a query to its frozen PostgreSQL when it is frozen itself: on SIGCONT
        it carries on with that stale view and updates the leader key, the path on which Debian's 3.0.2
        overwrote the key of the node promoted meanwhile. A machine stalled on I/O stops in that order.
        """
        pids = self.node_pids(name)
        patroni_pid = self.pid(name)
        for pid in pids:
            if pid != patroni_pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
        time.sleep(stagger)
        if patroni_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(patroni_pid, signal.SIGSTOP)
        return pids

    def freeze_postgres(self, name: str) -> list[int]:
        """SIGSTOP a node's postmaster and every child of it; its Patroni runs on (and waits on it)."""
        patroni_pid = self.pid(name)
        pids = [pid for pid in self.node_pids(name) if pid != patroni_pid]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return pids

    def freeze_patroni(self, name: str) -> list[int]:
        """SIGSTOP a node's Patroni alone; its PostgreSQL runs on, still a primary if it was one."""
        pid = self.pid(name)
        if pid is None:
            raise RuntimeError(f"{name}'s Patroni is not running")
        os.kill(pid, signal.SIGSTOP)
        return [pid]

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def pgbackrest(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a pgBackRest command on the cluster's stanza as the postgres user."""
        config = Path(self.layout.pgbackrest_config)
        argv = [*PgBackRest(config, self.layout.stanza).base_argv(), *args]  # conf.d: repo2's cipher pass
        return run_as_postgres(argv, timeout=120, check=False)

    def kill_pid(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def switchover(self, leader: str, candidate: str | None = None) -> None:
        """``patronictl switchover`` from ``leader`` to its synchronous standby (or ``candidate``, which must be
        that standby in synchronous mode), as an operator would."""
        config = self.layout.node(leader).patroni_config
        target = ["--candidate", candidate] if candidate else []
        subprocess.run(
            [patroni.executable("patronictl"), "-c", config, "switchover", "--leader", leader, *target, "--force"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def node_is_primary(self, name: str) -> bool:
        return patroni.get(self.layout.node(name).rest_port, "/primary")[0] == 200

    def node_is_replica(self, name: str) -> bool:
        """The node's own Patroni says it runs as a streaming replica."""
        return patroni.get(self.layout.node(name).rest_port, "/replica")[0] == 200

    def watch_leadership(self, old: str, timeout: float) -> dict[str, object]:
        """Poll every node's /primary until ``old`` has stepped down and another node leads.

        Returns when each happened (seconds from the call) and how long two nodes both claimed to be
        primary (split brain as HAProxy would see it).
        """
        started = time.monotonic()
        demoted = elected = None
        new = None
        both = 0.0
        last = started
        while time.monotonic() - started < timeout and (demoted is None or elected is None):
            now = time.monotonic()
            primaries = [node.name for node in self.layout.nodes if self.node_is_primary(node.name)]
            if len(primaries) > 1:
                both += now - last
            if old not in primaries and demoted is None:
                demoted = now - started
            others = [name for name in primaries if name != old]
            if others and elected is None:
                elected, new = now - started, others[0]
            last = now
            time.sleep(0.1)
        if demoted is None or elected is None:
            raise TimeoutError(f"after {timeout}s: demoted={demoted} elected={elected}")
        return {
            "new_leader": new,
            "old_demoted_seconds": round(demoted, 2),
            "new_elected_seconds": round(elected, 2),
            "both_primary_seconds": round(both, 2),
        }

    def sync_standby(self) -> str | None:
        """The member Patroni lists as synchronous standby (None when it lists none)."""
        return next((m["name"] for m in patroni.members(self.layout) if m.get("role") == "sync_standby"), None)

    def primaries_for(self, seconds: float, old: str | None = None) -> dict[str, object]:
        """Poll every node's /primary for ``seconds``: how long two nodes answered 200 at once, which nodes did,
        and (with ``old``) when ``old`` last did, in seconds from the call (-1: never)."""
        started = last = time.monotonic()
        both, seen, old_until = 0.0, set(), -1.0
        while (now := time.monotonic()) - started < seconds:
            primaries = [node.name for node in self.layout.nodes if self.node_is_primary(node.name)]
            seen.update(primaries)
            both += (now - last) if len(primaries) > 1 else 0.0
            if old in primaries:
                old_until = now - started
            last = now
            time.sleep(0.1)
        return {
            "both_primary_seconds": round(both, 2),
            "primaries_seen": sorted(seen),
            "old_primary_until": round(old_until, 2),
        }

    def refused_during(self, port: int, action: Callable[[], object], interval: float = 0.01) -> float:
        """Run ``action`` while connecting to 127.0.0.1:``port`` every ``interval``; return the longest time in
        which every connection was refused (how long nothing listened there), in seconds."""
        done = threading.Event()
        gaps: list[float] = [0.0]

        def probe() -> None:
            refused_since: float | None = None
            while not done.is_set():
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    if refused_since is not None:
                        gaps.append(time.monotonic() - refused_since)
                    refused_since = None
                except OSError:
                    refused_since = refused_since or time.monotonic()
                time.sleep(interval)
            if refused_since is not None:
                gaps.append(time.monotonic() - refused_since)

        thread = threading.Thread(target=probe, name="refused-during", daemon=True)
        thread.start()
        try:
            action()
            time.sleep(0.2)  # the listener may come back just after the action returns
        finally:
            done.set()
            thread.join(5)
        return max(gaps)

    def readyz(self) -> int:
        """The status of GET /readyz through the balancer (0 when nothing answers)."""
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as response:  # noqa: S310 - http://127.0.0.1 URLs built here
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    def balancer_servers(self) -> dict[str, str]:
        """HAProxy's view: ``{"backend/server": "UP" | "DOWN" | ...}`` from its runtime API's ``show stat``."""
        return {f"{row['pxname']}/{row['svname']}": row["status"] for row in balancer.stats(self.layout)}

    def in_flight(self, app: str) -> int:
        """Requests HAProxy has open on instance ``app`` right now (its current sessions, both backends)."""
        return balancer.sessions(self.layout, app)

    def wait_app_in_balancer(self, name: str, timeout: float = 30) -> None:
        patroni.wait(
            lambda: self.balancer_servers().get(f"apps/{name}") == "UP", timeout, f"{name} UP in HAProxy", interval=0.1
        )

    @property
    def nft_table(self) -> str:
        return f"{NFT_TABLE}_{hashlib.sha256(self.layout.state_dir.encode()).hexdigest()[:8]}"

    def partition(self, name: str) -> None:
        """Cut node ``name`` off from etcd and the other nodes (and them from it) with nftables.

        Each node's processes run with the node's own group id, which nftables matches on loopback
        (``meta skgid``). Flows the other nodes opened towards it get a conntrack mark, so the replies on
        them are dropped too. HAProxy and the app (root) still reach it: the worst case for split brain.
        """
        node = self.layout.node(name)
        others = [n for n in self.layout.nodes if n.name != name]
        etcd_ports = ", ".join(str(e.client_port) for e in self.layout.etcd)
        other_ports = ", ".join(str(p) for n in others for p in (n.pg_port, n.rest_port))
        other_gids = ", ".join(str(n.gid) for n in others)
        self._nft(
            f"""
        ct mark 0x70c drop
        meta skgid {node.gid} tcp dport {{ {etcd_ports}, {other_ports} }} drop
        meta skgid {{ {other_gids} }} tcp dport {{ {node.pg_port}, {node.rest_port} }} ct mark set 0x70c drop"""
        )

    def partition_from_etcd(self, name: str) -> None:
        """Cut node ``name``'s processes off from every etcd member, and from nothing else: replication, the
        other nodes' REST APIs, HAProxy and the instances all still reach it (and it them). Its packets on
        the connections it holds to etcd are dropped too, so those hang as they would behind a dead link."""
        node = self.layout.node(name)
        etcd_ports = ", ".join(str(e.client_port) for e in self.layout.etcd)
        self._nft(f"\n        meta skgid {node.gid} tcp dport {{ {etcd_ports} }} drop")

    def _nft(self, rules: str) -> None:
        table = f"""
table inet {self.nft_table} {{
    chain output {{
        type filter hook output priority 0; policy accept;{rules}
    }}
}}
"""
        subprocess.run(["nft", "-f", "-"], input=table, text=True, check=True, timeout=10)

    def heal(self) -> None:
        subprocess.run(["nft", "delete", "table", "inet", self.nft_table], capture_output=True, check=False, timeout=10)

    def settle(self, timeout: float = 120) -> None:
        """Undo what a scenario left: lift partitions, start stopped programs, wait until all is healthy."""
        self.heal()
        stopped = [name for name, p in supervisor.processes(self.layout).items() if p.state != "RUNNING"]
        if stopped:
            self.start(*stopped)
        patroni.wait(lambda: patroni.healthy(self.layout), timeout, "a healthy database cluster")
        for app in self.layout.apps:
            self.wait_app_in_balancer(app.name, timeout)
        patroni.wait(lambda: control.http_ready(f"{self.url}/readyz"), timeout, "the balancer ready")


def wait_until(condition: object, timeout: float, what: str) -> float:
    """Poll ``condition`` (a callable) and return how long it took."""
    started = time.monotonic()
    patroni.wait(condition, timeout, what, interval=0.1)
    return time.monotonic() - started
