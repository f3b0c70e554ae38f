"""SimulatorWorld: one store and one profile served on 127.0.0.1 (port 0), from any thread.

    with SimulatorWorld(store, load_profile("generic")) as world:
        handle = world.start_imap()                     # STARTTLS offered
        tls = world.start_imap(implicit_tls=True)       # imaps
        pop = world.start_pop3()                        # STLS offered; implicit_tls=True for pop3s
        imapclient.IMAPClient(handle.host, handle.port, ssl=False)
        # world.cafile trusts the self-signed certificate of both

Servers run in the background reactor thread (``simulators.reactor``). ``stop()`` closes the
listeners and every live connection and waits until they are gone, so many worlds can come and
go in one process.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLContextFactory
from zope.interface import implementer

from simulators import reactor as bg
from simulators.ews.server import EwsSite
from simulators.imap.server import ImapServerFactory
from simulators.pop3.server import Pop3ServerFactory
from simulators.profiles import Profile
from simulators.recording import RecordingFactory
from simulators.smtp.server import SmtpServer, SmtpServerError, server_tls_context
from simulators.store import Store


class LauncherError(RuntimeError):
    """A server that could not start (port in use, bad profile ...); the message says which."""


@dataclass(frozen=True)
class ServerHandle:
    protocol: str
    host: str
    port: int
    implicit_tls: bool

    def url(self, user: str) -> str:
        if self.protocol == "ews":  # EWS is HTTPS unless said otherwise (migrator.urls)
            scheme = "ews" if self.implicit_tls else "ews+http"
        else:
            scheme = self.protocol + ("s" if self.implicit_tls else "")
        return f"{scheme}://{user}@{self.host}:{self.port}"


class SimulatorWorld:
    def __init__(self, store: Store, profile: Profile, host: str = "127.0.0.1"):
        self.store = store
        self.profile = profile
        self.host = host
        self._dir = Path(tempfile.mkdtemp(prefix="quirkmail-world-"))
        self.cafile = self._dir / "ca.pem"
        key, cert = self_signed_certificate(host)
        self.cafile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._tls_options = ServerTLS(key, cert)
        self._tls_pair = (key, cert)  # for servers outside the reactor (SMTP runs on asyncio)
        self._smtp_servers: list[SmtpServer] = []
        self._ports: list = []
        self._factories: list[ImapServerFactory | Pop3ServerFactory] = []
        self.handles: list[ServerHandle] = []
        self._recorder = None  # see record()

    def __enter__(self) -> SimulatorWorld:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start_imap(self, port: int = 0, *, implicit_tls: bool = False) -> ServerHandle:
        factory = self._build("IMAP", ImapServerFactory, implicit_tls)
        return self._listen("imap", factory, port, implicit_tls)

    def start_pop3(self, port: int = 0, *, implicit_tls: bool = False) -> ServerHandle:
        """POP3 on the INBOX of each account; STLS (or implicit TLS) with the world's certificate."""
        factory = self._build("POP3", Pop3ServerFactory, implicit_tls)
        return self._listen("pop3", factory, port, implicit_tls)

    def start_ews(self, port: int = 0, *, tls: bool = False) -> ServerHandle:
        """EWS (SOAP over HTTP, HTTPS with ``tls``) at ``/EWS/Exchange.asmx`` (simulators.ews)."""
        try:
            site = EwsSite(self.store, self.profile)
        except ValueError as exc:
            raise self._profile_error("EWS", exc) from None
        return self._listen("ews", site, port, tls)

    def _build(self, label: str, factory_class, implicit_tls: bool):
        try:
            return factory_class(self.store, self.profile, tls_options=self._tls_options, implicit_tls=implicit_tls)
        except ValueError as exc:
            raise self._profile_error(label, exc) from None

    def _profile_error(self, label: str, exc: Exception) -> LauncherError:
        # A bad quirk or fault (QuirkError/FaultError, ValueErrors) in the profile, or a port in use (SMTP)
        return LauncherError(f"{label} server for profile {self.profile.name!r}: {exc}")

    def _listen(self, protocol: str, factory, port: int, implicit_tls: bool) -> ServerHandle:
        """Serve a Twisted factory on the reactor thread (TLS from the first byte if implicit); its
        connections are recorded while ``record`` says so (below TLS: the plaintext)."""
        wire = "http" if protocol == "ews" else protocol
        served = RecordingFactory(factory, lambda: self._recorder, wire, implicit_tls)

        def listen():
            if implicit_tls:
                return bg.reactor.listenSSL(port, served, self._tls_options, interface=self.host)
            return bg.reactor.listenTCP(port, served, interface=self.host)

        try:
            listening = bg.call(listen)
        except Exception as exc:
            raise LauncherError(f"cannot listen for {protocol.upper()} on {self.host}:{port}: {exc}") from exc
        self._ports.append(listening)
        self._factories.append(factory)
        handle = ServerHandle(protocol, self.host, listening.getHost().port, implicit_tls)
        self.handles.append(handle)
        return handle

    def record(self, recorder) -> None:
        """Record the simulator's side of every new IMAP, POP3, EWS and SMTP connection (a
        ``transcripts.tap.LabelledRecorder``; None stops)."""
        self._recorder = recorder

    def quirks(self, name: str) -> list:
        """The live quirk objects named ``name`` of the started IMAP and POP3 servers (each server
        builds its own): e.g. oauth-token-expiry's, to issue a fresh token."""
        return [q for f in self._factories for q in f.quirks if q.name == name]

    def start_smtp(self, port: int = 0) -> ServerHandle:
        """SMTP into the store (its own asyncio thread); STARTTLS with the world's certificate."""
        try:
            server = SmtpServer(
                self.store, self.profile, host=self.host, port=port, tls_context=server_tls_context(*self._tls_pair),
                recorder_of=lambda: self._recorder,
            )
            server.start()
        except (ValueError, SmtpServerError) as exc:  # QuirkError: the profile's; else the port's
            raise self._profile_error("SMTP", exc) from None
        self._smtp_servers.append(server)
        handle = ServerHandle("smtp", self.host, server.port, False)
        self.handles.append(handle)
        return handle

    def stop(self) -> None:
        smtp_servers, self._smtp_servers = self._smtp_servers, []
        for server in smtp_servers:
            server.stop()
        ports, self._ports = self._ports, []
        factories, self._factories = self._factories, []
        bg.close_listeners(ports, factories)  # a world with only SMTP never touches the reactor
        shutil.rmtree(self._dir, ignore_errors=True)


@implementer(IOpenSSLContextFactory)
class ServerTLS:
    """Twisted context factory for the server side (TLS 1.2+), from cryptography objects."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate):
        self._context = SSL.Context(SSL.TLS_SERVER_METHOD)
        self._context.set_min_proto_version(SSL.TLS1_2_VERSION)
        self._context.use_certificate(cert)
        self._context.use_privatekey(key)

    def getContext(self) -> SSL.Context:
        return self._context


def self_signed_certificate(host: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A key and self-signed certificate for ``host`` and localhost; EC keys keep start-up fast.

    A wildcard ``host`` (0.0.0.0 inside a container) is reached through a port published on the
    host's 127.0.0.1, so the certificate names 127.0.0.1 instead.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quirkmail simulator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        address = ipaddress.ip_address(host)
        alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1") if address.is_unspecified else address))
    except ValueError:
        alt.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert
