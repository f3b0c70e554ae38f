"""Recording HTTP (EWS, CardDAV, CalDAV) at the socket, through a requests adapter.

urllib3's connections keep their socket in ``self.sock`` like the mail libraries do, so the
adapter's pools make their connections from ``transcripts.tap.tapped`` classes: the recorded
bytes are the request and response exactly as they crossed the connection (after TLS), one
transcript per TCP connection, keep-alive requests one after the other in it.
"""

from __future__ import annotations

from collections.abc import Callable

import requests.adapters
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from transcripts.tap import LabelledRecorder, SessionTap, tapped


class RecordingAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter whose connections are recorded under ``recorder``'s label (None: whatever
    ``recorder_for`` says per server, for subclasses that look it up)."""

    def __init__(self, recorder: LabelledRecorder | None = None, **kwargs) -> None:
        self.recorder = recorder
        super().__init__(**kwargs)

    def recorder_for(self, host: str, port: int) -> LabelledRecorder | None:
        return self.recorder

    def _open_session(self, connection) -> SessionTap | None:
        recorder = self.recorder_for(connection.host, connection.port)
        if recorder is None:
            return None
        return recorder.opener("http", connection.host, connection.port)(connection)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _pool(HTTPConnectionPool, self._open_session),
            "https": _pool(HTTPSConnectionPool, self._open_session),
        }


def _pool(base: type, open_session: Callable[[object], SessionTap | None]) -> type:
    return type(f"Recording{base.__name__}", (base,), {"ConnectionCls": tapped(base.ConnectionCls, open_session)})
