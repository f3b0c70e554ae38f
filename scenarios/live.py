"""Mail that keeps arriving at the source over SMTP while a scenario's migration runs.

``migration.live_traffic: {seed, messages, interval}`` is the MX cut-over window: the old server
still receives mail during the first run. ``LiveRun`` starts ``simulators.traffic.LiveTraffic``
into the source world's SMTP front before run 1 and waits for it to end before any later run
(the delta after cut-over must see all of it). Afterwards ``outcome`` says, by Message-ID, which
accepted messages the destination lacks or holds more than once.

The source may legitimately change meanwhile (new mail), so the "source unchanged" check looks at
the source without the live messages (``without``): deleting or touching old mail still fails.
"""

from __future__ import annotations

from collections import Counter

from scenarios.snapshot import MailboxSnapshot
from simulators.traffic import LiveTraffic, TrafficSpec

DOMAIN = "example.net"
JOIN_TIMEOUT = 60.0  # seconds; the traffic's own pace decides how long it really takes


class LiveTrafficError(RuntimeError):
    """The traffic could not be started or did not finish; names the scenario side and cause."""


class LiveRun:
    def __init__(self, spec: TrafficSpec, source) -> None:
        if source.smtp is None:
            raise LiveTrafficError("migration.live_traffic needs a simulator source (its SMTP front delivers the mail)")
        handle, cafile = source.smtp()
        self.traffic = LiveTraffic(handle, f"{source.user}@{DOMAIN}", spec, cafile=cafile)
        self.ids = frozenset(m.message_id for m in self.traffic.messages)

    def start(self) -> LiveRun:
        self.traffic.start()
        return self

    def finish(self) -> None:
        if not self.traffic.join(JOIN_TIMEOUT):
            self.traffic.stop()
            raise LiveTrafficError(f"live traffic still sending after {JOIN_TIMEOUT:.0f} s")

    def without(self, snapshot: MailboxSnapshot) -> MailboxSnapshot:
        """The snapshot minus the live messages (by Message-ID)."""
        folders = {
            key: f.model_copy(update={"messages": [m for m in f.messages if m.identity not in self.ids]})
            for key, f in snapshot.folders.items()
        }
        return snapshot.model_copy(update={"folders": folders})

    def outcome(self, dest: MailboxSnapshot) -> dict:
        """{sent, accepted, refused: [replies], lost: [ids], duplicated: [ids]} at ``dest``."""
        copies = Counter(m.identity for f in dest.folders.values() for m in f.messages)
        records = self.traffic.records
        accepted = [r.message_id for r in records if r.accepted]
        return {
            "sent": len(records),
            "accepted": len(accepted),
            "refused": [r.reply for r in records if not r.accepted],
            "lost": [i for i in accepted if copies[i] == 0],
            "duplicated": [i for i in accepted if copies[i] > 1],
        }
