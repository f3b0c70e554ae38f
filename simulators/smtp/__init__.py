"""The SMTP front: aiosmtpd delivering into the store, with provider quirks.

    with SmtpServer(store, profile) as server:          # own asyncio thread, 127.0.0.1 port 0
        smtplib.SMTP(server.host, server.port).sendmail("a@x", ["alice@example.net"], raw)

``SimulatorWorld.start_smtp()`` starts one with the world's certificate for STARTTLS.

Modules: ``handler`` (the behaviour: EHLO, SIZE, recipients, AUTH, delivery — aiosmtpd's
``handle_<VERB>`` hooks), ``delivery`` (recipient → account, the Received header, pure),
``quirks`` (registered SMTP quirks), ``server`` (the asyncio thread). XOAUTH2 parsing and
Gmail's error challenge are ``simulators.xoauth2`` (shared with the IMAP and POP3 fronts).
"""

from simulators.smtp.delivery import resolve_recipient, strip_received
from simulators.smtp.handler import Connection, SmtpHandler
from simulators.smtp.server import SmtpServer, SmtpServerError, server_tls_context

__all__ = [
    "Connection",
    "SmtpHandler",
    "SmtpServer",
    "SmtpServerError",
    "resolve_recipient",
    "server_tls_context",
    "strip_received",
]
