"""Is a published port really served? A real greeting read through it, not an open socket.

Docker's port proxy accepts a connection on the host even while nothing listens in the
container (and closes it at once), so readiness is the protocol's own first line: ``* OK`` for
IMAP, ``+OK`` for POP3, ``220`` for SMTP and LMTP, an ``HTTP/1.x`` status line for HTTP, EWS and DAV
(asked with a plain GET). ``judge`` is pure (bytes in, verdict out); ``probe`` and ``wait_ready`` do the I/O.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

_HTTP = (b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", b"HTTP/1.")
# A kind is the URL scheme of the service (migrator.urls), so it also names the printed endpoint:
# kind -> (bytes sent first, prefix the first line must have).
KINDS: dict[str, tuple[bytes, bytes]] = {
    "imap": (b"", b"* OK"),
    "pop3": (b"", b"+OK"),
    "smtp": (b"", b"220"),
    "lmtp": (b"", b"220"),
    "ews+http": _HTTP,
    "dav+http": _HTTP,
    "http": _HTTP,
}
MAX_LINE = 4096


def judge(kind: str, data: bytes, *, closed: bool = False) -> tuple[bool, str]:
    """(ready, why) for what a port sent so far; ``closed``: the peer closed after ``data``.

    Not ready and no reason yet ("") means: read more.
    """
    expected = KINDS[kind][1]
    line, newline, _ = data.partition(b"\n")
    if not newline and len(data) < MAX_LINE:
        if closed:
            return False, f"closed after {data[:80]!r}" if data else "closed before a greeting"
        return False, ""
    line = line.rstrip(b"\r")
    if line.startswith(expected):
        return True, line.decode("utf-8", "replace")
    return False, f"expected a line starting {expected.decode()!r}, got {line[:80]!r}"


def probe(kind: str, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
    """Connect, send the kind's request (if any) and judge the first line."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if KINDS[kind][0]:
                sock.sendall(KINDS[kind][0])
            data = b""
            while True:
                chunk = sock.recv(MAX_LINE)
                ready, why = judge(kind, data + chunk, closed=not chunk)
                data += chunk
                if ready or why:
                    return ready, why
    except OSError as exc:  # refused, reset, timed out
        return False, f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Target:
    service: str
    kind: str
    host: str
    port: int  # the published host port

    def __str__(self) -> str:
        return f"{self.kind} on {self.host}:{self.port} ({self.service})"


def wait_ready(
    targets: list[Target],
    timeout: float,
    *,
    alive: Callable[[str], str | None] = lambda service: None,
    probe_fn: Callable[[str, str, int], tuple[bool, str]] = probe,
    interval: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[Target, str]:
    """Probe every target until each gave its greeting; the greetings by target.

    ``alive(service)`` returns why a service can no longer become ready (its container exited),
    else None. Raises TimeoutError naming each target still not ready and its last answer, or
    RuntimeError(service, why) when ``alive`` says a service died.
    """
    deadline = clock() + timeout
    pending = {t: "not probed" for t in targets}
    greetings: dict[Target, str] = {}
    while True:
        for target in list(pending):
            ready, why = probe_fn(target.kind, target.host, target.port)
            if ready:
                greetings[target] = why
                del pending[target]
            else:
                pending[target] = why
        if not pending:
            return greetings
        for service in {t.service for t in pending}:
            dead = alive(service)
            if dead:
                raise RuntimeError(service, dead)
        if clock() >= deadline:
            raise TimeoutError("; ".join(f"{t}: {why}" for t, why in pending.items()))
        sleep(interval)
