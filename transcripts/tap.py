"""Recording a client's connections as transcripts: the plaintext each side sent, as it passed.

Three pieces, from the file up:

- ``SessionTap`` — one connection's transcript: each chunk is redacted (``transcripts.redact``)
  and written as one flushed line, so a killed run keeps everything up to the kill. Marks:
  ``starttls``, ``close`` (by ``client`` or ``server``: whoever closed first).
- ``TappedSocket`` — a socket proxy that tells its tap what ``sendall``/``send`` sent and what
  ``recv``/``recv_into`` (and so ``makefile``'s reader) received. Everything else is the real
  socket's. Tapping above TLS is what makes the bytes plaintext.
- ``tapped(cls, open_session)`` — a subclass of a protocol library's client class (imaplib,
  poplib, smtplib, http.client/urllib3 connections: all keep their socket in ``self.sock``)
  whose ``sock`` attribute wraps every socket assigned to it. A socket replacing one that
  already carried bytes is a STARTTLS upgrade (``Mark("starttls")``, same file); a TLS socket
  replacing a silent one is implicit TLS (urllib3 assigns the TCP socket, then its TLS wrap).

``Recorder`` numbers the sessions of a run in connect order and names their files
``<NNN>-<label>-<protocol>-<host>_<port>.jsonl``.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from transcripts.format import SUFFIX, Chunk, Header, Mark, Protocol, Sender, TranscriptWriter
from transcripts.redact import Redactor

HEADER_ROOM = 48  # room for the header to grow in place: redaction counts, tls learnt late


class SessionTap:
    """One connection's transcript, written as it happens. Thread-safe (a pool may close a
    connection from another thread than the one that used it).

    Recording never changes the session it watches: a failure to write (a full disk) or to
    redact ends the recording of this session — nothing unredacted is written — and is kept in
    ``failed`` for the recorder to report, while the connection carries on.
    """

    def __init__(self, path: Path, header: Header, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.header = header
        self._redactor = Redactor(header.protocol)
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._writer = TranscriptWriter(path, header, header_room=HEADER_ROOM)
        self.path = self._writer.path
        self.carried = 0  # bytes recorded so far (both sides)
        self.close_mark: str | None = None  # who closed first
        self.finished = False
        self.failed: str | None = None  # why recording stopped early

    def _chunk(self, sender: Sender, data: bytes) -> None:
        with self._lock:
            if self.finished or not data:
                return
            try:
                before = self._redactor.count
                masked = self._redactor.feed(sender, data)
                self.carried += len(data)
                self._writer.add(Chunk(self._clock() - self._start, sender, masked))
                if self._redactor.count != before:
                    self._update(redacted=self._redactor.count)
            except Exception as exc:  # see the class docstring: the session must not notice
                self._give_up(exc)

    def client(self, data: bytes) -> None:
        self._chunk(Sender.CLIENT, data)

    def server(self, data: bytes) -> None:
        self._chunk(Sender.SERVER, data)

    def mark(self, kind: str, detail: str = "") -> None:
        with self._lock:
            if not self.finished:
                try:
                    self._writer.add(Mark(self._clock() - self._start, kind, detail))
                except OSError as exc:
                    self._give_up(exc)

    def tls_started(self) -> None:
        """TLS from here on: implicit when nothing travelled yet, else a STARTTLS upgrade."""
        if self.carried:
            self.mark("starttls")
        with self._lock:
            if not self.finished:
                try:
                    self._update(tls="starttls" if self.carried else "implicit")
                except OSError as exc:
                    self._give_up(exc)

    def closed_by(self, by: str) -> None:
        """The connection ended (``client`` closed it, or the ``server``'s EOF): marked once."""
        if self.close_mark is None:
            self.close_mark = by
            self.mark("close", by)

    def finish(self) -> None:
        with self._lock:
            self.finished = True
            try:
                self._writer.close()
            except OSError as exc:  # the last buffered bytes could not be written
                self.failed = self.failed or f"{type(exc).__name__}: {exc}"

    def _give_up(self, exc: Exception) -> None:
        self.failed = f"{type(exc).__name__}: {exc}"
        self.finished = True
        try:
            self._writer.close()
        except OSError:
            pass

    def _update(self, **changes) -> None:
        self.header = replace(self.header, **changes)
        self._writer.rewrite_header(self.header)


class TappedSocket:
    """A connected socket whose traffic is recorded; anything not overridden is the real socket's."""

    def __init__(self, sock, tap: SessionTap) -> None:
        self._sock = sock
        self.tap = tap
        self.closed_here = False  # close() was called (a later socket is a new connection)
        self._io_refs = 0  # socket.makefile's bookkeeping (it runs with this object as self)

    def sendall(self, data, flags: int = 0) -> None:
        self._sock.sendall(data, flags)
        self.tap.client(bytes(data))

    def send(self, data, flags: int = 0) -> int:
        sent = self._sock.send(data, flags)
        self.tap.client(bytes(memoryview(data)[:sent]))
        return sent

    def recv(self, size: int, flags: int = 0) -> bytes:
        data = self._sock.recv(size, flags)
        self._received(data, flags)
        return data

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        count = self._sock.recv_into(buffer, nbytes, flags)
        self._received(bytes(memoryview(buffer)[:count]), flags)
        return count

    def _received(self, data: bytes, flags: int) -> None:
        if flags & socket.MSG_PEEK:
            return
        if data:
            self.tap.server(data)
        else:
            self.tap.closed_by("server")

    makefile = socket.socket.makefile  # a reader over this object's recv_into, so reads are seen

    def _decref_socketios(self) -> None:
        self._io_refs = max(0, self._io_refs - 1)

    def close(self) -> None:
        self.closed_here = True
        self.tap.closed_by("client")
        self.tap.finish()
        self._sock.close()

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class _TapSock:
    """The ``sock`` attribute of a tapped client class (see ``tapped``)."""

    _open_session: Callable[[object], SessionTap | None]

    @property
    def sock(self):
        return self.__dict__.get("_tapped_sock")

    @sock.setter
    def sock(self, value) -> None:
        current = self.__dict__.get("_tapped_sock")
        if value is not None and not isinstance(value, TappedSocket):
            if isinstance(current, TappedSocket) and not current.closed_here:
                tap = current.tap  # the same connection: a TLS wrap of it
            elif current is not None and not isinstance(current, TappedSocket) and isinstance(value, ssl.SSLSocket):
                tap = None  # the TLS wrap of a connection left unrecorded
            else:
                tap = type(self)._open_session(self)
            if tap is not None:
                if isinstance(value, ssl.SSLSocket):
                    tap.tls_started()  # implicit on a fresh connection, a STARTTLS upgrade on a used one
                value = TappedSocket(value, tap)
        self.__dict__["_tapped_sock"] = value


def tapped(cls: type, open_session: Callable[[object], SessionTap | None]) -> type:
    """``cls`` (a client class keeping its socket in ``self.sock``) with recorded sockets.

    ``open_session(client)`` is asked when a new connection's socket is assigned and returns the
    tap for it, or None to leave this connection unrecorded.
    """
    return type(f"Tapped{cls.__name__}", (_TapSock, cls), {"_open_session": staticmethod(open_session)})


_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


class Recorder:
    """A run's recording directory: sessions numbered in connect order, one file each."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._taps: list[SessionTap] = []
        self._unrecorded: list[str] = []  # connections whose file could not even be created

    def open(self, *, label: str, protocol: Protocol | str, host: str, port: int, tls: str = "none") -> SessionTap:
        protocol = Protocol(protocol)
        with self._lock:
            number = len(self._taps) + 1
            name = f"{number:03d}-{_UNSAFE.sub('_', label)}-{protocol.value}-{_UNSAFE.sub('_', host)}_{port}{SUFFIX}"
            header = Header(protocol=protocol, server=f"{host}:{port}", started=datetime.now(timezone.utc),
                            tls=tls, label=label)
            tap = SessionTap(self.directory / name, header)
            self._taps.append(tap)
        return tap

    def session_opener(self, *, label: str, protocol: Protocol | str, host: str, port: int
                       ) -> Callable[[object], SessionTap]:
        """For ``tapped``: each new connection of that client opens the next numbered session
        (None — the connection goes on unrecorded — when its file cannot be created)."""

        def open_session(_client) -> SessionTap | None:
            try:
                return self.open(label=label, protocol=protocol, host=host, port=port)
            except OSError as exc:
                with self._lock:
                    self._unrecorded.append(f"a {label} {Protocol(protocol).value} connection to {host}:{port}: "
                                            f"not recorded: {type(exc).__name__}: {exc}")
                return None

        return open_session

    def labelled(self, label: str) -> LabelledRecorder:
        return LabelledRecorder(self, label)

    @property
    def paths(self) -> list[Path]:
        with self._lock:
            return [tap.path for tap in self._taps]

    @property
    def failures(self) -> list[str]:
        """One sentence per session whose recording stopped early, naming its file and why."""
        with self._lock:
            stopped = [f"{tap.path.name}: recording stopped: {tap.failed}" for tap in self._taps if tap.failed]
            return self._unrecorded + stopped

    def close(self) -> None:
        """Close the files of connections the libraries never closed (the transcripts stay)."""
        with self._lock:
            taps = list(self._taps)
        for tap in taps:
            tap.finish()


class LabelledRecorder:
    """A recorder bound to one side of a run ("source", "destination", "pim"): what an engine
    endpoint carries, so every connection made for that side is recorded under its label."""

    def __init__(self, recorder: Recorder, label: str) -> None:
        self.recorder, self.label = recorder, label

    def opener(self, protocol: Protocol | str, host: str, port: int) -> Callable[[object], SessionTap]:
        return self.recorder.session_opener(label=self.label, protocol=protocol, host=host, port=port)

    def __repr__(self) -> str:
        return f"LabelledRecorder({str(self.recorder.directory)!r}, {self.label!r})"
