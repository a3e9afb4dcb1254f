"""Podman for the deployment tests: a private configuration and storage, and a locally made base image.

No registry is reachable from the test machines, so the Dockerfile's public Python base image is replaced by
one made here: ``debootstrap --variant=minbase bookworm`` from the mirror apt already uses, imported into
podman, with Debian's python3 and the host's extra CA certificates added on top. It is cached in podman's
storage under ``PUNCHCLOCK_PODMAN_ROOT`` (default ``/var/cache/punchclock/podman``, outside any work tree), so
a fresh clone reuses it.

    python -m punchclock_tools.podman base-image      # make the base image unless it is cached
    python -m punchclock_tools.podman image TAG       # build the Dockerfile on top of it
    eval "$(python -m punchclock_tools.podman env)"   # point podman at that storage: podman run ... TAG
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import resource
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from punchclock_tools.paths import REPO

DEFAULT_ROOT = Path(os.environ.get("PUNCHCLOCK_PODMAN_ROOT", "/var/cache/punchclock/podman"))
ROOTFS_IMAGE = "localhost/punchclock-base/debian:bookworm"
BASE_IMAGE = "localhost/punchclock-base/python:3.11-bookworm"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")

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

    def has_image(self, name: str) -> bool:
        return self.run("image", "exists", name, check=False).returncode == 0

    def build(self, context: Path, tag: str, build_args: dict[str, str], timeout: float = 900) -> None:
        args = [f"--build-arg={key}={value}" for key, value in build_args.items()]
        self.run("build", "--layers", "--pull=never", *args, "-t", tag, str(context), timeout=timeout)


def configure(root: Path = DEFAULT_ROOT) -> Podman:
    """Write the configuration podman needs on these hosts and return a handle that uses it.

    runc, because crun fails on hybrid cgroup hierarchies; ulimits within the caller's hard limits, because
    podman's defaults exceed them; cgroupfs and file events, because there is no systemd.
    """
    runroot = Path("/run") / f"punchclock-podman-{hashlib.sha256(str(root).encode()).hexdigest()[:10]}"
    nofile = _limit(resource.RLIMIT_NOFILE, 16384)
    nproc = _limit(resource.RLIMIT_NPROC, 4096)
    podman = Podman(root)
    podman.config_dir.mkdir(parents=True, exist_ok=True)
    (podman.config_dir / "containers.conf").write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        'log_driver = "k8s-file"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'tmp_dir = "{runroot}/libpod"\n'
    )
    (podman.config_dir / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root}/storage"\nrunroot = "{runroot}/storage"\n'
    )
    return podman


def _limit(kind: int, wanted: int) -> int:
    hard = resource.getrlimit(kind)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def apt_mirror() -> str:
    """The Debian mirror apt is configured with (deb822 sources first, then sources.list)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in [*sources, Path("/etc/apt/sources.list")]:
        if not path.exists():
            continue
        text = path.read_text()
        for uri in re.findall(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, flags=re.MULTILINE):
            if uri.rstrip("/").endswith("/debian"):
                return str(uri)
    return "http://deb.debian.org/debian"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_base_image(podman: Podman) -> str:
    """Return the local Python base image's name, making it first if it is not cached yet."""
    with _locked(podman.root / "base-image.lock"):
        if not podman.has_image(ROOTFS_IMAGE):
            _import_rootfs(podman)
        if not podman.has_image(BASE_IMAGE):
            with tempfile.TemporaryDirectory(prefix="punchclock-base-") as tmp:
                context = Path(tmp)
                (context / "ca").mkdir()
                for cert in HOST_CA_DIR.glob("*.crt"):
                    shutil.copy(cert, context / "ca" / cert.name)
                (context / "Containerfile").write_text(PYTHON_LAYER.format(rootfs=ROOTFS_IMAGE))
                podman.build(context, BASE_IMAGE, {})
    return BASE_IMAGE


def _import_rootfs(podman: Podman) -> None:
    build_dir = podman.root / "rootfs-build"
    shutil.rmtree(build_dir, ignore_errors=True)
    rootfs = build_dir / "rootfs"
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), apt_mirror()],
            check=True,
            capture_output=True,
            timeout=900,
        )
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--exclude=./var/cache/apt/archives/*.deb", "-c", "."],
            stdout=subprocess.PIPE,
        )
        imported = subprocess.run(
            ["podman", "import", "-", ROOTFS_IMAGE], stdin=tar.stdout, env=podman.env(), capture_output=True
        )
        if tar.stdout is not None:
            tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise RuntimeError(f"podman import failed: {imported.stderr.decode()}")
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


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
        for name in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"):
            print(f"export {name}={podman.env()[name]}")
    else:
        build_app_image(podman, args.tag)
        print(args.tag)


if __name__ == "__main__":
    main()
