"""The fresh machine: a privileged container of the bare image, on a clone of HEAD, and the steps inside it.

The repository's committed HEAD is cloned (``git clone --depth 1``) and mounted as /work/main, ../shared as
/work/shared (read-only, as CI has it); PUNCHCLOCK_PODMAN_ROOT is an empty directory of the run, so nested
podman starts with no cached image. Only the host's proxy and CA variables are passed in. Inside, only
``make`` is installed; then ``make run`` must answer ``POST /app`` with 201, and ``make test`` runs to
completion. Logs stay under /var/cache/punchclock/fresh/logs/<container>/.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from punchclock_tools.podman import Podman

FRESH_ROOT = Path("/var/cache/punchclock/fresh")  # the private podman storage and the logs
INNER_PODMAN_ROOT = "/var/cache/punchclock/podman"
LOG_MOUNT = "/fresh-logs"
# Environment variables that carry proxy or CA settings; copied from the host when set, nothing else is.
PASSED_ENV = re.compile(
    r"^(?:(?:http|https|ftp|no|all)_proxy|(?:HTTP|HTTPS|FTP|NO|ALL)_PROXY|SSL_CERT_FILE|SSL_CERT_DIR|"
    r"REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|PIP_CERT|NODE_EXTRA_CA_CERTS|GIT_SSL_CAINFO|UV_NATIVE_TLS)$"
)
CLOSING_LINE = re.compile(
    r"^=+ (.*\b(?:passed|failed|errors?|skipped|deselected|xfailed|xpassed|no tests ran)\b.* in [\d.]+s.*) =+$"
)
CATATONIT = ("/usr/libexec/podman/catatonit", "/usr/bin/catatonit")


def log(message: str) -> None:
    print(f"[fresh {time.strftime('%H:%M:%S')}] {message}", flush=True)


def passed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The container's environment: the proxy and CA variables of ENVIRON, an empty nested podman storage."""
    env = {key: value for key, value in environ.items() if PASSED_ENV.match(key)}
    return {**env, "PUNCHCLOCK_PODMAN_ROOT": INNER_PODMAN_ROOT, "DEBIAN_FRONTEND": "noninteractive"}


def closing_line(lines: Iterable[str]) -> str | None:
    """pytest's last summary line (``=== 3 passed, 1 skipped in 2.50s ===``) among LINES, stripped."""
    found = [line.strip() for line in lines if CLOSING_LINE.match(line.strip())]
    return found[-1] if found else None


@dataclass
class Run:
    """One fresh machine: its container (named for the run), work directory and logs."""

    podman: Podman
    repo: Path
    keep: bool
    network: str
    extra_packages: list[str]
    pytest_args: str
    run_timeout: float
    test_timeout: float
    name: str = field(default_factory=lambda: f"punchclock-fresh-{secrets.token_hex(4)}")
    work: Path = field(init=False)
    logs: Path = field(init=False)

    def __post_init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir="/var/tmp"))
        self.logs = FRESH_ROOT / "logs" / self.name
        self.logs.mkdir(parents=True, exist_ok=True)

    # ---- helpers

    def exec(self, script: str, timeout: float, log_name: str | None = None) -> int:
        """bash -c SCRIPT inside the container; output to logs/LOG_NAME (streamed) or to ours."""
        args = ["podman", "exec", self.name, "bash", "-c", script]
        out = (self.logs / log_name).open("ab") if log_name else None
        try:
            proc = subprocess.Popen(args, env=self.podman.env(), stdout=out, stderr=subprocess.STDOUT)
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                log(f"timed out after {timeout:.0f}s: {script}")
                return 124
        finally:
            if out is not None:
                out.close()

    def tail(self, log_name: str, lines: int = 40) -> None:
        path = self.logs / log_name
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            print("\n".join(f"    | {line}" for line in text), flush=True)

    # ---- steps

    def start(self, image: str) -> None:
        clone = self.work / "main"
        subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", f"file://{self.repo.resolve()}", str(clone)],
            check=True,
            timeout=300,
        )
        head = subprocess.run(["git", "-C", str(clone), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
        log(f"cloned HEAD {head.stdout.strip()}")
        inner_root = self.work / "podman-root"
        inner_lib = self.work / "containers"
        inner_root.mkdir()
        inner_lib.mkdir()
        mounts = [
            f"{clone}:/work/main",
            # Nested podman's overlay storage must not sit on the container's own overlay root file system.
            f"{inner_root}:{INNER_PODMAN_ROOT}",
            f"{inner_lib}:/var/lib/containers",
            f"{self.logs}:{LOG_MOUNT}",
        ]
        shared = self.repo.resolve().parent / "shared"
        if shared.is_dir():
            mounts.append(f"{shared}:/work/shared:ro")
        else:
            log(f"no {shared}: the CRD checks will be skipped")
        # --init (catatonit as PID 1) reaps the orphans make test's servers leave behind.
        init = ["--init"] if any(Path(path).exists() for path in CATATONIT) else []
        args = [
            "run", "--detach", "--privileged", "--name", self.name, *init,
            "--hostname", "fresh", f"--network={self.network}", "--shm-size=1g",
            *[arg for mount in mounts for arg in ("--volume", mount)],
            *[arg for key, value in sorted(passed_env(os.environ).items()) for arg in ("--env", f"{key}={value}")],
            "--workdir", "/work/main", image, "sleep", "infinity",
        ]  # fmt: skip
        self.podman.run(*args, timeout=120)
        log(f"container {self.name} started (logs in {self.logs})")

    def install_make(self) -> bool:
        apt = "apt-get -o DPkg::Lock::Timeout=600"
        script = f"set -e; {apt} update -qq; {apt} install -y -qq make"
        log("apt-get install make")
        if self.extra_packages:
            # Without Recommends, so that each package a target needs has to be named to count as found.
            log(f"apt-get install --no-install-recommends {' '.join(self.extra_packages)} (--extra-packages)")
            script += (
                f"; {apt} install -y -qq --no-install-recommends {' '.join(map(shlex.quote, self.extra_packages))}"
            )
        rc = self.exec(script, timeout=900, log_name="setup.log")
        if rc != 0:
            log(f"installing make failed ({rc})")
            self.tail("setup.log")
        return rc == 0

    def make_run(self) -> bool:
        """make run in the background until POST /app answers 201, then stop it."""
        started = time.monotonic()
        log("make run (background), waiting for POST /app -> 201")
        script = (
            f"rm -f {LOG_MOUNT}/run.rc; setsid bash -c 'echo $$ > {LOG_MOUNT}/run.pid; cd /work/main; "
            f"make run > {LOG_MOUNT}/run.log 2>&1; echo $? > {LOG_MOUNT}/run.rc' < /dev/null > /dev/null 2>&1 &"
        )
        self.exec(script, timeout=60)
        probe = (
            "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000 && printf \"POST /app HTTP/1.1\\r\\n"
            "Host: localhost\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n\" >&3 && head -n1 <&3'"
        )
        status = ""
        ok = False
        deadline = time.monotonic() + self.run_timeout
        while time.monotonic() < deadline:
            if (self.logs / "run.rc").exists():
                log(f"make run exited {(self.logs / 'run.rc').read_text().strip()} before answering")
                break
            proc = self.podman.run("exec", self.name, "bash", "-c", probe, check=False, timeout=30)
            status = proc.stdout.strip()
            if " 201" in status:
                ok = True
                break
            time.sleep(2)
        else:
            log(f"no 201 within {self.run_timeout:.0f}s (last answer: {status or 'none'})")
        if ok:
            log(f"make run answered '{status}' after {time.monotonic() - started:.0f}s")
        self.exec(
            # SIGTERM to the whole session (make, the server); the server drains, then the group is gone.
            f"pid=$(cat {LOG_MOUNT}/run.pid 2>/dev/null) || exit 0; kill -TERM -- -$pid 2>/dev/null; "
            "for i in $(seq 60); do kill -0 -- -$pid 2>/dev/null || exit 0; sleep 0.5; done; "
            "kill -KILL -- -$pid 2>/dev/null; exit 0",
            timeout=60,
        )
        if not ok:
            self.tail("run.log")
        return ok

    def make_test(self) -> int:
        started = time.monotonic()
        args = f" PYTEST_ARGS={shlex.quote(self.pytest_args)}" if self.pytest_args else ""
        log(f"make test{args} (log: {self.logs / 'test.log'})")
        rc = self.exec(f"cd /work/main && make test{args}", timeout=self.test_timeout, log_name="test.log")
        closing = closing_line((self.logs / "test.log").read_text(errors="replace").splitlines())
        log(f"make test exited {rc} after {time.monotonic() - started:.0f}s")
        print(closing or "(no pytest closing line)", flush=True)
        if rc != 0:
            self.tail("test.log", 60)
        return rc

    def cleanup(self) -> None:
        if self.keep:
            log(f"kept: {' '.join(self.podman.exports())} podman exec -it {self.name} bash")
            log(f"kept: work dir {self.work}; remove with: podman rm -f {self.name}; rm -rf {self.work}")
            return
        with contextlib.suppress(Exception):
            self.podman.run("rm", "--force", "--time", "5", self.name, check=False, timeout=120)
        shutil.rmtree(self.work, ignore_errors=True)
