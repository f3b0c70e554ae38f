"""SmtpServer: the SMTP front on its own asyncio loop in a thread.

aiosmtpd runs on asyncio, not on the Twisted reactor, so each server gets a daemon thread with
its own event loop. Unlike aiosmtpd's ``Controller`` it binds port 0 and reports the real port
(tests run in parallel), waits for the listener with a timeout, re-raises a start-up error in the
caller, and on ``stop()`` closes every live connection, not just the listener.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from aiosmtpd.smtp import SMTP
from cryptography.hazmat.primitives import serialization

from simulators.profiles import Profile
from simulators.smtp.handler import SmtpHandler
from simulators.smtp.recording import RecordingSMTP
from simulators.store import Store, utcnow
from transcripts.tap import LabelledRecorder


class _NoLoginDataWarning(logging.Filter):
    """aiosmtpd logs a deprecation warning of its own on every successful AUTH; drop just that."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_NoLoginDataWarning())


class SmtpServerError(RuntimeError):
    """The SMTP server could not start or stop; the message says where and why."""


class SmtpServer:
    def __init__(
        self,
        store: Store,
        profile: Profile,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = utcnow,
        recorder_of: Callable[[], LabelledRecorder | None] = lambda: None,
    ):
        self.host = host
        self.port = port  # the real port once started
        self.handler = SmtpHandler(store, profile, clock=clock)
        self._tls_context = tls_context
        self._recorder_of = recorder_of  # asked at each new connection: record it, or not (None)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._protocols: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 5.0) -> SmtpServer:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name=f"quirkmail-smtp-{self.host}:{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            self.stop()
            raise SmtpServerError(f"SMTP server on {self.host}:{self.port} did not start within {timeout} s")
        if failure:
            self._thread.join(timeout)
            raise SmtpServerError(f"cannot listen for SMTP on {self.host}:{self.port}: {failure[0]}") from failure[0]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            raise SmtpServerError(f"SMTP server on {self.host}:{self.port} did not stop within {timeout} s")

    # In the server's thread -------------------------------------------------------------------

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            self._listener = loop.run_until_complete(
                loop.create_server(self._protocol, host=self.host, port=self.port)
            )
            self.port = self._listener.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of start()
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _protocol(self) -> SMTP:
        settings = self.handler.settings
        protocol = RecordingSMTP(
            self.handler,
            hostname=settings.hostname,
            ident=settings.banner,
            data_size_limit=None,  # the handler enforces SIZE, in the profile's words
            enable_SMTPUTF8=True,
            decode_data=False,  # bytes exactly as sent; also what makes aiosmtpd offer 8BITMIME
            tls_context=self._tls_context,
            auth_required=settings.require_auth,
            auth_require_tls=settings.auth_require_tls,
            auth_exclude_mechanism=self.handler.excluded_mechanisms(),
            authenticator=self.handler.authenticator,
            loop=self._loop,
            recorder_of=self._recorder_of,
        )
        self._protocols.add(protocol)
        return protocol

    async def _shutdown(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for protocol in list(self._protocols):
            if protocol.transport is not None:
                protocol.transport.close()
        await asyncio.sleep(0)  # let connection_lost run and cancel the client tasks
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def server_tls_context(key, cert) -> ssl.SSLContext:
    """A server-side SSLContext (TLS 1.2+) for a cryptography key and certificate, such as the
    simulator world's self-signed pair (clients trust it through ``SimulatorWorld.cafile``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="quirkmail-smtp-tls-") as tmp:
        # load_cert_chain reads files only; the key lives on disk for this call alone.
        certfile, keyfile = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyfile.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context.load_cert_chain(certfile, keyfile)
    return context
