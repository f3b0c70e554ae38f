"""``--test-connection`` for EWS and CardDAV/CalDAV endpoints: log in and look around, copy nothing."""

from __future__ import annotations

import time

from migrator.report import ConnectionReport
from migrator.urls import Endpoint


def test_collab_connection(endpoint: Endpoint, *, role: str) -> ConnectionReport:
    """EWS: the folder tree (classes as "capabilities") and the Inbox count; DAV: the collections."""
    t0 = time.monotonic()
    tls = "implicit" if endpoint.url.implicit_tls else "none"
    if endpoint.url.scheme in ("ews", "ews+http"):
        from migrator.sources.ews import EwsSource

        src = EwsSource(endpoint, connections=1)
        try:
            folders = src.folders()
        finally:
            src.close()
        inbox = next((f.total for f in folders if f.distinguished == "inbox"), 0)
        caps = sorted({f.folder_class for f in folders})
        count = len(folders)
    else:
        from migrator.sinks.dav import DavSink

        sink = DavSink(endpoint)
        try:
            collections = sink.collections()
        finally:
            sink.close()
        inbox, caps, count = 0, sorted(set(collections.values())), len(collections)
    return ConnectionReport(role=role, endpoint=endpoint.url.display(), tls=tls, capabilities=caps,
                            namespace_prefix="", delimiter="/", folders=count, inbox_messages=inbox,
                            seconds=round(time.monotonic() - t0, 3))
