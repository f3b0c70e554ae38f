"""What the sans-I/O IMAP and POP3 sessions share: their signals, store, profile and quirks, the
TLS state, and the outputs collected until the adapter takes them.

Both engines return lists of outputs: bytes are written, and the signals are carried out in
order by the adapter (``simulators.serving.FrontProtocol._signal``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from simulators.profiles import Profile
from simulators.quirks import Quirk, first_answer, tell_all
from simulators.store import Store


class Signal(enum.Enum):
    START_TLS = "start-tls"  # everything after this is sent over TLS
    CLOSE = "close"  # close the connection after writing what came before


START_TLS, CLOSE = Signal.START_TLS, Signal.CLOSE


class FrontSession:
    """One connection's engine, whatever the protocol (subclasses: ImapSession, Pop3Session)."""

    def __init__(
        self, store: Store, profile: Profile, quirks: Iterable[Quirk] = (), *,
        tls_active: bool = False, tls_available: bool = True,
    ):
        self.store = store
        self.profile = profile
        self.quirks = list(quirks)
        self.tls_active = tls_active
        self.tls_available = tls_available
        self._out: list = []

    def tls_started(self) -> None:
        self.tls_active = True

    def _flush(self) -> list:
        out, self._out = self._out, []
        return out

    def _quirk(self, hook: str, *args):
        """The first quirk's answer to ``hook`` (None: the normal behaviour)."""
        return first_answer(self.quirks, hook, *args)

    def _tell(self, hook: str, *args) -> None:
        """A notification hook: every quirk hears it (``imap_transfer``, ``pop3_session_end``)."""
        tell_all(self.quirks, hook, *args)
