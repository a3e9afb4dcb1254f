"""The bare image: ``debootstrap --variant=minbase bookworm`` and only what reaching the mirrors needs.

No python3, no make, no git, not even ca-certificates. Added to the root file system: the host's Debian apt
sources and apt proxy settings, and the host's extra CA certificates in /usr/local/share/ca-certificates (they
only become a bundle once the ca-certificates package is installed, as on a real machine). The tag changes
whenever any of these does, so a changed host makes a new image
(``punchclock_tools.podman.ensure_rootfs_image(podman, image_name(), prepare=add_network_settings)``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from punchclock_tools.podman import (
    HOST_CA_DIR,
    apt_mirror,
    copy_host_cas,
    debian_sources,
    host_cas,
)

IMAGE_REPO = "localhost/punchclock-fresh/debian"


def apt_proxy_conf() -> str:
    """apt proxy settings of the host (Acquire::http::Proxy and friends), if any."""
    lines: list[str] = []
    for path in sorted(Path("/etc/apt/apt.conf.d").glob("*")):
        if path.is_file():
            lines += [line for line in path.read_text().splitlines() if re.search(r"Acquire::\w+::Proxy", line)]
    return "\n".join(lines) + ("\n" if lines else "")


def image_name() -> str:
    """A tag that changes whenever what goes into the image changes (mirror, sources, CAs, apt proxy)."""
    digest = hashlib.sha256(apt_mirror().encode())
    for _path, text in debian_sources():
        digest.update(text.encode())
    for cert in host_cas():
        digest.update(cert.name.encode() + cert.read_bytes())
    digest.update(apt_proxy_conf().encode())
    return f"{IMAGE_REPO}:bookworm-minbase-{digest.hexdigest()[:12]}"


def add_network_settings(rootfs: Path) -> None:
    """Only what reaching the mirrors needs: apt sources, apt proxy, the extra CA certificates (not a bundle)."""
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    for path, text in debian_sources():
        target = rootfs / "etc/apt/sources.list.d" / (path.name if path.name != "sources.list" else "host.list")
        target.write_text(text)
    if conf := apt_proxy_conf():
        (rootfs / "etc/apt/apt.conf.d/90fresh-proxy").write_text(conf)
    copy_host_cas(rootfs / HOST_CA_DIR.relative_to("/"))
    # A fresh machine has no package lists yet (downloaded .debs are left out of every rootfs image).
    for entry in (rootfs / "var/lib/apt/lists").glob("*"):
        if entry.is_file():
            entry.unlink()
