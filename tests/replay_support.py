"""What the replay tests share: a Dovecot that writes rawlogs, and a recording TCP relay.

``RawlogDovecot`` is ``scenarios.peers.dovecot.DovecotServer`` with Dovecot's own traffic
logging on: the login process (``imap-login -R``, greeting to LOGIN) and the post-login process
(``rawlog_dir``) each write ``.in``/``.out`` pairs — a real peer's bytes to import and replay.

``RecordingRelay`` sits between a client and a server on 127.0.0.1 and writes each connection as
a transcript (plaintext only), for tests that need a recording before ``--record`` exists.
"""

from __future__ import annotations

import os
import pwd
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from scenarios.peers.dovecot import MAIL_USER, DovecotServer
from transcripts import format as fmt


class RawlogDovecot(DovecotServer):
    @property
    def rawlog_dirs(self) -> list[Path]:
        """Where the login process and the post-login processes write their pairs."""
        return [self.directory / "run" / "login" / "rawlogs", self.directory / "rawlog"]

    def _config(self) -> str:
        return super()._config() + (
            f"protocol imap {{\n  rawlog_dir = {self.directory}/rawlog\n}}\n"
            f"protocol pop3 {{\n  rawlog_dir = {self.directory}/rawlog\n}}\n"
            "service imap-login {\n  executable = imap-login -R rawlogs\n}\n"
            "service pop3-login {\n  executable = pop3-login -R rawlogs\n}\n"
        )

    def _prepare_dir(self) -> None:
        super()._prepare_dir()
        post, login = self.rawlog_dirs[1], self.rawlog_dirs[0]
        post.mkdir()
        mail = pwd.getpwnam(MAIL_USER)
        os.chown(post, mail.pw_uid, mail.pw_gid)  # the post-login process runs as the mail user
        login.mkdir(parents=True)
        null = pwd.getpwnam("dovenull")  # the login processes run as dovenull
        os.chown(login, null.pw_uid, null.pw_gid)
        login.chmod(0o700)


class RecordingRelay:
    """Accepts on 127.0.0.1 (port 0), forwards to ``target``, writes ``DIR/NNN-label.jsonl`` per
    connection with the bytes and times each side sent and who closed."""

    def __init__(self, target: tuple[str, int], directory: Path, *, protocol: str = "imap", label: str = "source"):
        self.target, self.directory, self.protocol, self.label = target, directory, protocol, label
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.paths: list[Path] = []
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []  # clients still connected (kept-alive HTTP ...)
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            path = self.directory / f"{len(self.paths) + 1:03d}-{self.label}{fmt.SUFFIX}"
            self.paths.append(path)
            self._sockets.append(client)
            thread = threading.Thread(target=self._relay, args=(client, path), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, client: socket.socket, path: Path) -> None:
        server = socket.create_connection(self.target)
        header = fmt.Header(fmt.Protocol(self.protocol), f"{self.target[0]}:{self.target[1]}",
                            datetime.now(timezone.utc), label=self.label, recorded_by="tests.replay_support")
        start = time.monotonic()
        lock = threading.Lock()
        writer = fmt.TranscriptWriter(path, header)

        def pump(src: socket.socket, dst: socket.socket, sender: fmt.Sender) -> None:
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                with lock:
                    if data:
                        writer.add(fmt.Chunk(time.monotonic() - start, sender, data))
                    else:
                        writer.add(fmt.Mark(time.monotonic() - start, "close", sender.value))
                if not data:
                    for sock in (dst, src):
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    return
                try:
                    dst.sendall(data)
                except OSError:
                    return

        other = threading.Thread(target=pump, args=(server, client, fmt.Sender.SERVER), daemon=True)
        other.start()
        pump(client, server, fmt.Sender.CLIENT)
        other.join(10)
        writer.close()
        client.close()
        server.close()

    def close(self) -> None:
        """Stop accepting, end the connections still open (as if their client left), wait for the files."""
        self._stopped = True
        self._listener.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone
        for thread in self._threads:
            thread.join(10)
