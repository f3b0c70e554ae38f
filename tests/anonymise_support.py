"""A recording plaintext TCP proxy: the real bytes of a client ↔ simulator session, as a Transcript.

Sits between any client and a simulator on 127.0.0.1 (port 0), forwards both ways, and keeps each
recv() as a chunk, as a recorder would. ``transcript()`` after the client is done.
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
        self.events: list[Chunk] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        self.listener.settimeout(10)
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        for src, dst, sender in ((client, server, Sender.CLIENT), (server, client, Sender.SERVER)):
            t = threading.Thread(target=self._pump, args=(src, dst, sender), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, sender: Sender) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    self.events.append(Chunk(time.monotonic() - self.started, sender, data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def transcript(self) -> Transcript:
        self._accept.join(10)
        for t in self._threads:
            t.join(10)
        self.listener.close()
        header = Header(self.protocol, f"127.0.0.1:{self.upstream_port}", datetime.now(timezone.utc),
                        label="test")
        return Transcript(header, list(self.events))
