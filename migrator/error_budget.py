"""The error budget of one account's run: after ``max_item_errors`` item errors the run stops.

An item error is an item that failed (a FETCH/RETR/GetItem refused, a message that could not be
prepared) or that a server refused outright; policy skips (too large for APPENDLIMIT, vanished
from the source, deferred by greylisting) are not errors. Each item is still isolated: one bad
message never stops the run, but a run where everything fails (a destination refusing every
APPEND, a source that breaks on each message) stops early instead of grinding through the whole
mailbox — ``Aborted`` semantics: exit code 5, the checkpoint is kept, a re-run resumes.
"""

from __future__ import annotations

import threading

DEFAULT_MAX_ITEM_ERRORS = 50
# SkippedItem reasons that are refusals (errors), not policy.
ERROR_REASONS = frozenset({"refused", "not-stored", "source-refused"})


class ErrorBudget:
    """Thread-safe counter shared by a run's workers; 0 (or None) = no limit."""

    def __init__(self, limit: int | None):
        self.limit = limit or 0
        self.spent = 0
        self._lock = threading.Lock()

    def charge(self) -> str | None:
        """Count one item error; the abort reason when this one exhausts the budget (once)."""
        with self._lock:
            self.spent += 1
            if self.limit and self.spent == self.limit:
                return (f"error budget exhausted: {self.spent} item errors (max_item_errors={self.limit}); "
                        "the rest was not tried, a re-run resumes")
        return None

    def charge_skip(self, reason: str) -> str | None:
        return self.charge() if reason in ERROR_REASONS else None
