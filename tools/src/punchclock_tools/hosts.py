"""Test hosts for the Ansible roles: podman containers that boot systemd, on a network the run creates.

Each host starts with only what a bare Debian 12 VM reachable by Ansible has (systemd, dbus, openssh-server,
python3, plus this machine's CA certificates so that HTTPS egress verifies); the roles install everything else.
The image is built once from the project's debootstrap rootfs (punchclock_tools.podman) and cached.

    with hosts.running(["db1", "db2", "web1"]) as bed:   # network, hosts, SSH key, inventory
        subprocess.run(["ansible-playbook", "-i", bed.inventory, ...])

Every container and the network carry the run's id in their names, and are removed by name when the block
ends, also when it fails. ``python -m punchclock_tools.hosts up db1 web1`` keeps a testbed for manual work and
``... down RUN`` removes it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from punchclock_tools import ports
from punchclock_tools.podman import Podman, configure, ensure_layer_image

HOST_IMAGE = "localhost/punchclock-host/debian:bookworm"
# A .deb cache per host name, kept across runs for speed. Not one shared by all hosts: apt's lock on the archives
# directory does not wait, so hosts installing at once would fail. A run that cannot take a name's cache (a
# concurrent run has it) goes without.
APT_CACHE_VOLUME = "punchclock-hosts-apt-{name}"
PREFIX = "pchost"

# ca-certificates and the host's extra CAs: HTTPS from these hosts (pip to PyPI) goes through this machine's egress,
# which a real VM would trust the same way. SSH host keys are generated at build: every host of the image has the
# same ones, and the test's known_hosts pins exactly that key.
HOST_LAYER = """\
FROM {rootfs}
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      systemd systemd-sysv dbus openssh-server python3 ca-certificates \\
 && update-ca-certificates \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \\
 && systemctl enable ssh \\
 && systemctl mask systemd-udevd.service systemd-udevd-kernel.socket systemd-udevd-control.socket \\
      getty@tty1.service console-getty.service systemd-logind.service \\
 && echo 'APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/10keep-debs
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
"""


def ensure_host_image(podman: Podman) -> str:
    """Return the host image's name, building it on the debootstrap rootfs unless it is cached."""
    return ensure_layer_image(podman, HOST_IMAGE, HOST_LAYER)


@dataclass
class Host:
    name: str  # the inventory name and hostname (db1)
    container: str  # unique to the run (pchost-1a2b3c4d-db1)
    address: str


@dataclass
class Testbed:
    """A network, its hosts, the SSH key that reaches them as root, and an inventory file listing them."""

    podman: Podman
    run_id: str
    network: str
    subnet: ipaddress.IPv4Network
    workdir: Path
    hosts: dict[str, Host] = field(default_factory=dict)
    locks: list[TextIO] = field(default_factory=list)

    @property
    def key(self) -> Path:
        return self.workdir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.workdir / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.workdir / "hosts.yml"

    def address(self, offset: int) -> str:
        """An address of the run's subnet by offset (hosts take 10, 11, ...; a floating address e.g. 100)."""
        return str(self.subnet.network_address + offset)

    def ssh_args(self) -> list[str]:
        return [
            "-i",
            str(self.key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=10",
        ]

    def ssh(self, name: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on host ``name`` as root over SSH."""
        return subprocess.run(
            ["ssh", *self.ssh_args(), f"root@{self.hosts[name].address}", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def write_inventory(
        self,
        groups: dict[str, list[str]],
        variables: dict[str, object] | None = None,
        host_vars: dict[str, dict[str, object]] | None = None,
    ) -> Path:
        """Write an inventory (YAML, which is JSON) with these groups; every host is reached by its address."""
        host_vars = host_vars or {}
        ssh_common = " ".join(self.ssh_args()[2:])  # the key is ansible_ssh_private_key_file
        inventory = {
            "all": {
                "hosts": {
                    h.name: {"ansible_host": h.address, **host_vars.get(h.name, {})} for h in self.hosts.values()
                },
                "vars": {
                    "ansible_user": "root",
                    "ansible_ssh_private_key_file": str(self.key),
                    "ansible_ssh_common_args": ssh_common,
                    "ansible_python_interpreter": "/usr/bin/python3",
                    **(variables or {}),
                },
                "children": {group: {"hosts": {name: {} for name in names}} for group, names in groups.items()},
            }
        }
        self.inventory.write_text(json.dumps(inventory, indent=2) + "\n")
        return self.inventory

    @contextlib.contextmanager
    def tunnel(self, via: str, target: str, port: int) -> Iterator[int]:
        """A local port forwarded over SSH through host ``via`` to ``target:port``, as ``via`` would connect."""
        local = ports.free_port()
        proc = subprocess.Popen(
            ["ssh", *self.ssh_args(), "-N", "-o", "ExitOnForwardFailure=yes",
             "-L", f"127.0.0.1:{local}:{target}:{port}", f"root@{self.hosts[via].address}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not ports.accepting("127.0.0.1", local):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ssh tunnel through {via} to {target}:{port} did not open")
                time.sleep(0.2)
            yield local
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def kill(self, name: str) -> None:
        self.podman.run("kill", self.hosts[name].container)

    def disconnect(self, name: str) -> None:
        self.podman.run("network", "disconnect", "--force", self.network, self.hosts[name].container)

    def reconnect(self, name: str) -> None:
        host = self.hosts[name]
        self.podman.run("network", "connect", "--ip", host.address, self.network, host.container)

    def add(self, name: str) -> Host:
        """A new host on the running network (a node added on day 2), booted."""
        host = _run_host(self, ensure_host_image(self.podman), name)
        self.wait_booted([name])
        return host

    def start(self, name: str) -> None:
        self.podman.run("start", self.hosts[name].container)
        self.wait_booted([name])

    def wait_booted(self, names: Sequence[str], timeout: float = 90) -> None:
        """Wait until each host's systemd is up (running or degraded) and its sshd answers our key."""
        deadline = time.monotonic() + timeout
        pending = list(names)
        last = ""
        while pending:
            name = pending[0]
            proc = self.ssh(name, "systemctl is-system-running --wait", timeout=30) if self._ssh_ready(name) else None
            if proc is not None and proc.stdout.strip() in {"running", "degraded"}:
                pending.pop(0)
                continue
            last = proc.stdout + proc.stderr if proc else "ssh not answering"
            if time.monotonic() > deadline:
                raise TimeoutError(f"host {name} did not boot within {timeout:.0f} s: {last.strip()}")
            time.sleep(0.5)

    def _ssh_ready(self, name: str) -> bool:
        try:
            return self.ssh(name, "true", timeout=15).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def _subnet_of(podman: Podman, network: str) -> ipaddress.IPv4Network:
    (info,) = json.loads(podman.run("network", "inspect", network).stdout)
    return ipaddress.IPv4Network(info["subnets"][0]["subnet"])


def create(names: Sequence[str], podman: Podman | None = None, workdir: Path | None = None) -> Testbed:
    """Create the network and the hosts, boot them, and write the SSH key and known_hosts (no inventory yet).

    On any failure everything created so far is removed before the error propagates.
    """
    podman = podman or configure()
    image = ensure_host_image(podman)
    run_id = uuid.uuid4().hex[:8]
    workdir = workdir or Path(tempfile.mkdtemp(prefix=f"punchclock-hosts-{run_id}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    network = f"{PREFIX}-{run_id}"
    # podman picks a free subnet from its pool, so concurrent runs never collide; hosts take fixed offsets in it.
    podman.run("network", "create", "--label", f"{PREFIX}.run={run_id}", network)
    bed = Testbed(podman, run_id, network, _subnet_of(podman, network), workdir)
    try:
        _make_key(bed, image)
        for name in names:
            _run_host(bed, image, name)
        bed.wait_booted(list(names))
    except BaseException:
        destroy(bed)
        raise
    return bed


def _run_host(bed: Testbed, image: str, name: str) -> Host:
    """Start host ``name`` at the next free offset of the subnet (10, 11, ...); recorded in ``bed.hosts``."""
    host = Host(name, f"{PREFIX}-{bed.run_id}-{name}", bed.address(10 + len(bed.hosts)))
    cache = _apt_cache(bed, name)
    bed.podman.run(
        "run",
        "--detach",
        "--name",
        host.container,
        "--hostname",
        name,
        "--label",
        f"{PREFIX}.run={bed.run_id}",
        f"--network={bed.network}:ip={host.address}",
        "--no-hosts",  # /etc/hosts belongs to the roles, and podman must not rewrite it on (dis)connect
        "--systemd=always",
        "--cap-add=NET_ADMIN,NET_RAW",  # keepalived adds the floating address and sends VRRP
        *cache,
        "--volume",
        f"{bed.key}.pub:/root/.ssh/authorized_keys:ro",
        "--memory=2g",
        image,
    )
    bed.hosts[name] = host
    return host


def _apt_cache(bed: Testbed, name: str) -> list[str]:
    """The volume arguments for host ``name``'s apt cache, or none when another run holds it."""
    volume = APT_CACHE_VOLUME.format(name=name)
    handle = (bed.podman.root / f"{volume}.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return []
    bed.locks.append(handle)
    if bed.podman.run("volume", "exists", volume, check=False).returncode != 0:
        bed.podman.run("volume", "create", volume)
    return ["--volume", f"{volume}:/var/cache/apt/archives"]


def _make_key(bed: Testbed, image: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"punchclock-test-{bed.run_id}", "-f", str(bed.key)],
        check=True,
        timeout=30,
    )
    bed.key.with_suffix(".pub").chmod(0o644)
    host_key = bed.podman.run("run", "--rm", image, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
    # Every address of the subnet a host can take: the image's one host key, pinned.
    patterns = ",".join(bed.address(n) for n in range(2, 254))
    bed.known_hosts.write_text(f"{patterns} {host_key[0]} {host_key[1]}\n")


def destroy(bed: Testbed) -> None:
    """Remove every host and the network of the run, by name; never raises."""
    for host in bed.hosts.values():
        bed.podman.run("rm", "--force", "--time", "5", host.container, check=False, timeout=120)
    # Containers of this run that were created but not recorded (a failure inside `podman run`).
    listed = bed.podman.run("ps", "-a", "--filter", f"label={PREFIX}.run={bed.run_id}", "--format", "{{.Names}}")
    for name in listed.stdout.split():
        bed.podman.run("rm", "--force", "--time", "5", name, check=False, timeout=120)
    bed.podman.run("network", "rm", "--force", bed.network, check=False, timeout=120)
    for handle in bed.locks:
        handle.close()


@contextlib.contextmanager
def running(names: Sequence[str], podman: Podman | None = None, workdir: Path | None = None) -> Iterator[Testbed]:
    """Hosts named ``names`` for the duration of the block; all of them and the network are removed after."""
    bed = create(names, podman, workdir)
    try:
        yield bed
    finally:
        destroy(bed)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m punchclock_tools.hosts", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("image", help="build the host image unless it is cached")
    up = sub.add_parser("up", help="create hosts and keep them; prints the run id and the work directory")
    up.add_argument("names", nargs="+")
    up.add_argument("--workdir", type=Path)
    down = sub.add_parser("down", help="remove the hosts and the network of a run")
    down.add_argument("run_id")
    args = parser.parse_args(argv)
    podman = configure()
    if args.command == "image":
        print(ensure_host_image(podman))
    elif args.command == "up":
        bed = create(args.names, podman, args.workdir)
        print(
            json.dumps(
                {
                    "run": bed.run_id,
                    "workdir": str(bed.workdir),
                    "network": bed.network,
                    "hosts": {h.name: h.address for h in bed.hosts.values()},
                }
            )
        )
    else:
        listed = podman.run("ps", "-a", "--filter", f"label={PREFIX}.run={args.run_id}", "--format", "{{.Names}}")
        for name in listed.stdout.split():
            podman.run("rm", "--force", "--time", "5", name, check=False, timeout=120)
        podman.run("network", "rm", "--force", f"{PREFIX}-{args.run_id}", check=False, timeout=120)


if __name__ == "__main__":
    main()
