"""Where the engine's protocol libraries meet ``transcripts.tap`` (``migrate --record DIR``).

Each connection site asks for its client class through here: unchanged when the endpoint has
no recorder, else a subclass whose socket is tapped (``transcripts.tap.tapped``), so the
recorded bytes are exactly what imaplib, poplib, smtplib and urllib3 sent and read, after TLS.
HTTP (EWS, CardDAV/CalDAV) is tapped at the socket too, through the urllib3 connection classes
of a requests adapter — not reconstructed from request objects.
"""

from __future__ import annotations

import dataclasses
import imaplib

import imapclient
from imapclient import imap4, tls

from migrator.urls import Endpoint
from transcripts.tap import Recorder, tapped


def recorded(endpoint: Endpoint, recorder: Recorder | None, label: str) -> Endpoint:
    """The endpoint with its connections recorded under ``label`` (unchanged without a recorder)."""
    if recorder is None:
        return endpoint
    return dataclasses.replace(endpoint, recorder=recorder.labelled(label))


def client_class(endpoint: Endpoint, cls: type, protocol: str) -> type:
    """``cls`` itself, or ``cls`` recording each of its connections under the endpoint's label."""
    if endpoint.recorder is None:
        return cls
    return tapped(cls, endpoint.recorder.opener(protocol, endpoint.url.host, endpoint.url.port))


class _RecordingIMAPClient(imapclient.IMAPClient):
    """imapclient builds its imaplib object inside its constructor (which reads the greeting):
    this builds the same classes, tapped."""

    _endpoint: Endpoint

    def _create_IMAP4(self) -> imaplib.IMAP4:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return client_class(self._endpoint, tls.IMAP4_TLS, "imap")(self.host, self.port, self.ssl_context, timeout)
        return client_class(self._endpoint, imap4.IMAP4WithTimeout, "imap")(self.host, self.port, timeout)


def imap_client_class(endpoint: Endpoint) -> type[imapclient.IMAPClient]:
    if endpoint.recorder is None:
        return imapclient.IMAPClient
    return type("RecordingIMAPClient", (_RecordingIMAPClient,), {"_endpoint": endpoint})
