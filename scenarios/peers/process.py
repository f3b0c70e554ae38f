"""Process plumbing shared by the real-peer harnesses: free loopback ports, a start that retries
when it lost the race for a port, and a stop that cannot hang.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 just now: bound to port 0 together, then released."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_on_free_ports(
    attempt: Callable[[], None], abandon: Callable[[], None], log_tail: Callable[[], str], error: type[Exception]
) -> None:
    """Run ``attempt`` (pick ports, write config, launch, wait until ready) until it succeeds.

    A free port is found by binding port 0 and releasing it, so another process may take it before
    the peer binds it: an attempt that failed with ``error`` and "Address already in use" in the
    peer's log is ``abandon``-ed and retried; any other failure is raised at once.
    """
    for n in range(PORT_ATTEMPTS):
        try:
            attempt()
            return
        except error:
            abandon()
            if n == PORT_ATTEMPTS - 1 or "Address already in use" not in log_tail():
                raise


def terminate(process: subprocess.Popen | None, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, wait, then SIGKILL the process group (it was started with start_new_session)."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout)


class PeerProcess:
    """Base of a harness that runs one peer process in a temporary directory of its own.

    Subclasses implement ``start()`` (make ``self._dir``, launch ``self._process``) and name their
    log files in ``LOGS``; this class gives the context manager, ``stop()`` and the error text.
    """

    LOGS: tuple[str, ...] = ()
    Error: type[Exception] = RuntimeError

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._process: subprocess.Popen | None = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL of its group) and remove the directory."""
        self._terminate()
        self._remove_dir()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise self.Error(f"{type(self).__name__} is not started")
        return self._dir

    def _terminate(self) -> None:
        process, self._process = self._process, None
        terminate(process)

    def _remove_dir(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _log_tail(self, lines: int = 20) -> str:
        texts: list[str] = []
        for name in self.LOGS:
            path = self.directory / name
            if path.exists():
                texts.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
        return "\n".join(texts[-lines:]) or f"({', '.join(self.LOGS)} empty)"


_shared: dict[type, PeerProcess] = {}
_shared_lock = threading.Lock()


def shared(cls: type[PeerProcess]) -> PeerProcess:
    """The process's one started instance of a peer harness (a Dovecot, a Radicale), made on first
    use and stopped at exit. Scenarios add a user each, so it is never reset between them."""
    with _shared_lock:
        if cls not in _shared:
            server = cls()
            server.start()
            atexit.register(server.stop)
            _shared[cls] = server
        return _shared[cls]
