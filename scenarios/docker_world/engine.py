"""A Docker engine to talk to: the one running, or one started here (``dockerd``) when none runs.

    client = ensure_engine()           # docker.DockerClient, pinged; EngineUnavailable (exit 3) if none
    client = connect()                 # never starts one

No registry is reachable on these machines and the machine's firewall is not ours to change, so
a started daemon gets ``--iptables=false``: published ports still work through Docker's userland
proxy on 127.0.0.1, containers simply have no way out. The storage driver is the daemon's choice
(overlay2 on ext4; whatever /var/lib/docker already holds); when the daemon cannot start with it,
it is started once more with ``vfs``, which works everywhere (and copies whole layers).
A started daemon keeps running after we exit (the next run reuses it and its images); it is
started in its own session, its output in ``DOCKERD_LOG``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from scenarios.docker_world.errors import EngineUnavailable

DEFAULT_SOCKET = "/var/run/docker.sock"
DOCKERD_FLAGS = ("--iptables=false",)
FALLBACK_DRIVER = "vfs"
START_TIMEOUT = 60.0
API_TIMEOUT = 120  # seconds for one API call: creating a container on a loaded 2-core machine takes a while
DOCKERD_LOG = Path(tempfile.gettempdir()) / "quirkmail-dockerd.log"
START_HINT = (
    "start one as root with `dockerd --iptables=false &` (Debian package docker.io), "
    "or let `python3 -m scenarios.docker_world engine` start it"
)


def socket_path(env: Mapping[str, str] = os.environ) -> str:
    """The engine's address: DOCKER_HOST when set (unix:// or tcp://), else the default socket."""
    host = env.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host else DEFAULT_SOCKET


def base_url(address: str) -> str:
    return address if "://" in address else f"unix://{address}"


def connect(address: str | None = None) -> "docker.DockerClient":  # noqa: F821 (docker is imported lazily)
    """A pinged client of the engine at ``address`` (default: socket_path())."""
    address = address or socket_path()
    try:
        import docker
        import docker.errors
    except ImportError:
        raise EngineUnavailable(address, "the Python package docker is not installed", "pip install 'docker>=7'")
    if "://" not in address and not os.path.exists(address):
        raise EngineUnavailable(address, "the socket does not exist", START_HINT)
    try:
        client = docker.DockerClient(base_url=base_url(address), timeout=API_TIMEOUT)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(address, _cause(exc), START_HINT) from None
    return client


def _cause(exc: Exception) -> str:
    text = str(exc)
    if "Permission denied" in text:
        return "permission denied (run as root or as a member of the docker group)"
    if "Connection refused" in text or "FileNotFoundError" in text:
        return "nothing answers on it (the daemon is not running)"
    return text.splitlines()[0] if text else type(exc).__name__


def ensure_engine(*, start: bool = True, timeout: float = START_TIMEOUT) -> "docker.DockerClient":  # noqa: F821
    """The running engine, or one started now (root, dockerd installed, default socket only)."""
    address = socket_path()
    try:
        return connect(address)
    except EngineUnavailable as first:
        if not start:
            raise
        why_not = start_refusal(address, is_root=os.geteuid() == 0, dockerd=shutil.which("dockerd"))
        if why_not:
            raise EngineUnavailable(address, f"{first.cause}, and none can be started here: {why_not}") from None
    failure = _start_dockerd(address, (), timeout)
    if failure and storage_driver_failure(failure):
        failure = _start_dockerd(address, (f"--storage-driver={FALLBACK_DRIVER}",), timeout)
    if failure:
        raise EngineUnavailable(address, f"dockerd did not start: {failure} (log: {DOCKERD_LOG})")
    return connect(address)


def start_refusal(address: str, *, is_root: bool, dockerd: str | None) -> str | None:
    """Why no daemon may be started for ``address``, or None (pure)."""
    if "://" in address or address != DEFAULT_SOCKET:
        return f"DOCKER_HOST names {address}, an engine that is not ours to start"
    if dockerd is None:
        return "dockerd is not installed (apt-get install docker.io)"
    if not is_root:
        return "starting dockerd needs root"
    return None


def _start_dockerd(address: str, extra: tuple[str, ...], timeout: float) -> str | None:
    """Launch dockerd and wait for its socket; None when it answers, else why it did not."""
    with open(DOCKERD_LOG, "ab") as log:
        process = subprocess.Popen(
            ["dockerd", *DOCKERD_FLAGS, *extra], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return last_error(_read_tail(DOCKERD_LOG)) or f"exited with status {process.returncode}"
        try:
            connect(address)
            return None
        except EngineUnavailable:
            time.sleep(0.3)
    process.terminate()
    return f"no answer on {address} within {timeout:.0f} s"


def _read_tail(path: Path, size: int = 8192) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - size))
        return f.read().decode("utf-8", "replace")


_LEVEL = re.compile(r'level=(?:fatal|error) msg="(?P<msg>(?:[^"\\]|\\.)*)"|^failed to start daemon: (?P<plain>.*)$', re.M)


def last_error(log: str) -> str | None:
    """The daemon log's last fatal or error message (pure)."""
    found = [m["msg"] or m["plain"] for m in _LEVEL.finditer(log)]
    return found[-1].replace('\\"', '"') if found else None


def storage_driver_failure(message: str) -> bool:
    """Whether dockerd gave up on its storage driver (then vfs is tried)."""
    lowered = message.lower()
    return any(word in lowered for word in ("storage-driver", "graphdriver", "overlay", "driver not supported"))
