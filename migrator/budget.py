"""A byte budget shared by the folder workers: how much fetched mail may be held at once.

Each worker reads one batch ahead while it writes the current one. Batches are bounded in bytes
already (``size_batches``: ``MAX_BATCH_BYTES``), but a message larger than that is a batch of its
own, so four workers meeting four 50 MB messages would hold 400 MB. Reading ahead therefore only happens
when the budget has room (``try_take``); a batch read without read-ahead waits for room
(``take``), except that a worker may always take when nothing at all is held, so one message
larger than the whole budget still goes through (alone).

Deadlock-free by construction: a worker waits in ``take`` only while it holds nothing, and every
holder gives its bytes back after writing its batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

MAX_BATCH_BYTES = 8 * 1024 * 1024  # a batch's bodies are held in memory and sent in one write


def size_batches(items: Iterable[T], size_of: Callable[[T], int], count: int, *,
                 alone_over: int | None = None) -> list[list[T]]:
    """``items`` in order, in batches of at most ``count`` items and MAX_BATCH_BYTES bytes (an
    item larger than that is a batch of its own). An item over ``alone_over`` bytes is always
    alone: nothing joins it either (EWS: big MIME is fetched alone)."""
    out: list[list[T]] = []
    nbytes = 0
    for item in items:
        size = size_of(item)
        alone = alone_over is not None and size > alone_over
        if alone or not out or len(out[-1]) >= count or nbytes + size > MAX_BATCH_BYTES:
            out.append([])
            nbytes = 0
        out[-1].append(item)
        nbytes = MAX_BATCH_BYTES if alone else nbytes + size
    return out


class ByteBudget:
    def __init__(self, limit: int):
        self.limit = limit
        self.held = 0
        self.peak = 0  # the most held at once (tests, reports)
        self._cond = threading.Condition()

    def _fits(self, n: int) -> bool:
        return self.held == 0 or self.held + n <= self.limit

    def _grab(self, n: int) -> None:
        self.held += n
        self.peak = max(self.peak, self.held)

    def try_take(self, n: int) -> bool:
        """Take ``n`` bytes if they fit now (read-ahead); False leaves the budget unchanged."""
        with self._cond:
            if not self._fits(n):
                return False
            self._grab(n)
            return True

    def take(self, n: int, timeout: float | None = None) -> bool:
        """Wait until ``n`` bytes fit (always when nothing is held), then take them."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._fits(n), timeout):
                return False
            self._grab(n)
            return True

    def give(self, n: int) -> None:
        with self._cond:
            self.held -= n
            if self.held < 0:
                raise AssertionError(f"byte budget given back {-self.held} bytes more than taken")
            self._cond.notify_all()
