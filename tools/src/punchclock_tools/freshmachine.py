"""Prove that a genuinely fresh Debian 12 machine passes ``make run`` and ``make test``.

A bare ``debootstrap --variant=minbase bookworm`` root file system (no python3, no make, no git, not even
ca-certificates) is made once from the mirror apt already uses and imported into a PRIVATE podman storage
under /var/cache/punchclock/fresh (punchclock_tools.fresh.image). Only what is needed to reach the mirrors is
added: the host's Debian apt sources, the host's extra CA certificates in /usr/local/share/ca-certificates
(they only become a bundle when the ca-certificates package is installed, as on a real machine), and the
host's proxy / CA environment variables. The repository's committed HEAD is cloned (``git clone --depth 1``)
and mounted as /work/main, ../shared as /work/shared (read-only, as CI has it), in a privileged container
with an empty PUNCHCLOCK_PODMAN_ROOT (punchclock_tools.fresh.machine). The container runs under ``--init``,
with open files and processes capped within this shell's hard limits and no pids limit, on a bridge network
of its own whose subnet is not podman's 10.88.0.0/16 (nested podman takes that one). Inside, only ``make`` is
installed; then ``make run`` must answer ``POST /app`` with 201, and ``make test`` runs to completion;
pytest's closing line is printed. Logs stay under /var/cache/punchclock/fresh/logs/<container>/.

    make test-fresh
    python -m punchclock_tools.freshmachine --repo . [--keep]
    python -m punchclock_tools.freshmachine --repo . --pytest-args "tests/deploy -x"   # a subset
    ... --extra-packages "python3 python3-venv"   # try a fix without editing the repository

Without the venv, ``PYTHONPATH=tools/src python3 -m punchclock_tools.freshmachine`` works too (stdlib only).
Exit code: make test's, or 1 when an earlier step failed. Needs on the host: podman, runc, debootstrap, git,
and catatonit (for ``--init``); run as root.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from punchclock_tools.fresh.image import add_network_settings, image_name
from punchclock_tools.fresh.machine import FRESH_ROOT, Run, log
from punchclock_tools.podman import apt_mirror, configure, ensure_rootfs_image

NETWORK = "punchclock-fresh"
# make test starts clusters of servers inside the container: no pids limit, and open files and processes up to
# these (within the caller's hard limits; runc cannot set nproc above 32768 here even under a higher one, EPERM).
NOFILE = 65536
NPROC = 32768


@contextlib.contextmanager
def terminated_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so the container and temp dirs are removed."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m punchclock_tools.freshmachine", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="git repository whose HEAD is tested")
    parser.add_argument("--keep", action="store_true", help="keep the container and its work dir for debugging")
    parser.add_argument("--rebuild", action="store_true", help="make the minbase image again")
    parser.add_argument(
        "--network", default="", help=f"podman --network for the container (default: {NETWORK}, private)"
    )
    parser.add_argument("--extra-packages", default="", help="Debian packages installed beside make (experiments)")
    parser.add_argument("--pytest-args", default="", help="PYTEST_ARGS for make test (a subset)")
    parser.add_argument("--run-timeout", type=float, default=900, help="seconds for make run to answer 201")
    parser.add_argument("--test-timeout", type=float, default=3 * 3600, help="seconds for make test")
    parser.add_argument("--skip-test", action="store_true", help="stop after make run")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: the container is privileged and rootful")
    missing = [tool for tool in ("podman", "runc", "debootstrap", "git", "tar") if shutil.which(tool) is None]
    if missing:
        parser.error(f"missing on the host: {' '.join(missing)} (apt-get install podman runc debootstrap git)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    podman = configure(FRESH_ROOT, nofile=NOFILE, nproc=NPROC, pids_limit=0)
    started = time.monotonic()
    run = Run(
        podman=podman,
        repo=args.repo,
        keep=args.keep,
        network=args.network,
        extra_packages=args.extra_packages.split(),
        pytest_args=args.pytest_args,
        run_timeout=args.run_timeout,
        test_timeout=args.test_timeout,
    )
    rc = 1
    with terminated_as_exit():
        try:
            image = image_name()
            if args.rebuild or not podman.has_image(image):
                log(f"making {image}: debootstrap --variant=minbase bookworm from {apt_mirror()}")
            if ensure_rootfs_image(podman, image, prepare=add_network_settings, rebuild=args.rebuild):
                log(f"image made in {time.monotonic() - started:.0f}s")
            else:
                log(f"image {image} is cached")
            run.network = run.network or podman.ensure_network(NETWORK)
            run.start(image)
            if run.install_make():
                ran = run.make_run()
                if args.skip_test:
                    rc = 0 if ran else 1
                else:
                    rc = run.make_test()
                    if not ran:
                        rc = rc or 1
        finally:
            run.cleanup()
            if not args.network:
                # Without --force: a concurrent fresh run still on the network keeps it.
                podman.run("network", "rm", NETWORK, check=False, timeout=120)
    log(f"done in {time.monotonic() - started:.0f}s, exit {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
