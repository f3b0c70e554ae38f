"""The per-account importing log: ``<outdir>/accounts/<id>.jsonl``, one JSON event a line.

Like a server's mailbox importing log, it says what the account moved, what it skipped and why,
as it happens (``plan``, ``progress``) and in detail at the end (``folder``, ``skipped``,
``failed``, ``dropped-flags``, ``date-fallback``, ``folder-skipped``, ``note``, then ``end``).
A resumed batch appends: each attempt starts with a ``start`` event. Every event has ``ts``
(UTC, ISO 8601) and ``event``; no event holds a secret (URLs are rendered without one).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from migrator.report import MigrationReport


class Journal:
    """Appends events to one account's log; thread-safe (the engine's workers report progress)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def event(self, name: str, /, **fields: Any) -> None:
        # positional-only: an event's own fields may be called "kind" (not-migrated) or "name"
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": name, **fields}
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()  # a crash keeps what was logged; `tail -f` sees it now

    def close(self) -> None:
        with self._lock:
            self._file.close()


def report_events(report: MigrationReport) -> Iterator[tuple[str, dict[str, Any]]]:
    """The finished run's details as (event, fields), folder by folder then item by item."""
    for f in report.folders:
        yield "folder", {"folder": f.source, "destination": f.destination, "messages": f.source_count,
                         "copied": f.copied, "already_present": f.already_present, "skipped": f.skipped,
                         "failed": f.failed, "bytes": f.bytes, "notes": f.notes}
    for s in report.skipped_folders:
        yield "folder-skipped", {"folder": s.folder, "reason": s.reason}
    for s in report.skipped:
        yield "skipped", {"folder": s.folder, "uid": s.uid, "message_id": s.message_id, "reason": s.reason,
                          "detail": s.detail}
    for e in report.errors:
        yield "failed", {"folder": e.folder, "uid": e.uid, "item_id": e.item_id, "error": e.error, "detail": e.message}
    for d in report.dropped_flags:
        yield "dropped-flags", {"folder": d.folder, "uid": d.uid, "flags": d.flags}
    for d in report.date_fallbacks:
        yield "date-fallback", {"folder": d.folder, "uid": d.uid, "used": d.used, "detail": d.detail}
    for u in report.unmigratable:
        yield "not-migrated", {"folder": u.folder, "kind": u.kind, "count": u.count, "reason": u.reason}
    for note in report.notes:
        yield "note", {"text": note}
