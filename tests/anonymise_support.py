"""A recording plaintext TCP proxy: the real bytes of a client ↔ simulator session, as a Transcript.

Sits between any client and a simulator on 127.0.0.1 (port 0), forwards both ways, and keeps each
recv() as a chunk, as a recorder would. ``transcript()`` (``transcripts()``: one per connection) after the client is done.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timezone

from transcripts.format import Chunk, Header, Protocol, Sender, Transcript


class RecordingProxy:
    def __init__(self, upstream_port: int, protocol: Protocol) -> None:
        self.upstream_port, self.protocol = upstream_port, protocol
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.started = time.monotonic()
        self.connections: list[list[Chunk]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.05)  # polled, so that transcripts() can stop it at once
        while not self._stop.is_set():  # each connection is a session of its own (HTTP clients open several)
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            events: list[Chunk] = []
            self.connections.append(events)
            for src, dst, sender in ((client, server, Sender.CLIENT), (server, client, Sender.SERVER)):
                t = threading.Thread(target=self._pump, args=(src, dst, sender, events), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, sender: Sender, events: list[Chunk]) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    events.append(Chunk(time.monotonic() - self.started, sender, data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def transcripts(self) -> list[Transcript]:
        """One per connection, after the client closed them all."""
        self._stop.set()
        self._accept.join(10)
        self.listener.close()
        for t in self._threads:
            t.join(10)
        header = Header(self.protocol, f"127.0.0.1:{self.upstream_port}", datetime.now(timezone.utc), label="test")
        return [Transcript(header, list(events)) for events in self.connections]

    def transcript(self) -> Transcript:
        (only,) = self.transcripts()
        return only
