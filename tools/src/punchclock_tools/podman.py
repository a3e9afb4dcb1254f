"""Podman for the deployment tests: a private configuration and storage, and a locally made base image.

No registry is reachable from the test machines, so the Dockerfile's public Python base image is replaced by
one made here: ``debootstrap --variant=minbase bookworm`` from the mirror apt already uses, imported into
podman, with Debian's python3 and the host's extra CA certificates added on top. It is cached in podman's
storage under ``PUNCHCLOCK_PODMAN_ROOT`` (default ``/var/cache/punchclock/podman``, outside any work tree), so
a fresh clone reuses it. ``configure`` takes other roots and limits, and ``Podman.ensure_network`` makes a
bridge network on a subnet no host route covers, for callers that nest podman (punchclock_tools.fresh).

    python -m punchclock_tools.podman base-image      # make the base image unless it is cached
    python -m punchclock_tools.podman image TAG       # build the Dockerfile on top of it
    eval "$(python -m punchclock_tools.podman env)"   # point podman at that storage: podman run ... TAG
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import itertools
import os
import re
import resource
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from punchclock_tools.paths import REPO

DEFAULT_ROOT = Path(os.environ.get("PUNCHCLOCK_PODMAN_ROOT", "/var/cache/punchclock/podman"))
ROOTFS_IMAGE = "localhost/punchclock-base/debian:bookworm"
BASE_IMAGE = "localhost/punchclock-base/python:3.11-bookworm"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
# Private networks take a /24 from here; podman's own default, 10.88.0.0/16, is what nested podman uses.
NETWORK_POOL = ipaddress.IPv4Network("10.213.0.0/16")

PYTHON_LAYER = """\
FROM {rootfs}
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3 python3-venv ca-certificates \\
 && update-ca-certificates \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt
"""


@dataclass(frozen=True)
class Podman:
    """podman with its own containers.conf and storage.conf, so nothing touches the host's defaults."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.config_dir / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.config_dir / "storage.conf"),
        }

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run one podman command; on failure the error names the command and carries its output."""
        proc = subprocess.run(
            ["podman", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        return proc

    def exports(self) -> list[str]:
        """The variables that point podman at this storage, as NAME=value (for a shell or a message)."""
        return [f"{name}={self.env()[name]}" for name in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")]

    def has_image(self, name: str) -> bool:
        return self.run("image", "exists", name, check=False).returncode == 0

    def build(self, context: Path, tag: str, build_args: dict[str, str], timeout: float = 900) -> None:
        args = [f"--build-arg={key}={value}" for key, value in build_args.items()]
        self.run("build", "--layers", "--pull=never", *args, "-t", tag, str(context), timeout=timeout)

    def ensure_network(self, name: str) -> str:
        """The bridge network NAME, made on a free /24 of NETWORK_POOL unless it exists already.

        Not on podman's default 10.88.0.0/16: nested podman inside a container makes its own podman0 bridge
        with 10.88.0.1/16, and if the outer container sat on that subnet too, the inner bridge would take its
        gateway's address and nothing the nested containers need (DNS, the mirror) would be reachable."""
        if self.run("network", "exists", name, check=False).returncode != 0:
            subnet = free_subnet(parse_routes(Path("/proc/net/route").read_text()))
            self.run("network", "create", "--driver", "bridge", "--subnet", str(subnet), name)
        return name


def configure(
    root: Path = DEFAULT_ROOT,
    *,
    nofile: int = 16384,
    nproc: int = 4096,
    pids_limit: int | None = None,
) -> Podman:
    """Write the configuration podman needs on these hosts and return a handle that uses it.

    runc, because crun fails on hybrid cgroup hierarchies; ulimits within the caller's hard limits, because
    podman's defaults exceed them; cgroupfs and file events, because there is no systemd. ``pids_limit`` 0
    lifts podman's pids limit (None keeps it). Networks stay in podman's one network configuration directory
    for every root: podman names each bridge podmanN free among the networks it knows, so a network defined
    elsewhere would share a bridge with another and lose its addresses when that one is torn down.
    """
    runroot = Path("/run") / f"punchclock-podman-{hashlib.sha256(str(root).encode()).hexdigest()[:10]}"
    podman = Podman(root)
    podman.config_dir.mkdir(parents=True, exist_ok=True)
    (podman.config_dir / "containers.conf").write_text(
        containers_conf(
            runroot,
            nofile=_limit(resource.RLIMIT_NOFILE, nofile),
            nproc=_limit(resource.RLIMIT_NPROC, nproc),
            pids_limit=pids_limit,
        )
    )
    (podman.config_dir / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root}/storage"\nrunroot = "{runroot}/storage"\n'
    )
    return podman


def containers_conf(runroot: Path, *, nofile: int, nproc: int, pids_limit: int | None = None) -> str:
    """containers.conf's text: runc, cgroupfs, file events, k8s-file logs and these limits."""
    pids = f"pids_limit = {pids_limit}\n" if pids_limit is not None else ""
    return (
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        f"{pids}"
        'log_driver = "k8s-file"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'tmp_dir = "{runroot}/libpod"\n'
    )


def _limit(kind: int, wanted: int) -> int:
    hard = resource.getrlimit(kind)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def parse_routes(table: str) -> list[ipaddress.IPv4Network]:
    """The networks in /proc/net/route's TABLE (little-endian hex), the default route left out."""
    routes = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        dest, mask = (ipaddress.IPv4Address(bytes.fromhex(fields[i])[::-1]) for i in (1, 7))
        if int(mask):
            routes.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    return routes


def free_subnet(
    routes: Iterable[ipaddress.IPv4Network], pool: ipaddress.IPv4Network = NETWORK_POOL, first: int = 77
) -> ipaddress.IPv4Network:
    """The first /24 of POOL, from its FIRST-th on, that overlaps none of ROUTES."""
    taken = list(routes)
    for subnet in itertools.islice(pool.subnets(new_prefix=24), first, None):
        if not any(subnet.overlaps(route) for route in taken):
            return subnet
    raise RuntimeError(f"no /24 of {pool} from the {first}th on is free of the host's routes")


def debian_sources() -> list[tuple[Path, str]]:
    """The host's apt sources that point at Debian (sources.list and sources.list.d), as (path, text)."""
    found: list[tuple[Path, str]] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file() and (path.suffix in (".list", ".sources") or path.name == "sources.list"):
            text = path.read_text()
            if re.search(r"^\s*(?:URIs:|deb\s).*/debian(?:-security)?/?\s", text + "\n", flags=re.MULTILINE):
                found.append((path, text))
    return found


def apt_mirror() -> str:
    """The Debian mirror apt is configured with (deb822 sources first, then the one-line ones)."""
    for _path, text in sorted(debian_sources(), key=lambda item: item[0].suffix != ".sources"):
        for uri in re.findall(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, flags=re.MULTILINE):
            if uri.rstrip("/").endswith("/debian"):
                return str(uri)
    return "http://deb.debian.org/debian"


def host_cas() -> list[Path]:
    """The host's extra CA certificates (what update-ca-certificates would add to the bundle), by name."""
    return sorted(HOST_CA_DIR.glob("*.crt"))


def copy_host_cas(target: Path) -> None:
    """Copy the host's extra CA certificates into TARGET (made if missing), as a build context or rootfs wants."""
    target.mkdir(parents=True, exist_ok=True)
    for cert in host_cas():
        shutil.copy(cert, target / cert.name)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_layer_image(podman: Podman, name: str, layer: str) -> str:
    """Return ``name``, building it first unless it is cached: the Containerfile ``layer`` (with ``{rootfs}``
    for the debootstrap rootfs image) over a context holding the host's CA certificates in ``ca/``."""
    with locked(podman.root / f"{name.rsplit('/', 1)[-1].replace(':', '-')}.lock"):
        ensure_rootfs_image(podman, ROOTFS_IMAGE)
        if not podman.has_image(name):
            with tempfile.TemporaryDirectory(prefix="punchclock-image-") as tmp:
                context = Path(tmp)
                copy_host_cas(context / "ca")
                (context / "Containerfile").write_text(layer.format(rootfs=ROOTFS_IMAGE))
                podman.build(context, name, {})
    return name


def ensure_base_image(podman: Podman) -> str:
    """Return the local Python base image's name, making it first if it is not cached yet."""
    return ensure_layer_image(podman, BASE_IMAGE, PYTHON_LAYER)


def ensure_rootfs_image(
    podman: Podman, name: str, prepare: Callable[[Path], None] | None = None, rebuild: bool = False
) -> bool:
    """Make image NAME from ``debootstrap --variant=minbase bookworm`` (apt's mirror, no downloaded .debs),
    changed by PREPARE(rootfs) before the import, unless it is cached (or REBUILD); True when it was made."""
    with locked(podman.root / "rootfs-image.lock"):
        if podman.has_image(name) and not rebuild:
            return False
        with tempfile.TemporaryDirectory(prefix="rootfs-build-", dir=podman.root, ignore_cleanup_errors=True) as tmp:
            rootfs = Path(tmp) / "rootfs"
            debootstrap = ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), apt_mirror()]
            strap = subprocess.run(debootstrap, capture_output=True, text=True, timeout=1200, check=False)
            if strap.returncode != 0:
                raise RuntimeError(f"debootstrap exited {strap.returncode}:\n{strap.stdout[-4000:]}{strap.stderr}")
            if prepare is not None:
                prepare(rootfs)
            _import(podman, rootfs, name)
    return True


def _import(podman: Podman, rootfs: Path, name: str) -> None:
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--numeric-owner", "--exclude=./var/cache/apt/archives/*.deb", "-c", "."],
        stdout=subprocess.PIPE,
    )
    imported = subprocess.run(
        ["podman", "import", "-", name], stdin=tar.stdout, env=podman.env(), capture_output=True, timeout=600
    )
    if tar.stdout is not None:
        tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise RuntimeError(f"podman import failed: {imported.stderr.decode()}")


def build_app_image(podman: Podman, tag: str) -> None:
    """Build the repository's Dockerfile on the local base image, then drop superseded builds older than a
    day so the cache does not grow without bound."""
    build_args = {"BASE_IMAGE": ensure_base_image(podman), **_version_args()}
    podman.build(REPO, tag, build_args)
    podman.run("image", "prune", "--force", "--filter", "until=24h", check=False)


def _version_args() -> dict[str, str]:
    """VERSION from pyproject.toml and REVISION from git, for the image's OCI labels."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    return {"VERSION": version, "REVISION": git.stdout.strip() or "unknown"}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m punchclock_tools.podman", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("base-image", help="make the local Python base image unless it is cached")
    image = sub.add_parser("image", help="build the Dockerfile on the local base image")
    image.add_argument("tag")
    sub.add_parser("env", help="print the shell exports that make podman use this storage")
    args = parser.parse_args(argv)
    podman = configure()
    if args.command == "base-image":
        print(ensure_base_image(podman))
    elif args.command == "env":
        for export in podman.exports():
            print(f"export {export}")
    else:
        build_app_image(podman, args.tag)
        print(args.tag)


if __name__ == "__main__":
    main()
