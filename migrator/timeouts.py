"""How long to wait for a source's reply: a read timeout that grows with the folder's size.

slow-large-folder: SELECT, SEARCH and header FETCHes of folders with 30k–150k messages take
minutes at Gmail, Exchange and Zimbra, while a dead connection should be noticed in about two.
So a command on a folder waits ``base + per_1000 × messages / 1000`` seconds: the folder's size is
known before its SELECT from STATUS (``hint``), and from EXISTS after it. Pure: numbers in, seconds
out; ``sources.imap`` applies them to its socket.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

DEFAULT_BASE = 120.0  # seconds for any reply (imapsync's --timeout default is 120 too)
DEFAULT_PER_1000 = 12.0  # seconds more per 1000 messages: a 150k folder may take 30 min to SELECT


@dataclass
class FolderTimeouts:
    """Shared by a run's source connections; ``per_1000 = 0`` is a fixed timeout."""

    base: float = DEFAULT_BASE
    per_1000: float = DEFAULT_PER_1000
    _hints: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hint(self, counts: dict[str, int]) -> None:
        """Folder sizes known before SELECT (STATUS MESSAGES)."""
        with self._lock:
            self._hints.update(counts)

    def for_folder(self, folder: str | None, messages: int | None = None) -> float:
        """Seconds to wait for a reply about ``folder`` (None: no folder, the base timeout)."""
        if folder is None:
            return self.base
        if messages is None:
            with self._lock:
                messages = self._hints.get(folder, 0)
        return self.base + self.per_1000 * messages / 1000
